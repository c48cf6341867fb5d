"""Usage events (SPEC §2): what a producer sends, validated strictly, and what each one became.

Validation is the same whichever way an event arrives (HTTP, stream, file): :func:`parse_event`
takes the decoded JSON object and either returns a :class:`UsageEvent` or raises
:class:`EventError` naming the field and the reason. Nothing here touches storage; dedup on
``(account, id)`` is the ingest service's job, and compares :attr:`UsageEvent.fingerprint`.

Choices where the contract is silent (also in ``docs/decisions.md``):

* ids are 1–200 characters of ``A-Z a-z 0-9 _ . : - /`` (UUIDs, ULIDs, ``evt_…`` all fit);
  accounts, subjects and operators 1–200 printable characters without spaces or control codes;
* quantities are plain decimal strings (a JSON number is refused: it may have been a float on
  the way) with at most 30 integer digits and 18 decimals;
* ``ts`` is RFC 3339 in UTC (``Z`` or ``+00:00``) with at most microsecond precision;
* ``meta`` is a flat object of at most 32 keys whose values are strings, integers, booleans or
  null; it is kept, compared for conflicts, and never priced;
* two copies are "the same body" when their values are equal once parsed (``"7200"`` and
  ``"7200.0"``, ``Z`` and ``+00:00`` are the same), so a retry through another client is a
  duplicate, not a conflict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple, overload

import xxhash

from synor_economics.domain.catalog import MeterKind, Resource
from synor_economics.domain.errors import SynorError

MAX_BATCH = 10_000
"""Events one request may carry (SPEC-level limit of the HTTP face, kept for every face)."""

MAX_LATE_US = 35 * 86_400 * 1_000_000
"""Events may arrive up to 35 days after their time (SPEC §2)."""

MAX_EARLY_US = 5 * 60 * 1_000_000
"""Events more than 5 minutes in the future are refused (SPEC §2)."""

_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,199}")
_NAME = re.compile(r"[\x21-\x7e]{1,200}")
_QUANTITY = re.compile(r"(-?)([0-9]{1,30})(?:\.([0-9]{1,18}))?")
_PLAIN_QUANTITY = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,18})?")
"""A quantity the fast path takes: not negative (whether a resource allows that is checked on
the careful path)."""
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,6}))?([Zz]|\+00:00)"
)
_FIELDS = frozenset({"id", "account", "resource", "quantity", "ts", "subject", "operator", "meta"})
_MAX_META_KEYS = 32
_MAX_META_TEXT = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventError(SynorError, ValueError):
    """An event that does not validate: ``field`` names what is wrong, ``reason`` says how."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EventStatus(StrEnum):
    ACCEPTED = "accepted"
    """New, counted."""
    DUPLICATE = "duplicate"
    """Seen before with the same body: nothing changed."""
    CONFLICT = "conflict"
    """Seen before with a different body: the first copy stands, this one is recorded."""
    REJECTED = "rejected"
    """Invalid: not counted, recorded with the reason."""


class UsageEvent(NamedTuple):
    """A validated usage event. ``quantity`` is in the resource's event unit; ``meta`` is its
    canonical JSON text ("" when absent). Made by :func:`parse_event` (through
    :func:`usage_event`, which derives the fingerprint); a tuple because ingestion builds one per
    event, hundreds of thousands a second, and a frozen dataclass took five times as long."""

    account: str
    id: str
    resource: str
    quantity: Decimal
    ts_us: int
    subject: str
    operator: str
    meta: str
    fingerprint: str
    """A digest of the body, to tell a retry (same body) from a conflict (different body)."""

    @property
    def key(self) -> tuple[str, str]:
        """What dedup is keyed on: the id is unique per account."""
        return (self.account, self.id)


def usage_event(
    account: str,
    event_id: str,
    resource: str,
    quantity: Decimal,
    ts_us: int,
    *,
    subject: str = "",
    operator: str = "",
    meta: str = "",
) -> UsageEvent:
    """A validated event with its fingerprint: the body's values once parsed (so ``"7200"`` and
    ``"7200.0"`` are one body), joined and hashed."""
    text = "\x1f".join(
        (resource, format(quantity.normalize(), "f"), str(ts_us), subject, operator, meta)
    )
    digest = body_digest(text.encode())
    return UsageEvent(account, event_id, resource, quantity, ts_us, subject, operator, meta, digest)


def body_digest(text: bytes) -> str:
    """The fingerprint of an event body's joined text (see :func:`usage_event`): 128 bits of
    xxh3, in hexadecimal. It tells a duplicate (same body) from a conflict (another body), so
    it needs no more than a checksum does: a body made to collide with another passes for a
    duplicate, and the first copy stands either way. blake2b took a quarter of the columnar
    path's validation (migration 0010 rewrote the fingerprints it made)."""
    return _body_hash(text)


def body_digests(texts: Iterable[bytes]) -> list[str]:
    """:func:`body_digest` of each text, without a Python call per text."""
    return list(map(_body_hash, texts))


_body_hash = xxhash.xxh3_128_hexdigest

KEY_SEPARATOR = "\x1f"
"""Between account and id in a dedup key's text: the unit separator cannot occur in either
(validation allows printable characters only), so the text names one key."""

_key_hash = xxhash.xxh3_128_digest


def key_texts(keys: Iterable[tuple[str, str]]) -> Iterator[bytes]:
    """Each ``(account, id)`` key as the text its digest is made of."""
    return (f"{account}{KEY_SEPARATOR}{event_id}".encode() for account, event_id in keys)


def key_digests(texts: Iterable[bytes]) -> bytes:
    """The 128-bit digests of keys' texts (:func:`key_texts`), 16 bytes each, in order. What the
    SQLite key index sorts and checks by (``adapters/sql/key_index.py``), and what tells cheaply
    that a batch's keys are all different: made where a batch is validated, on the thread that
    is not storing."""
    return b"".join(map(_key_hash, texts))


class EventKeys(Sequence[tuple[str, str]]):
    """The ``(account, id)`` keys of events held as columns, each made only when it is read.

    Storing a batch on SQLite needs its keys only in rare cases (a sort key that matches a
    stored one, a later batch of the same transaction). A list of 50,000 key tuples cost
    about 11 ms of the storing thread's interpreter time a batch (its own time, doubled by the
    other thread holding the interpreter between its steps), for nothing, nearly always."""

    __slots__ = ("_accounts", "_ids")

    def __init__(self, accounts: list[str], ids: list[str]) -> None:
        if len(accounts) != len(ids):
            raise ValueError("keys need as many accounts as ids")
        self._accounts = accounts
        self._ids = ids

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, row: int) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, row: slice) -> list[tuple[str, str]]: ...
    def __getitem__(self, row: int | slice) -> tuple[str, str] | list[tuple[str, str]]:
        if isinstance(row, slice):
            return list(zip(self._accounts[row], self._ids[row], strict=True))
        return self._accounts[row], self._ids[row]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self._accounts, self._ids, strict=True)


@dataclass(frozen=True, slots=True)
class EventColumns:
    """Validated counter events without ``meta``, as columns: what a batch's plain events become
    on the columnar intake path (``services/usage_columns.py``), stored without a tuple per
    event. ``quantities`` are canonical decimal text (as ``format(Decimal(q), "f")``)."""

    accounts: list[str]
    ids: list[str]
    resources: list[str]
    quantities: list[str]
    ts_us: list[int]
    subjects: list[str]
    operators: list[str]
    fingerprints: list[str]
    digests: bytes
    """The keys' digests (:func:`key_digests`), 16 bytes per event."""
    native: Callable[[], object] | None = field(default=None, compare=False, repr=False)
    """What gives the same eight columns as the intake held them before they became lists
    (an Arrow table), or None: an adapter that can take them so copies them as they are,
    instead of converting the lists back (on PostgreSQL, some 0.7 µs an event); made only if
    asked for. Never set on a subset (``take``): the lists are what the events are."""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> EventColumns:
        return cls([], [], [], [], [], [], [], [], b"")

    def keys(self) -> EventKeys:
        """Each event's dedup key (account, id), made only when read."""
        return EventKeys(self.accounts, self.ids)

    def take(self, rows: list[int]) -> EventColumns:
        """The events at these rows, in that order."""
        a, i, r, q, t, s, o, f = ([column[row] for row in rows] for column in self.columns())
        digests = memoryview(self.digests)
        kept = b"".join([digests[16 * row : 16 * row + 16] for row in rows])
        return EventColumns(a, i, r, q, t, s, o, f, kept)  # type: ignore[arg-type]

    def without(self, rows: Collection[int]) -> EventColumns:
        """The events not at these rows, in order (none at all when every row is named: a
        replayed batch)."""
        if not rows:
            return self
        if len(rows) == len(self):
            return EventColumns.empty()
        return self.take([row for row in range(len(self)) if row not in rows])

    def columns(
        self,
    ) -> tuple[
        list[str], list[str], list[str], list[str], list[int], list[str], list[str], list[str]
    ]:
        """The eight event fields' columns, digests aside."""
        return (
            self.accounts, self.ids, self.resources, self.quantities, self.ts_us,
            self.subjects, self.operators, self.fingerprints,
        )  # fmt: skip

    def events(self) -> list[UsageEvent]:
        """The same events one tuple each, for the per-event path."""
        return [
            UsageEvent(a, i, r, Decimal(q), t, s, o, "", f)
            for a, i, r, q, t, s, o, f in zip(*self.columns(), strict=True)
        ]


@dataclass(slots=True)
class EventOutcome:
    """What became of one event of a batch, by its position in the batch. Not frozen, unlike
    the other values here: ingestion makes one per event, and a frozen dataclass's ``__init__``
    (through ``object.__setattr__``) took 4.5 times as long, about 0.6 µs of every event's ~19.
    Nothing changes an outcome once made."""

    index: int
    id: str
    status: EventStatus
    field: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected or conflicting event, kept with its reason and its body as received, so that
    nothing is dropped silently. ``seq`` and ``received_us`` are set by storage."""

    status: EventStatus
    account: str
    event_id: str
    field: str
    reason: str
    body: str
    source: str
    received_us: int
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Replacement:
    """A replacement backfill: ``account``'s events in ``[start_us, end_us)`` taken out of the
    count (kept, for audit) and a file's events counted instead; undone by a revert."""

    account: str
    start_us: int
    end_us: int
    created_us: int
    note: str = ""
    superseded: int = 0
    added: int = 0
    reverted_us: int | None = None
    seq: int = 0

    @property
    def active(self) -> bool:
        return self.reverted_us is None

    def overlaps(self, start_us: int, end_us: int) -> bool:
        return self.start_us < end_us and start_us < self.end_us


class ActiveEvent(NamedTuple):
    """A counted event, as rollups are rebuilt from it."""

    resource: str
    subject: str
    ts_us: int
    quantity: Decimal
    seq: int


def parse_event(raw: object, resources: Mapping[str, Resource], now_us: int | None) -> UsageEvent:
    """Validate one decoded event against the price book's resources and the time window around
    ``now_us`` (no window when None: a simulation may lie in any past period, SPEC §10).

    Most events are plain (every field a well-formed string, the time in its usual spelling):
    :func:`_plain_event` takes those in about half the time. Anything it is not sure of goes to
    :func:`_checked_event`, the reference, which also says what is wrong; a property test holds
    the two to the same answer."""
    if type(raw) is dict and raw.keys() <= _FIELDS:
        event = _plain_event(raw, resources, now_us)
        if event is not None:
            return event
    return _checked_event(raw, resources, now_us)


def _plain_event(
    raw: dict[str, Any], resources: Mapping[str, Resource], now_us: int | None
) -> UsageEvent | None:
    """The event, if every field is plainly valid; None to leave the event to the careful path
    (never a different answer from it)."""
    get = raw.get
    event_id, account, resource_id = get("id"), get("account"), get("resource")
    quantity, ts, subject, operator = get("quantity"), get("ts"), get("subject"), get("operator")
    if not (
        type(event_id) is str
        and type(account) is str
        and type(quantity) is str
        and type(ts) is str
        and _EVENT_ID.fullmatch(event_id)
        and _NAME.fullmatch(account)
        and (subject is None or (type(subject) is str and _NAME.fullmatch(subject)))
        and (operator is None or (type(operator) is str and _NAME.fullmatch(operator)))
    ):
        return None
    resource = resources.get(resource_id) if type(resource_id) is str else None
    if resource is None or (resource.meter is MeterKind.GAUGE and not subject):
        return None
    amount = _PLAIN_QUANTITY.fullmatch(quantity)
    ts_us = _plain_timestamp(ts)
    if amount is None or ts_us is None:
        return None
    if now_us is not None and not now_us - MAX_LATE_US <= ts_us <= now_us + MAX_EARLY_US:
        return None
    return usage_event(
        account, event_id, resource.id, Decimal(quantity), ts_us,
        subject=subject or "", operator=operator or "", meta=_meta(get("meta")),
    )  # fmt: skip


def _plain_timestamp(value: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z`` or ``+00:00``, as µs; None for any other
    spelling or a date that does not exist (the careful path then says which)."""
    if not (_TIMESTAMP.fullmatch(value) and value[10] == "T" and value[-1] in "Z0"):
        return None
    try:
        delta = datetime.fromisoformat(value) - _EPOCH
    except ValueError:
        return None
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _checked_event(
    raw: object, resources: Mapping[str, Resource], now_us: int | None
) -> UsageEvent:
    """Validate field by field, in order, and say what the first thing wrong is."""
    if not isinstance(raw, Mapping):
        raise EventError("event", f"must be a JSON object, got {_json_type(raw)}")
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    if unknown:
        raise EventError(unknown[0], "unknown field")
    event_id = _text(raw, "id", _EVENT_ID, "1-200 chars of A-Z a-z 0-9 _ . : - /")
    account = _text(raw, "account", _NAME, "1-200 printable characters, no spaces")
    resource = _resource(raw, resources)
    quantity = _quantity(raw.get("quantity"), resource)
    ts_us = _timestamp(raw.get("ts"), now_us)
    subject = _optional_text(raw, "subject")
    if resource.meter is MeterKind.GAUGE and not subject:
        raise EventError("subject", f"is required: {resource.id} is a gauge")
    return usage_event(
        account,
        event_id,
        resource.id,
        quantity,
        ts_us,
        subject=subject,
        operator=_optional_text(raw, "operator"),
        meta=_meta(raw.get("meta")),
    )


def raw_text(raw: object, field: str) -> str:
    """A text field of a raw event as far as it can be read (the id and account of a rejected
    event, for its answer and its dead-letter record): "" when it is missing or not text."""
    if isinstance(raw, Mapping):
        value = raw.get(field)
        if isinstance(value, str):
            return value[:200]
    return ""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _string(value: object, field: str, kind: str = "a string") -> str:
    """A required field that must be a JSON string (``kind`` says which sort, for the reason)."""
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str):
        raise EventError(field, f"must be {kind}, got {_json_type(value)}")
    return value


def _text(raw: Mapping[str, Any], field: str, pattern: re.Pattern[str], rule: str) -> str:
    value = _string(raw.get(field), field)
    if not pattern.fullmatch(value):
        raise EventError(field, f"must be {rule}: {value[:60]!r}")
    return value


def _optional_text(raw: Mapping[str, Any], field: str) -> str:
    if raw.get(field) is None:
        return ""
    return _text(raw, field, _NAME, "1-200 printable characters, no spaces")


def _resource(raw: Mapping[str, Any], resources: Mapping[str, Resource]) -> Resource:
    value = _string(raw.get("resource"), "resource")
    found = resources.get(value)
    if found is None:
        raise EventError("resource", f"unknown resource {value[:60]!r}")
    return found


def _quantity(raw_value: object, resource: Resource) -> Decimal:
    value = _string(raw_value, "quantity", 'a decimal string like "7200"')
    found = _QUANTITY.fullmatch(value)
    if found is None:
        raise EventError(
            "quantity",
            f"must be plain decimal notation, at most 30 digits and 18 decimals: {value[:60]!r}",
        )
    quantity = Decimal(value)
    if found[1] and quantity != 0 and not resource.allows_corrections:
        raise EventError("quantity", f"must not be negative: {resource.id} allows no corrections")
    return quantity


def _timestamp(raw_value: object, now_us: int | None) -> int:
    value = _string(raw_value, "ts", "an RFC 3339 string")
    found = _TIMESTAMP.fullmatch(value)
    if found is None:
        raise EventError("ts", f"must be RFC 3339 in UTC like 2026-11-03T10:00:00Z: {value[:60]!r}")
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as error:
        raise EventError("ts", f"is not a real date and time: {error}") from None
    delta = moment - _EPOCH
    ts_us = (delta.days * 86_400 + delta.seconds) * 1_000_000
    ts_us += int((found[7] or "").ljust(6, "0") or "0")
    if now_us is None:
        return ts_us
    if ts_us > now_us + MAX_EARLY_US:
        raise EventError("ts", "is more than 5 minutes in the future")
    if ts_us < now_us - MAX_LATE_US:
        raise EventError("ts", "is more than 35 days in the past; too late to be counted")
    return ts_us


def _meta(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, Mapping):
        raise EventError("meta", f"must be a JSON object, got {_json_type(value)}")
    if len(value) > _MAX_META_KEYS:
        raise EventError("meta", f"has {len(value)} keys; at most {_MAX_META_KEYS}")
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise EventError("meta", f"keys must be strings of 1-64 chars: {key!r}")
        if isinstance(item, str):
            if len(item) > _MAX_META_TEXT:
                raise EventError(f"meta.{key}", f"is longer than {_MAX_META_TEXT} characters")
        elif item is not None and not isinstance(item, bool | int):
            raise EventError(
                f"meta.{key}", f"must be a string, integer, boolean or null, got {_json_type(item)}"
            )
    if not value:
        return ""
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
