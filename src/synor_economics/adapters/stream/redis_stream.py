"""``ports.EventStream`` on Redis Streams: one stream, one consumer group, XAUTOCLAIM for entries
left by dead consumers, and a dead-letter stream beside it (``<name>:dead``).

Each entry holds one event's JSON under the field ``event``. Producers may XADD to the stream
directly (any language); ``publish`` pipelines XADDs for Python producers and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from synor_economics.ports import StreamEntry

_FIELD = b"event"


class RedisEventStream:
    def __init__(self, url: str, name: str, group: str) -> None:
        # redis-py's annotations cover its sync and async clients at once; responses are
        # checked by use here instead.
        self.client: Any = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
        self.client.set_response_callback("XREADGROUP", _raw_reply)
        self._name = name
        self.group = group
        self.dead_name = f"{name}:dead"
        self._ensure_group()

    @property
    def name(self) -> str:
        return self._name

    def _ensure_group(self) -> None:
        """Create the consumer group (and the stream) if they do not exist yet. A new group
        starts at the beginning of the stream, so events sent before the first worker count."""
        try:
            self.client.xgroup_create(self._name, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def publish(self, payloads: Sequence[bytes]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(payloads), 1000):
            with self.client.pipeline(transaction=False) as pipe:
                for payload in payloads[start : start + 1000]:
                    pipe.xadd(self._name, {_FIELD: payload})
                ids.extend(_text(entry_id) for entry_id in pipe.execute())
        return ids

    def read(self, consumer: str, *, count: int, block_ms: int) -> list[StreamEntry]:
        """New entries for ``consumer``, read with XREADGROUP, its reply taken as the parser
        gives it (``_raw_reply``)."""
        command = ["XREADGROUP", "GROUP", self.group, consumer, "COUNT", count]
        if block_ms:
            command += ["BLOCK", block_ms]
        found = self.client.execute_command(*command, "STREAMS", self._name, ">")
        streams = found.values() if isinstance(found, dict) else (m for _, m in found or [])
        entries: list[StreamEntry] = []
        for messages in streams:
            entries.extend(_entry(entry_id, fields) for entry_id, fields in messages)
        return entries

    def claim_idle(self, consumer: str, *, idle_ms: int, count: int) -> list[StreamEntry]:
        _next, messages, *_deleted = self.client.xautoclaim(
            self._name, self.group, consumer, min_idle_time=idle_ms, start_id="0-0", count=count
        )
        if not messages:
            return []
        ids = [entry_id for entry_id, _fields in messages]
        counts = self._delivery_counts(ids)
        return [
            _entry(entry_id, fields, counts.get(_text(entry_id), 1))
            for entry_id, fields in messages
            if fields  # an entry deleted from the stream comes back empty: nothing to count
        ]

    def _delivery_counts(self, ids: list[Any]) -> dict[str, int]:
        """Times each pending entry was delivered (XAUTOCLAIM does not say)."""
        first, last = min(ids, key=_order), max(ids, key=_order)
        details = self.client.xpending_range(
            self._name, self.group, first, last, count=len(ids) * 4
        )
        return {_text(d["message_id"]): int(d["times_delivered"]) for d in details}

    def ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            self.client.xack(self._name, self.group, *entry_ids)

    def dead_letter(self, entry: StreamEntry, reason: str) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.dead_name,
                {_FIELD: entry.payload, b"entry": entry.entry_id, b"reason": reason.encode()},
            )
            pipe.xack(self._name, self.group, entry.entry_id)
            pipe.execute()

    def pending(self) -> int:
        summary = self.client.xpending(self._name, self.group)
        return int(summary["pending"])

    def dead_letters(self, *, count: int) -> list[tuple[str, bytes, str]]:
        messages = self.client.xrevrange(self.dead_name, count=count)
        return [
            (_text(fields[b"entry"]), fields[_FIELD], _text(fields[b"reason"]))
            for _id, fields in messages
        ]

    def close(self) -> None:
        self.client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _order(entry_id: bytes | str) -> tuple[int, int]:
    milliseconds, sequence = _text(entry_id).split("-")
    return int(milliseconds), int(sequence)


def _raw_reply(response: Any, **_options: Any) -> Any:
    """XREADGROUP's reply as the C parser made it: by stream (a map in RESP3, a list of pairs
    in RESP2), each stream's entries as ``[id, [field, value, ...]]``. redis-py's own callback
    turns each entry's fields into a dict in Python, which took about a microsecond an event,
    a tenth of a worker's time."""
    return response


def _entry(
    entry_id: bytes | str, fields: list[bytes] | dict[bytes, bytes], deliveries: int = 1
) -> StreamEntry:
    """An entry with its fields as redis-py gives them (a dict: XAUTOCLAIM) or as the raw
    XREADGROUP reply has them (``[field, value, ...]``); its payload is the ``event`` field."""
    if isinstance(fields, dict):
        payload = fields.get(_FIELD, b"")
    elif fields[:1] == [_FIELD]:  # as ``publish`` and most producers write it: the one field
        payload = fields[1]
    else:
        payload = dict(zip(fields[::2], fields[1::2], strict=False)).get(_FIELD, b"")
    return StreamEntry(_text(entry_id), payload, deliveries)
