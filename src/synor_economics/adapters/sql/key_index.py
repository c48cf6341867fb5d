"""The dedup index of usage events on SQLite: 64-bit key hashes in memory, kept durably as runs.

Why not a UNIQUE index. Event ids are random (uuid4), so each new key lands on a random page of
a B-tree: a batch of 50,000 events dirties tens of thousands of pages, and every commit writes
them all to the WAL again. Measured on 1M events (50,000 per durable transaction): 8.8 µs per
event with the UNIQUE index, 3.2–3.9 µs without it, with rows appended in ``seq`` order.

The design, in the manner of a log-structured merge tree:

* a key is hashed to 64 bits (xxh3 of ``account ␟ id``);
* each write transaction that stores events adds one **run** to ``usage_key_runs``: its keys'
  hashes, sorted, and the ``seq`` of each event's row, as two blobs, in the same transaction as
  the rows (so a run exists if and only if its rows do);
* runs are merged as they accumulate (a run is merged into the one before it once that is no
  bigger), so there are about log₂(events / batch) of them;
* every process keeps the runs in memory as sorted arrays (16 bytes per event) and, at the start
  of each write transaction, brings them up to date with the table: runs other processes added
  are read, runs merged away are dropped. A run carries a random token, so a process recognises
  the runs it wrote itself, and a token never comes back after a rollback.

A hash found in memory is only a candidate: the row at that ``seq`` is read and its account and
id compared, so a hash collision (about 3 in a million over 10M keys) never makes a new event a
duplicate. Writers are one at a time on SQLite (``BEGIN IMMEDIATE``), which is what makes the
in-memory check a uniqueness guarantee; PostgreSQL, with writers side by side, keeps its UNIQUE
constraint instead and does not use this module.
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
import xxhash
from sqlalchemy import Engine

Hashes = npt.NDArray[np.uint64]
Seqs = npt.NDArray[np.int64]

MERGE_RATIO = 1
"""A run is merged into the one before it once that one is at most this many times its size:
with 1, runs double like the digits of a binary counter, so each key is rewritten about
log₂(events / batch) times and there are as many runs at most."""

MAX_RUN = 1 << 22
"""Entries in one run at most (4M, 64 MiB of blobs): what a merge needs beside the index stays
under about 100 MiB however many events are stored, at the price of one more run to search per
4M events."""

_hash = xxhash.xxh3_64_intdigest

_STORED_HASH, _STORED_SEQ = np.dtype("<u8"), np.dtype("<i8")
"""How runs are kept in their blobs: little-endian, whatever the machine (a database file may
move)."""


def key_hashes(keys: Iterable[tuple[str, str]], count: int) -> Hashes:
    """The 64-bit hashes of ``count`` ``(account, id)`` keys. The unit separator cannot occur in
    either part (validation allows printable characters only), so the joined text is unique."""
    return np.fromiter(
        (_hash(f"{account}\x1f{event_id}".encode()) for account, event_id in keys),
        dtype=np.uint64,
        count=count,
    )


@dataclass(slots=True, eq=False)
class Run:
    """One run: sorted hashes and the seq of each one's row, with its token."""

    token: bytes
    hashes: Hashes
    seqs: Seqs

    @classmethod
    def of(cls, hashes: Hashes, seqs: Seqs) -> Run:
        order = np.argsort(hashes, kind="stable")
        return cls(secrets.token_bytes(16), hashes[order], seqs[order])

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
        hashes, seqs = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.int64)
        hashes[placed], seqs[placed] = other.hashes, other.seqs
        rest = np.ones(size, dtype=bool)
        rest[placed] = False
        hashes[rest], seqs[rest] = self.hashes, self.seqs
        return Run(secrets.token_bytes(16), hashes, seqs)

    def find(self, hashes: Hashes) -> tuple[npt.NDArray[np.intp], Seqs]:
        """Where ``hashes`` occur here: pairs of (position in ``hashes``, seq), every match of a
        hash that occurs more than once (two keys that collide) included. One binary search
        per hash, the second (for the end of a hash's matches) only for those found."""
        if not len(self.hashes):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.int64)
        low = np.searchsorted(self.hashes, hashes, side="left")
        clipped = np.minimum(low, len(self.hashes) - 1)
        found = np.flatnonzero(self.hashes[clipped] == hashes)
        if not len(found):
            return found, np.empty(0, dtype=np.int64)
        high = np.searchsorted(self.hashes, hashes[found], side="right")
        matches = high - low[found]
        single = found[matches == 1]
        positions, seqs = [single], [self.seqs[low[single]]]
        for at, end in zip(found[matches > 1], high[matches > 1], strict=True):
            span = self.seqs[low[at] : end]  # collisions: rare, one by one
            positions.append(np.full(len(span), at, dtype=np.intp))
            seqs.append(span)
        return np.concatenate(positions), np.concatenate(seqs)


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

    def find(self, hashes: Hashes) -> tuple[npt.NDArray[np.intp], Seqs]:
        """Candidate matches of ``hashes`` in every run (see :meth:`Run.find`)."""
        # Searched in sorted order, the hashes walk each run front to back: far fewer cache
        # misses than the same searches in random order.
        order = np.argsort(hashes)
        needles = hashes[order]
        matches = [run.find(needles) for run in self.runs]
        if not matches:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.int64)
        return (
            order[np.concatenate([positions for positions, _ in matches])],
            np.concatenate([seqs for _, seqs in matches]),
        )

    def write(self, driver: Any, hashes: Hashes, seqs: Seqs) -> None:
        """Store a transaction's new keys as a run, merging runs as they accumulate. What this
        writes becomes the in-memory state at the next :meth:`sync`, if it was committed."""
        runs = [*self.runs, Run.of(hashes, seqs)]
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
            "INSERT INTO usage_key_runs (token, entries, hashes, seqs) VALUES (?, ?, ?, ?)",
            (
                newest.token,
                len(newest),
                _blob(newest.hashes.astype(_STORED_HASH, copy=False)),
                _blob(newest.seqs.astype(_STORED_SEQ, copy=False)),
            ),
        )
        self._pending[newest.token] = newest


def _blob(values: npt.NDArray[Any]) -> memoryview:
    """An array's bytes for a BLOB parameter, without a copy of its own."""
    return memoryview(values.data).cast("B")


def _load(driver: Any, number: int) -> Run:
    token, hashes, seqs = driver.execute(
        "SELECT token, hashes, seqs FROM usage_key_runs WHERE run = ?", (number,)
    ).fetchone()
    return Run(
        token,
        np.frombuffer(hashes, dtype=_STORED_HASH).astype(np.uint64, copy=False),
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


def first_run(driver: Any, rows: Sequence[tuple[int, str, str]]) -> None:
    """Index rows stored before the index existed (the migration that introduced it)."""
    if rows:
        hashes = key_hashes(((account, event_id) for _, account, event_id in rows), len(rows))
        seqs = np.fromiter((seq for seq, _, _ in rows), dtype=np.int64, count=len(rows))
        KeyIndex().write(driver, hashes, seqs)
