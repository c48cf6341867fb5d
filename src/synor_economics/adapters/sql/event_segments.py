"""Event segments (SQLite): the plain counter events of one batch stored as one row of columns.

Why. Appending an event as a row of ``usage_events`` cost SQLite about 1.2 µs (a record of
thirteen values put at the end of the table's B-tree, its values bound one by one), the largest
single part of storing an event once the dedup index was out of the table. The events that
come through the columnar path (``services/usage_columns``: counters without ``meta``, nearly
all of usage) are already columns; stored as one row per batch (the columns packed with
msgpack), a batch of 50,000 costs one insert of a few megabytes. Measured on the 1M-event
backfill: 173k → 220k events/s; HTTP batches of 1,000 from four connections: 96k → 115k.

What a segment holds: its events' seqs are ``first_seq`` to ``first_seq + events - 1``, taken
from the same sequence as the rows of ``usage_events`` (``next_seq``), so the key index names
an event by its seq wherever it lies. Every event of a segment is of generation 0, without
``meta``, and counted (``superseded_by`` null): the only change an event can undergo, being
superseded by a replacement, first *takes it out* (``take_out``): it becomes a row of
``usage_events`` with the same seq, and its place in the segment is listed in ``moved``, which
readers skip. So every other rule about events (replacements, reverts, gauges) still works on
rows, and a segment's live events are always plain, counted, original events.

Readers: dedup reads candidate events by seq (``by_seq``), a replacement's rebuild reads an
account's events in a window (``scan``). A segment's columns are decoded as they are read
(``Segment.column``): a scan reads every segment whose time range meets the window and decodes
its accounts, resources and times (about 3 ms per 50,000 events), the other columns (about 15
ms) only where some row is wanted, which replacements, rare and by hand, can afford; dedup reads
a segment only for a candidate that its check does not settle (a conflict, or a sort key shared
by two keys), and decodes the three columns it compares. PostgreSQL stores rows (COPY into the
unique constraint that is its dedup index), and never segments.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

Columns = tuple[
    list[str], list[str], list[str], list[str], list[int], list[str], list[str], list[str]
]
"""A segment's columns: account, event_id, resource, quantity (canonical decimal text), ts_us,
subject, operator, fingerprint, as ``EventColumns.columns`` gives them."""

_FORMAT = 1
"""The packing's version, first in every packed segment."""

_encode = msgspec.msgpack.Encoder().encode
_Raw = msgspec.Raw
_Packed = tuple[int, _Raw, _Raw, _Raw, _Raw, _Raw, _Raw, _Raw, _Raw]
_decode_packed: Callable[[bytes], _Packed] = msgspec.msgpack.Decoder(_Packed).decode
"""A segment's columns still packed, each decoded only when read: a reader that needs three
of eight decodes three (the ids and fingerprints, the longest texts, cost the most)."""
_decode_texts = msgspec.msgpack.Decoder(list[str]).decode
_decode_numbers = msgspec.msgpack.Decoder(list[int]).decode
_decode_moved = _decode_numbers
ACCOUNT, EVENT_ID, RESOURCE, QUANTITY, TS_US, SUBJECT, OPERATOR, FINGERPRINT = range(8)
"""Positions of the columns."""

_INSERT = (
    "INSERT INTO usage_event_segments "
    "(first_seq, events, min_ts_us, max_ts_us, received_us, source, columns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = (
    "SELECT segment, first_seq, events, received_us, source, columns, moved "
    "FROM usage_event_segments"
)


@dataclass(slots=True)
class Segment:
    """One segment, its columns decoded as they are read (``column``)."""

    segment: int
    first_seq: int
    events: int
    received_us: int
    source: str
    packed: list[_Raw]
    moved: frozenset[int]
    """Rows taken out into ``usage_events`` (by a replacement): no longer here."""
    _decoded: dict[int, list[Any]] = field(default_factory=dict)

    def column(self, position: int) -> list[Any]:
        """One column (``ACCOUNT`` … ``FINGERPRINT``), decoded once."""
        found = self._decoded.get(position)
        if found is None:
            decode = _decode_numbers if position == TS_US else _decode_texts
            found = self._decoded[position] = decode(self.packed[position])
        return found

    @property
    def columns(self) -> Columns:
        """Every column, decoded."""
        return tuple(self.column(position) for position in range(8))  # type: ignore[return-value]

    def live(self) -> Iterator[int]:
        """The rows still held here, in order."""
        moved = self.moved
        return (row for row in range(self.events) if row not in moved)

    def rows_of(
        self,
        account: str,
        start_us: int,
        end_us: int | None,
        resources: Collection[str] | None = None,
    ) -> list[int]:
        """The live rows of an account in ``[start_us, end_us)`` (any end when None), of
        ``resources`` if given. The resources are looked at first, so a segment that holds none
        of them (say, for a gauge's history: segments hold counters only) decodes no more."""
        kinds = self.column(RESOURCE) if resources is not None else []
        if resources is not None and set(resources).isdisjoint(kinds):
            return []
        accounts, stamps = self.column(ACCOUNT), self.column(TS_US)
        end = end_us if end_us is not None else float("inf")
        return [
            row
            for row in self.live()
            if accounts[row] == account
            and start_us <= stamps[row] < end
            and (resources is None or kinds[row] in resources)
        ]

    def event_row(self, row: int, generation: int = 0) -> tuple[Any, ...]:
        """The event at ``row`` as a row of ``usage_events``: seq, then its fields in the
        repository's order (``meta`` empty), received, source, generation."""
        account, event_id, resource, quantity, ts_us, subject, operator, fingerprint = (
            column[row] for column in self.columns
        )
        return (
            self.first_seq + row, account, event_id, resource, quantity, ts_us, subject,
            operator, "", fingerprint, self.received_us, self.source, generation,
        )  # fmt: skip


def pack(columns: Columns) -> bytes:
    """The columns as stored."""
    return _encode((_FORMAT, *columns))


def unpack(packed: bytes) -> list[_Raw]:
    """The columns of a packed segment, each still packed."""
    decoded = _decode_packed(packed)
    if decoded[0] != _FORMAT:
        raise ValueError(f"unknown event segment format {decoded[0]}")
    return list(decoded[1:])


def append(driver: Any, columns: Columns, first_seq: int, received_us: int, source: str) -> None:
    """Store one segment of events, seqs from ``first_seq`` on."""
    stamps = columns[TS_US]
    driver.execute(
        _INSERT,
        (first_seq, len(stamps), min(stamps), max(stamps), received_us, source, pack(columns)),
    )


def next_seq(driver: Any) -> int:
    """The seq after every event stored, as a row or in a segment."""
    (row,) = driver.execute("SELECT COALESCE(MAX(seq), 0) FROM usage_events").fetchone()
    last = driver.execute(
        "SELECT first_seq + events - 1 FROM usage_event_segments ORDER BY first_seq DESC LIMIT 1"
    ).fetchone()
    return max(int(row), int(last[0]) if last else 0) + 1


def by_seq(driver: Any, seqs: Collection[int]) -> Iterator[tuple[str, str, str]]:
    """(account, event_id, fingerprint) of those events at ``seqs`` that segments hold."""
    directory = driver.execute(
        "SELECT segment, first_seq, events FROM usage_event_segments ORDER BY first_seq"
    ).fetchall()
    if not directory or not seqs:
        return
    segments, firsts, sizes = (
        np.array(column, dtype=np.int64) for column in zip(*directory, strict=True)
    )
    wanted = np.unique(np.fromiter(seqs, dtype=np.int64, count=len(seqs)))
    at = np.searchsorted(firsts, wanted, side="right") - 1
    inside = (at >= 0) & (wanted < firsts[np.maximum(at, 0)] + sizes[np.maximum(at, 0)])
    for segment in np.unique(segments[at[inside]]).tolist():
        found = _one(driver, segment)
        rows = wanted[inside & (segments[np.maximum(at, 0)] == segment)] - found.first_seq
        accounts, ids = found.column(ACCOUNT), found.column(EVENT_ID)
        fingerprints = found.column(FINGERPRINT)
        for row in rows.tolist():
            if row not in found.moved:
                yield accounts[row], ids[row], fingerprints[row]


def scan(driver: Any, start_us: int = -(1 << 63), end_us: int | None = None) -> Iterator[Segment]:
    """The segments holding events in ``[start_us, end_us)`` (any end when None; every
    segment by default), in seq order, decoded one at a time: a segment's time range is kept
    with it, so others are not read."""
    end = end_us if end_us is not None else (1 << 63) - 1
    query = _IN_RANGE + " AND min_ts_us < ? ORDER BY first_seq"
    for (segment,) in driver.execute(query, (start_us, end)).fetchall():
        yield _one(driver, segment)


_IN_RANGE = "SELECT segment FROM usage_event_segments WHERE max_ts_us >= ?"


def take_out(driver: Any, account: str, start_us: int, end_us: int) -> list[tuple[Any, ...]]:
    """Take an account's events in ``[start_us, end_us)`` out of every segment: their rows of
    ``usage_events`` (same seqs), for the caller to insert, and their places listed as moved."""
    taken: list[tuple[Any, ...]] = []
    for segment in scan(driver, start_us, end_us):
        rows = segment.rows_of(account, start_us, end_us)
        if rows:
            taken.extend(segment.event_row(row) for row in rows)
            moved = sorted(segment.moved.union(rows))
            driver.execute(
                "UPDATE usage_event_segments SET moved = ? WHERE segment = ?",
                (_encode(moved), segment.segment),
            )
    return taken


def _one(driver: Any, segment: int) -> Segment:
    row = driver.execute(f"{_SELECT} WHERE segment = ?", (segment,)).fetchone()
    return _decoded(row)


def _decoded(row: tuple[Any, ...]) -> Segment:
    segment, first_seq, events, received_us, source, packed, moved = row
    return Segment(
        segment,
        first_seq,
        events,
        received_us,
        source,
        unpack(packed),
        frozenset(_decode_moved(moved)) if moved is not None else frozenset(),
    )
