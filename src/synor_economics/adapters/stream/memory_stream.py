"""``ports.EventStream`` in process: the embedded default when no Redis is configured, and the
fast fake for tests. Same semantics as the Redis adapter (pending entries, delivery counts,
claiming idle entries, a dead-letter list), kept in memory: it does not survive a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from synor_economics.ports import StreamEntry


@dataclass(slots=True)
class _Pending:
    consumer: str
    delivered_at: float
    deliveries: int


class MemoryEventStream:
    def __init__(self, name: str = "synor:usage") -> None:
        self._name = name
        self._entries: dict[str, bytes] = {}
        self._order: list[str] = []
        self._next_unread = 0
        self._pending: dict[str, _Pending] = {}
        self._dead: list[tuple[str, bytes, str]] = []
        self._counter = 0
        self._changed = threading.Condition()

    @property
    def name(self) -> str:
        return self._name

    def publish(self, payloads: Sequence[bytes]) -> list[str]:
        with self._changed:
            ids = []
            for payload in payloads:
                self._counter += 1
                entry_id = f"{self._counter}-0"
                self._entries[entry_id] = payload
                self._order.append(entry_id)
                ids.append(entry_id)
            self._changed.notify_all()
            return ids

    def read(self, consumer: str, *, count: int, block_ms: int) -> list[StreamEntry]:
        with self._changed:
            if self._next_unread >= len(self._order) and block_ms:
                self._changed.wait(block_ms / 1000)
            taken = self._order[self._next_unread : self._next_unread + count]
            self._next_unread += len(taken)
            now = time.monotonic()
            for entry_id in taken:
                self._pending[entry_id] = _Pending(consumer, now, 1)
            return [StreamEntry(i, self._entries[i], 1) for i in taken]

    def claim_idle(self, consumer: str, *, idle_ms: int, count: int) -> list[StreamEntry]:
        with self._changed:
            now = time.monotonic()
            claimed: list[StreamEntry] = []
            for entry_id, pending in self._pending.items():
                if len(claimed) == count:
                    break
                if (now - pending.delivered_at) * 1000 >= idle_ms:
                    pending.consumer, pending.delivered_at = consumer, now
                    pending.deliveries += 1
                    claimed.append(
                        StreamEntry(entry_id, self._entries[entry_id], pending.deliveries)
                    )
            return claimed

    def ack(self, entry_ids: Sequence[str]) -> None:
        with self._changed:
            for entry_id in entry_ids:
                self._pending.pop(entry_id, None)

    def dead_letter(self, entry: StreamEntry, reason: str) -> None:
        with self._changed:
            self._dead.append((entry.entry_id, entry.payload, reason))
            self._pending.pop(entry.entry_id, None)

    def pending(self) -> int:
        with self._changed:
            return len(self._pending)

    def dead_letters(self, *, count: int) -> list[tuple[str, bytes, str]]:
        with self._changed:
            return list(reversed(self._dead[-count:]))

    def close(self) -> None:
        """Nothing to release."""
