"""The dedup index of usage events on SQLite: 64-bit key hashes in memory, kept durably as runs.

Why not a UNIQUE index. Event ids are random (uuid4), so each new key lands on a random page of
a B-tree: a batch of 50,000 events dirties tens of thousands of pages, and every commit writes
them all to the WAL again. Measured on 1M events (50,000 per durable transaction): 8.8 µs per
event with the UNIQUE index, 3.2–3.9 µs without it, with rows appended in ``seq`` order.

The design, in the manner of a log-structured merge tree:

* a key is hashed to 128 bits (xxh3 of ``account ␟ id``): the first 64 are the index's **sort
  key**, the other 64, mixed with the first 64 bits of the event's body fingerprint, its
  **check**;
* each write transaction that stores events adds one **run** to ``usage_key_runs``: its keys'
  sort keys, sorted, with the check and the ``seq`` of each event's row, as three blobs, in the
  same transaction as the rows (so a run exists if and only if its rows do);
* runs are merged as they accumulate (a run is merged into the one before it once that is no
  bigger), so there are about log₂(events / batch) of them;
* every process keeps the runs in memory as sorted arrays (24 bytes per event) and, at the start
  of each write transaction, brings them up to date with the table: runs other processes added
  are read, runs merged away are dropped. A run carries a random token, so a process recognises
  the runs it wrote itself, and a token never comes back after a rollback.

A sort key found in memory names a candidate row. When the caller knows the new event's body
(the columnar path does) and the check agrees too, the event is a duplicate without its row
being read: 128 bits of key agree, and 64 of body. That is what makes a replay of a file cheap
(reading 50,000 rows back cost more than everything else a replayed batch needs). Otherwise the
row at that ``seq`` is read and its account, id and fingerprint compared, so a conflict, or a
key whose sort key merely collides (about 3 in a million over 10M keys), is decided by the row.
Deciding on hashes alone errs only if two different keys agree on all 128 bits (about 2⁻¹²⁸
per pair of keys), or a changed body on 64 (2⁻⁶⁴ per conflicting copy): odds of the order the
128-bit fingerprint already takes for telling a duplicate from a conflict.

Writers are one at a time on SQLite (``BEGIN IMMEDIATE``), which is what makes the in-memory
check a uniqueness guarantee; PostgreSQL, with writers side by side, keeps its UNIQUE constraint
instead and does not use this module.
"""

from __future__ import annotations

import secrets
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from synor_economics.domain.usage import key_digests, key_texts

Hashes = npt.NDArray[np.uint64]
Seqs = npt.NDArray[np.int64]

MERGE_RATIO = 1
"""A run is merged into the one before it once that one is at most this many times its size:
with 1, runs double like the digits of a binary counter, so each key is rewritten about
log₂(events / batch) times and there are as many runs at most."""

MAX_RUN = 1 << 22
"""Entries in one run at most (4M, 96 MiB of blobs): what a merge needs beside the index stays
under about 150 MiB however many events are stored, at the price of one more run to search per
4M events."""

_STORED_HASH, _STORED_SEQ = np.dtype("<u8"), np.dtype("<i8")
"""How runs are kept in their blobs: little-endian, whatever the machine (a database file may
move)."""


def key_hashes(keys: Iterable[tuple[str, str]], count: int) -> Hashes:
    """The 128-bit hashes of ``count`` ``(account, id)`` keys (``domain.usage.key_digests``),
    one row of two 64-bit halves per key: column 0 is the sort key, column 1 goes into the
    check (:func:`checks_of`)."""
    return hashes_of(key_digests(key_texts(keys)), count)


def hashes_of(digests: bytes, count: int) -> Hashes:
    """:func:`key_hashes` of keys whose digests are made already (a columnar batch's)."""
    return np.frombuffer(digests, dtype=_STORED_HASH).astype(np.uint64).reshape(count, 2)


def checks_of(hashes: Hashes, fingerprints: Sequence[str]) -> Hashes:
    """Each key's check: the second half of its hash mixed with the first 64 bits of its body
    fingerprint (hexadecimal digests, as ``domain.usage.body_digest`` makes them)."""
    if not len(fingerprints):
        return np.empty(0, dtype=np.uint64)
    digests = np.frombuffer(bytes.fromhex("".join(fingerprints)), dtype=_STORED_HASH)
    width = len(digests) // len(fingerprints)  # 8-byte words per fingerprint
    return hashes[:, 1] ^ digests[::width].astype(np.uint64)


@dataclass(frozen=True, slots=True)
class Found:
    """Candidate matches of a lookup: the position of the looked-up hash each matches, and the
    candidate's row (``seq``) and check."""

    positions: npt.NDArray[np.intp]
    seqs: Seqs
    checks: Hashes

    @classmethod
    def none(cls) -> Found:
        return cls(
            np.empty(0, dtype=np.intp), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
        )


@dataclass(slots=True, eq=False)
class Run:
    """One run: sorted sort keys, and the check and seq of each one's row, with its token."""

    token: bytes
    hashes: Hashes
    checks: Hashes
    seqs: Seqs

    @classmethod
    def of(cls, hashes: Hashes, checks: Hashes, seqs: Seqs) -> Run:
        order = np.argsort(hashes, kind="stable")
        return cls(secrets.token_bytes(16), hashes[order], checks[order], seqs[order])

    def __len__(self) -> int:
        return len(self.hashes)

    def merged(self, other: Run) -> Run:
        """Both runs as one, in linear time and without an index array as long as the result
        (sorting the concatenation needed three times the memory at 10M keys): ``other``'s
        entries go where ``searchsorted`` puts them among this run's, and this run's fill the
        rest in order."""
        size = len(self) + len(other)
        placed = np.searchsorted(self.hashes, other.hashes, side="right")
        placed += np.arange(len(other))
        rest = np.ones(size, dtype=bool)
        rest[placed] = False

        def interleaved(mine: npt.NDArray[Any], theirs: npt.NDArray[Any]) -> npt.NDArray[Any]:
            column = np.empty(size, dtype=mine.dtype)
            column[placed], column[rest] = theirs, mine
            return column

        hashes: Hashes = interleaved(self.hashes, other.hashes)
        checks: Hashes = interleaved(self.checks, other.checks)
        seqs: Seqs = interleaved(self.seqs, other.seqs)
        return Run(secrets.token_bytes(16), hashes, checks, seqs)

    def find(self, hashes: Hashes) -> Found:
        """Where ``hashes`` (sort keys) occur here: every match of a hash that occurs more than
        once (two keys that collide) included. One binary search per hash, the second (for the
        end of a hash's matches) only for those found."""
        if not len(self.hashes):
            return Found.none()
        low = np.searchsorted(self.hashes, hashes, side="left")
        clipped = np.minimum(low, len(self.hashes) - 1)
        found = np.flatnonzero(self.hashes[clipped] == hashes)
        if not len(found):
            return Found.none()
        high = np.searchsorted(self.hashes, hashes[found], side="right")
        matches = high - low[found]
        single = found[matches == 1]
        positions, at_rows = [single], [low[single]]
        for at, end in zip(found[matches > 1], high[matches > 1], strict=True):
            span = np.arange(low[at], end)  # collisions: rare, one by one
            positions.append(np.full(len(span), at, dtype=np.intp))
            at_rows.append(span)
        rows = np.concatenate(at_rows)
        return Found(np.concatenate(positions), self.seqs[rows], self.checks[rows])


class KeyIndex:
    """One database's runs in memory. Used only inside SQLite write transactions, which run
    one at a time; the lock keeps threads of one process from interleaving anyway."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self._pending: dict[bytes, Run] = {}
        """Runs written by this process's transactions, not yet seen committed."""
        self.lock = threading.Lock()

    def sync(self, driver: Any) -> None:
        """Bring the runs up to date with the table, inside a write transaction."""
        listed = driver.execute("SELECT run, token FROM usage_key_runs ORDER BY run").fetchall()
        known = {run.token: run for run in self.runs}
        known.update(self._pending)
        self.runs = [known.get(token) or _load(driver, number) for number, token in listed]
        self._pending.clear()

    def find(self, hashes: Hashes) -> Found:
        """Candidate matches of ``hashes`` (sort keys) in every run (see :meth:`Run.find`)."""
        # Searched in sorted order, the hashes walk each run front to back: far fewer cache
        # misses than the same searches in random order.
        order = np.argsort(hashes)
        needles = hashes[order]
        matches = [run.find(needles) for run in self.runs]
        if not matches:
            return Found.none()
        return Found(
            order[np.concatenate([found.positions for found in matches])],
            np.concatenate([found.seqs for found in matches]),
            np.concatenate([found.checks for found in matches]),
        )

    def write(self, driver: Any, hashes: Hashes, checks: Hashes, seqs: Seqs) -> None:
        """Store a transaction's new keys (sort keys, checks, rows) as a run, merging runs as
        they accumulate. What this writes becomes the in-memory state at the next :meth:`sync`,
        if it was committed."""
        runs = [*self.runs, Run.of(hashes, checks, seqs)]
        forgotten: list[bytes] = []  # the stored runs merged into the new one
        while (
            len(runs) >= 2
            and len(runs[-2]) <= MERGE_RATIO * len(runs[-1])
            and len(runs[-2]) + len(runs[-1]) <= MAX_RUN
        ):
            older, newer = runs[-2], runs.pop()
            forgotten.append(older.token)
            runs[-1] = older.merged(newer)
        if forgotten:
            marks = ", ".join("?" * len(forgotten))
            driver.execute(f"DELETE FROM usage_key_runs WHERE token IN ({marks})", forgotten)  # noqa: S608
        newest = runs[-1]
        driver.execute(
            "INSERT INTO usage_key_runs (token, entries, hashes, checks, seqs) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                newest.token,
                len(newest),
                _blob(newest.hashes.astype(_STORED_HASH, copy=False)),
                _blob(newest.checks.astype(_STORED_HASH, copy=False)),
                _blob(newest.seqs.astype(_STORED_SEQ, copy=False)),
            ),
        )
        self._pending[newest.token] = newest


def _blob(values: npt.NDArray[Any]) -> memoryview:
    """An array's bytes for a BLOB parameter, without a copy of its own."""
    return memoryview(values.data).cast("B")


def _load(driver: Any, number: int) -> Run:
    token, hashes, checks, seqs = driver.execute(
        "SELECT token, hashes, checks, seqs FROM usage_key_runs WHERE run = ?", (number,)
    ).fetchone()
    return Run(
        token,
        np.frombuffer(hashes, dtype=_STORED_HASH).astype(np.uint64, copy=False),
        np.frombuffer(checks, dtype=_STORED_HASH).astype(np.uint64, copy=False),
        np.frombuffer(seqs, dtype=_STORED_SEQ).astype(np.int64, copy=False),
    )


_indexes: weakref.WeakKeyDictionary[Engine, KeyIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def index_of(engine: Engine) -> KeyIndex:
    """The key index of the database behind ``engine`` (one per engine in this process)."""
    with _indexes_lock:
        index = _indexes.get(engine)
        if index is None:
            index = _indexes[engine] = KeyIndex()
        return index


_STORED_CHUNK = 1 << 20
"""Stored events indexed at a time when the index is built from scratch."""


def index_stored(driver: Any) -> None:
    """Build the index from the events stored (generation 0), replacing any runs (the
    migrations that change its form). Rows are read a million at a time, each chunk a run
    merged as the index merges its runs, so memory stays that of the index itself (24 bytes
    an event) and one chunk of rows, however many events are stored."""
    driver.execute("DELETE FROM usage_key_runs")
    index, after = KeyIndex(), 0
    while rows := driver.execute(_STORED_ROWS, (after, _STORED_CHUNK)).fetchall():
        seqs, accounts, ids, fingerprints = zip(*rows, strict=True)
        hashes = key_hashes(zip(accounts, ids, strict=True), len(rows))
        stored = np.array(seqs, dtype=np.int64)
        index.write(driver, hashes[:, 0], checks_of(hashes, fingerprints), stored)
        index.sync(driver)
        after = int(stored[-1])


_STORED_ROWS = (
    "SELECT seq, account, event_id, fingerprint FROM usage_events "
    "WHERE generation = 0 AND seq > ? ORDER BY seq LIMIT ?"
)
