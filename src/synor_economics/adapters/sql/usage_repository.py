"""The usage repository over SQLAlchemy Core (``ports.UsageRepository``), SQLite and PostgreSQL.

Lookups by composite key join the table to the keys: ``json_each`` of one JSON array on SQLite,
``unnest`` of one array per key column on PostgreSQL. Row-value ``IN`` lists were the first
version: SQLite scanned the table for them, and PostgreSQL planned a thousand-term ``IN`` for
longer than the lookups took. Rollup deltas are appended to a log and folded into the hourly
table in bulk, exactly: ``NUMERIC`` on PostgreSQL, the ``synor_exact_add`` SQL function on
SQLite (see ``add_hourly``). The ingest hot path reads and writes through the driver itself,
skipping SQLAlchemy's per-row processing.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from itertools import chain, repeat
from itertools import count as count_from
from operator import itemgetter
from typing import Any, cast

import msgspec
import numpy as np
import numpy.typing as npt
import psycopg
import pyarrow as pa
from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.sql import Select, Subquery

from synor_economics.adapters.sql import event_segments
from synor_economics.adapters.sql.bulk import (
    Column,
    chunks,
    copy_columns,
    driver_of,
    insert_rows,
    insert_values,
    pg_array_literal,
)
from synor_economics.adapters.sql.key_index import (
    Found,
    Hashes,
    KeyIndex,
    Seqs,
    checks_of,
    hashes_of,
    index_of,
    key_hashes,
)
from synor_economics.adapters.sql.tables import (
    usage_events,
    usage_gauges,
    usage_hourly,
    usage_hourly_log,
    usage_rejections,
    usage_replacements,
    usage_series,
)
from synor_economics.domain.meters import EXACT, Level
from synor_economics.domain.usage import (
    ActiveEvent,
    DeadLetter,
    EventColumns,
    EventStatus,
    Replacement,
    UsageEvent,
)
from synor_economics.ports import (
    ConcurrentWriteError,
    EventKey,
    GaugeKey,
    HourKey,
    HourlyDeltas,
)

_KEYS_PER_LOOKUP = 20_000
"""Keys per JSON array joined on SQLite (one parameter, however many keys: the bound is only
there to keep each statement's array a sensible size)."""


_EVENT_FIELDS = (
    "account",
    "event_id",
    "resource",
    "quantity",
    "ts_us",
    "subject",
    "operator",
    "meta",
    "fingerprint",
    "received_us",
    "source",
    "generation",
)


_EVENTS_INSERT = f"INSERT INTO usage_events (seq, {', '.join(_EVENT_FIELDS)})"
_EVENTS_TARGET = f"usage_events ({', '.join(_EVENT_FIELDS)})"


_SERIES_INSERT = "INSERT INTO usage_series (account, resource)"
_SERIES_KEPT = "ON CONFLICT (account, resource) DO NOTHING"
_SQLITE_SERIES = (
    "SELECT s.series, s.account, s.resource FROM json_each(?) AS k "
    "JOIN usage_series AS s ON s.account = k.value->>0 AND s.resource = k.value->>1"
)
_PG_SERIES = (
    "SELECT s.series, s.account, s.resource FROM unnest(%s::text[], %s::text[]) AS k(a, r) "
    "JOIN usage_series AS s ON s.account = k.a AND s.resource = k.r"
)
_PG_NEW_SERIES = (
    "INSERT INTO usage_series (account, resource) "
    "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT (account, resource) DO NOTHING"
)

_known_series: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], int]]
_known_series = weakref.WeakKeyDictionary()
_known_series_lock = threading.Lock()


def known_series(engine: Engine) -> dict[tuple[str, str], int]:
    """The series numbers this process has seen committed in the database behind ``engine``
    (a series is never renumbered nor deleted, but by a migration: see ``forget_series``)."""
    with _known_series_lock:
        return _known_series.setdefault(engine, {})


def forget_series(engine: Engine) -> None:
    """Forget the numbers known for ``engine``'s database (its schema has been migrated)."""
    with _known_series_lock:
        _known_series.pop(engine, None)


def _pg_pair_arrays(pairs: Iterable[tuple[str, str]]) -> tuple[str, str]:
    accounts, resources = zip(*pairs, strict=True)
    return pg_array_literal(accounts), pg_array_literal(resources)


def _event_columns(events: EventColumns, received_us: int, source: str) -> list[Column]:
    """Counter events' columns for COPY (PostgreSQL), in ``_EVENT_FIELDS``' order (no
    ``meta``: empty)."""
    size = len(events)
    constants = (
        pa.array(np.full(size, received_us, dtype=np.int64)),
        pa.array([source] * size, pa.string()),
        pa.array(np.zeros(size, dtype=np.int64)),
    )
    native = events.native() if events.native is not None else None
    if isinstance(native, pa.Table) and native.num_rows == size:  # as screened: no conversion
        *fields, fingerprints = native.columns
        return [*fields, pa.array([""] * size, pa.string()), fingerprints, *constants]
    return [*events.columns()[:7], [""] * size, events.fingerprints, *constants]


@contextmanager
def _concurrent_writes() -> Iterator[None]:
    """A copy of events that failed on a key another writer, side by side, stored after our
    lookup (or a deadlock with one) raises ``ConcurrentWriteError``."""
    try:
        yield
    except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as error:
        raise ConcurrentWriteError(str(error).splitlines()[0]) from error


def _repeats(keys: Sequence[EventKey], hashes: Hashes) -> bool:
    """Whether a key occurs twice (the sort keys, sorted, say no at numpy's speed, nearly
    always; ``np.unique`` took ten times as long)."""
    ordered = np.sort(hashes[:, 0])
    return bool((ordered[1:] == ordered[:-1]).any()) and len(set(keys)) != len(keys)


FOLD_ROWS = 65_536
"""Rollup deltas the log holds before they are folded into ``usage_hourly``. Readers
scan the log whole (it has no index, which would be written at random again): at this size a
scan takes a few milliseconds, and a fold adds some 60k deltas in one pass."""

_LOG_COLUMNS = "usage_hourly_log (series, hour_us, quantity, events)"
_LOG_INSERT = f"INSERT INTO {_LOG_COLUMNS}"
FOLD_LOCK_KEY = 0x464F4C44
"""PostgreSQL advisory lock key ("FOLD") held by the one writer folding the rollup log."""
_LOG_SIZE = (  # two subqueries: SQLite reads a lone MIN or MAX off the key, but scans for both
    "SELECT (SELECT MAX(seq) FROM usage_hourly_log) - (SELECT MIN(seq) FROM usage_hourly_log) + 1"
)
_FOLD = (
    "INSERT INTO usage_hourly (series, hour_us, quantity, events) "
    "SELECT series, hour_us, quantity, events FROM usage_hourly_log "
    "WHERE true ORDER BY series, hour_us "  # WHERE: SQLite's parse of an upsert
    "ON CONFLICT (series, hour_us) DO UPDATE SET quantity = CASE "
    "WHEN length(usage_hourly.quantity) <= 18 AND length(excluded.quantity) <= 18 "
    "AND CAST(CAST(usage_hourly.quantity AS INTEGER) AS TEXT) = usage_hourly.quantity "
    "AND CAST(CAST(excluded.quantity AS INTEGER) AS TEXT) = excluded.quantity "
    "THEN CAST(CAST(usage_hourly.quantity AS INTEGER) + CAST(excluded.quantity AS INTEGER) "
    "AS TEXT) "
    "ELSE synor_exact_add(usage_hourly.quantity, excluded.quantity) END, "
    "events = usage_hourly.events + excluded.events"
)
"""The fold on SQLite. Two whole numbers that SQLite reads and writes back as they are (no
point, sign of zero, leading zero or exponent), of at most 18 characters (so their sum cannot
overflow), nearly all of a counter's, are added by SQLite in 64-bit integers, exactly; any other
pair by ``synor_exact_add``. That callback takes the interpreter for each row, and with a batch
being validated on another thread each taking could wait for the switch interval."""
_PG_FOLD = (
    "WITH moved AS (DELETE FROM usage_hourly_log "
    "RETURNING series, hour_us, quantity, events) "
    "INSERT INTO usage_hourly (series, hour_us, quantity, events) "
    "SELECT series, hour_us, SUM(quantity), SUM(events) FROM moved "
    "GROUP BY series, hour_us ORDER BY series, hour_us "
    "ON CONFLICT (series, hour_us) DO UPDATE SET "
    "quantity = usage_hourly.quantity + excluded.quantity, "
    "events = usage_hourly.events + excluded.events"
)


def hourly_rows() -> Subquery:
    """The hourly rollups as readers must see them: ``usage_hourly``'s rows and the deltas
    still in the log, to be summed by key, with their series' account and resource (a
    reader's account is found in ``usage_series``' unique index, then its hours by key)."""
    pair = usage_series.c

    def rows(table: Table) -> Select[Any]:
        values = (table.c.hour_us, table.c.quantity, table.c.events)
        return select(pair.account, pair.resource, *values).join_from(
            table, usage_series, pair.series == table.c.series
        )

    return union_all(rows(usage_hourly), rows(usage_hourly_log)).subquery("hourly")


_json = msgspec.json.Encoder().encode
"""Keys for SQLite's ``json_each`` lookups (several times faster than the standard library's)."""


_PG_FINGERPRINTS = (
    "SELECT t.account, t.event_id, t.fingerprint FROM unnest(%s::text[], %s::text[]) AS k(a, i) "
    "JOIN usage_events AS t ON t.account = k.a AND t.event_id = k.i AND t.generation = 0"
)
_SQLITE_BY_SEQ = (
    "SELECT t.account, t.event_id, t.fingerprint FROM json_each(?) AS k "
    "JOIN usage_events AS t ON t.seq = k.value"
)
"""The ingest hot path's lookups, through the driver: keys as two array literals (PostgreSQL),
or on SQLite the rows the key index names, by ``seq`` as one JSON array; plain tuples back,
without SQLAlchemy's per-row result processing, which cost more than the lookup. Generation 0
only: the events as they arrived (a replacement's are apart)."""


_TIME_ORDER = itemgetter(2, 4)  # an ActiveEvent's ts_us, then seq


def _segment_events(
    segment: event_segments.Segment,
    account: str,
    resources: set[str],
    start_us: int,
    end_us: int | None,
) -> Iterator[ActiveEvent]:
    """The account's events of a segment in a window, as rollups are rebuilt from them: the
    columns that tell which rows are decoded first, the rest only if some row is."""
    rows = segment.rows_of(account, start_us, end_us, resources)
    if not rows:
        return
    kinds, stamps = segment.column(event_segments.RESOURCE), segment.column(event_segments.TS_US)
    quantities = segment.column(event_segments.QUANTITY)
    subjects = segment.column(event_segments.SUBJECT)
    for row in rows:
        seq = segment.first_seq + row
        yield ActiveEvent(kinds[row], subjects[row], stamps[row], Decimal(quantities[row]), seq)


class SqlUsageRepository:
    def __init__(self, conn: Connection, *, fold_inline: bool = True) -> None:
        """``fold_inline``: whether ``finish`` folds a full rollup log in this transaction;
        where it does not, whoever opened the transaction has the log folded apart
        (``background.py``) once it has committed (see ``logged``)."""
        self.conn = conn
        self._fold_inline = fold_inline
        self._series_known = known_series(conn.engine)
        self._new_series: dict[tuple[str, str], int] = {}
        self._postgres = conn.dialect.name == "postgresql"
        self._index = None if self._postgres else index_of(conn.engine)
        self._synced = False
        self._staged: list[tuple[Hashes, Hashes, Seqs]] = []
        """This transaction's new keys (SQLite): sort keys, checks and rows, written as one run
        by :meth:`finish`..."""
        self._staged_keys: list[tuple[Sequence[EventKey], list[str]]] = []
        """... and their keys and fingerprints, for lookups later in the same transaction, put
        into ``_staged_found`` only if one comes (a batch is usually looked up once, before it
        is stored; under group commit, the next batch's lookup comes)."""
        self._staged_found: dict[EventKey, str] = {}
        self._logged = False
        """Whether this transaction appended rollup deltas to the log (``finish`` then sees
        whether it is full)."""

    @property
    def logged(self) -> bool:
        """Whether this transaction appended rollup deltas to the log."""
        return self._logged

    def _rows_by_key(
        self, table: Table, key: Sequence[str], keys: Collection[tuple[Any, ...]]
    ) -> Iterator[Any]:
        """The rows of ``table`` whose ``key`` columns match one of ``keys``."""
        if not keys:
            return
        columns = [table.c[name] for name in key]
        if not self._postgres:
            # One JSON array of keys joined to the table: SQLite walks the array and probes the
            # key's index once per element (a row-value IN list would scan the table instead).
            on = " AND ".join(f"t.{name} = k.value->>{i}" for i, name in enumerate(key))
            listed = ", ".join(f"t.{column.name}" for column in table.c)  # named, not t.*:
            # a table rebuilt by a migration may hold its columns in another order
            sql = f"SELECT {listed} FROM json_each(:keys) AS k JOIN {table.name} AS t ON {on}"  # noqa: S608
            typed = text(sql).columns(*table.c)
            for chunk in chunks(keys, _KEYS_PER_LOOKUP):
                yield from self.conn.execute(typed, {"keys": _json(chunk)})
            return
        arrays = [list(values) for values in zip(*keys, strict=True)]
        wanted = select(
            *(
                func.unnest(bindparam(f"k{i}", values, type_=ARRAY(column.type))).label(name)
                for i, (values, column, name) in enumerate(zip(arrays, columns, key, strict=True))
            )
        ).subquery("wanted")
        joined = select(table).join(
            wanted,
            and_(*(column == wanted.c[name] for column, name in zip(columns, key, strict=True))),
        )
        yield from self.conn.execute(joined)

    def fingerprints(self, keys: Collection[EventKey]) -> dict[EventKey, str]:
        if not keys:  # nothing to look up (a batch all columnar): not even this transaction's
            return {}  # staged keys, whose dict would be made for nothing
        if not self._postgres:
            wanted = list(keys)
            return self._stored(wanted, key_hashes(wanted, len(wanted)))
        found: dict[EventKey, str] = {}
        with driver_of(self.conn).cursor() as cursor:
            for chunk in chunks(keys, _KEYS_PER_LOOKUP):
                accounts, ids = zip(*chunk, strict=True)
                cursor.execute(
                    _PG_FINGERPRINTS, (pg_array_literal(accounts), pg_array_literal(ids))
                )
                found.update(((account, event_id), digest) for account, event_id, digest in cursor)
        return found

    def add_events(
        self, events: Sequence[UsageEvent], *, received_us: int, source: str, generation: int = 0
    ) -> None:
        if not events:
            return
        # The hot path of ingestion goes to the driver directly (COPY on PostgreSQL, multi-row
        # VALUES on SQLite): SQLAlchemy's per-row parameter handling costs more here than the
        # database's own work.
        texts = ((a, i, r, format(q, "f"), t, s, o, m, f) for a, i, r, q, t, s, o, m, f in events)
        columns = list(zip(*texts, strict=True))  # the first nine of _EVENT_FIELDS
        if self._postgres:
            constants = ([received_us] * len(events), [source] * len(events))
            self._copy_columns([*map(list, columns), *constants, [generation] * len(events)])
            return
        keys = [e[:2] for e in events]
        fingerprints = [e.fingerprint for e in events]
        self._append(
            keys,
            fingerprints,
            columns,
            received_us=received_us,
            source=source,
            generation=generation,
            entries=self._new_keys(keys, fingerprints) if generation == 0 else None,
        )

    def add_new_events(
        self, events: EventColumns, *, received_us: int, source: str
    ) -> dict[int, str]:
        """Store those of the counter events whose keys are not stored yet (generation 0);
        the stored fingerprint of each of the others, by row. The keys are hashed and looked up
        once, for both, and the new events stored as one segment (SQLite:
        ``event_segments.py``)."""
        if not len(events):
            return {}
        if self._postgres:
            return self._add_new_postgres(events, received_us=received_us, source=source)
        keys = events.keys()
        hashes = hashes_of(events.digests, len(keys))
        if _repeats(keys, hashes):  # PostgreSQL's constraint says so
            raise ValueError("a batch of events repeats a key (account, id)")
        checks = checks_of(hashes, events.fingerprints)
        stored = self._stored_rows(keys, hashes, checks, events.fingerprints)
        fresh = events.without(stored.keys())
        if stored and fresh:  # the fresh rows' keys and index entries, as ``without`` kept them
            keys = fresh.keys()
            kept = np.ones(len(events), dtype=bool)
            kept[list(stored)] = False
            hashes, checks = hashes[kept], checks[kept]
        if fresh:
            driver = driver_of(self.conn)
            first = event_segments.next_seq(driver)
            event_segments.append(driver, fresh.columns(), first, received_us, source)
            self._stage(keys, fresh.fingerprints, (hashes[:, 0], checks), first)
        return stored

    def _add_new_postgres(
        self, events: EventColumns, *, received_us: int, source: str
    ) -> dict[int, str]:
        """``add_new_events`` on PostgreSQL: the batch is copied first as if every key were
        new, as nearly always they are, and the unique constraint's check is the lookup. Only
        if a key is stored already does the copy fail; it is undone back to a savepoint, and
        the keys are looked up and the new ones copied, as before.

        The lookup, a join of the batch's keys to the constraint's index, cost PostgreSQL about
        as much again as the copy, which probes the same index for each key anyway. A replayed
        batch pays a copy that fails at its first row, then the lookup."""
        driver = driver_of(self.conn)
        driver.execute("SAVEPOINT synor_new_events")
        try:
            self._copy_columns(_event_columns(events, received_us, source))
        except ConcurrentWriteError:  # a key stored already (or a writer beside us)
            driver.execute("ROLLBACK TO SAVEPOINT synor_new_events")
        else:
            driver.execute("RELEASE SAVEPOINT synor_new_events")
            return {}
        keys = events.keys()
        found = self.fingerprints(keys)
        stored = {row: found[key] for row, key in enumerate(keys) if key in found}
        fresh = events.without(stored.keys())
        if fresh:
            self._copy_columns(_event_columns(fresh, received_us, source))
        return stored

    def _copy_columns(self, columns: Sequence[Column]) -> None:
        """COPY events given as columns (PostgreSQL), in ``_EVENT_FIELDS``' order, as CSV
        (``bulk.copy_columns``).

        In key order: two writers storing some of the same keys then wait on each other in one
        direction only, never in a circle (a deadlock, seen in the side-by-side test when each
        copied its batch in arrival order)."""
        with _concurrent_writes():
            copy_columns(driver_of(self.conn), _EVENTS_TARGET, columns, sort_by=2)

    # -- the SQLite key index (key_index.py) --------------------------------------------------

    def _stored(self, keys: Sequence[EventKey], hashes: Hashes) -> dict[EventKey, str]:
        """The fingerprints of those ``keys`` stored in generation 0 (SQLite): the key index
        names candidate rows by sort key, and each candidate's own row decides."""
        candidates = self._candidates(hashes[:, 0])
        staged = self._staged_lookup()
        found = {key: staged[key] for key in keys if key in staged} if staged else {}
        found.update(self._read(keys, candidates.positions, candidates.seqs))
        return found

    def _stored_rows(
        self, keys: Sequence[EventKey], hashes: Hashes, checks: Hashes, fingerprints: list[str]
    ) -> dict[int, str]:
        """The stored fingerprint of each of these events (rows of a batch) whose key is stored
        in generation 0 (SQLite). A candidate whose check agrees is the key, stored with that
        body, and its row is not read; any other candidate's own row decides (``key_index.py``
        says why both are exact enough). By row, not key: a replayed batch of 50,000 events is
        then a few array operations, where dicts by key cost more than all the rest."""
        candidates = self._candidates(hashes[:, 0])
        staged = self._staged_lookup()
        by_row = (
            {row: staged[key] for row, key in enumerate(keys) if key in staged} if staged else {}
        )
        positions, seqs = candidates.positions, candidates.seqs
        if len(positions):
            agree = candidates.checks == checks[positions]
            rows = positions[agree].tolist()
            by_row.update(zip(rows, map(fingerprints.__getitem__, rows), strict=True))
            positions, seqs = positions[~agree], seqs[~agree]
        if len(seqs):
            found = self._read(keys, positions, seqs)
            for row in set(positions.tolist()):
                if keys[row] in found:
                    by_row[row] = found[keys[row]]
        return by_row

    def _candidates(self, hashes: Hashes) -> Found:
        index = self._synced_index()
        with index.lock:
            return index.find(hashes)

    def _staged_lookup(self) -> dict[EventKey, str]:
        """This transaction's keys stored so far (SQLite), with their fingerprints."""
        staged = self._staged_found
        for staged_keys, fingerprints in self._staged_keys:
            staged.update(zip(staged_keys, fingerprints, strict=True))
        self._staged_keys.clear()
        return staged

    def _read(
        self, keys: Sequence[EventKey], positions: npt.NDArray[np.intp], seqs: Seqs
    ) -> dict[EventKey, str]:
        """The fingerprints of those of ``keys`` that the candidate rows at ``seqs`` hold (a
        candidate of the key at each of ``positions``)."""
        if not len(seqs):
            return {}
        # The keys to take from the rows read: all of them when most are candidates (a set of
        # the list is quicker than picking them out), else the candidates'.
        if 2 * len(positions) > len(keys):
            wanted = set(keys)
        else:
            wanted = set(map(keys.__getitem__, np.sort(positions).tolist()))
        found: dict[EventKey, str] = {}
        driver = driver_of(self.conn)
        listed = np.sort(seqs).tolist()
        for chunk in chunks(listed, _KEYS_PER_LOOKUP):  # in table order
            for account, event_id, digest in driver.execute(_SQLITE_BY_SEQ, (_json(chunk),)):
                if (account, event_id) in wanted:
                    found[(account, event_id)] = digest
        for account, event_id, digest in event_segments.by_seq(driver, listed):
            if (account, event_id) in wanted:
                found[(account, event_id)] = digest
        return found

    def _synced_index(self) -> KeyIndex:
        index = self._index
        assert index is not None
        if not self._synced:  # once per transaction: runs other writers added since
            with index.lock:
                index.sync(driver_of(self.conn))
            self._synced = True
        return index

    def _append(
        self,
        keys: list[EventKey],
        fingerprints: list[str],
        columns: Sequence[Iterable[Any]],
        *,
        received_us: int,
        source: str,
        generation: int,
        entries: tuple[Hashes, Hashes] | None,
    ) -> None:
        """Append rows in ``seq`` order (SQLite); ``columns`` are the events' first nine
        fields, quantities as text. The keys of generation 0 (with their index ``entries``,
        sort keys and checks, checked as new by the caller) are staged for the key index. A
        replacement's generation needs no index: it is stored in one transaction, deduplicated
        within itself."""
        driver = driver_of(self.conn)
        first = event_segments.next_seq(driver)
        constants = repeat(received_us), repeat(source), repeat(generation)
        rows = zip(count_from(first), *columns, *constants)
        insert_values(
            driver, _EVENTS_INSERT, len(_EVENT_FIELDS) + 1, list(chain.from_iterable(rows))
        )
        if entries is not None:
            self._stage(keys, fingerprints, entries, first)

    def _stage(
        self,
        keys: Sequence[EventKey],
        fingerprints: list[str],
        entries: tuple[Hashes, Hashes],
        first: int,
    ) -> None:
        """New keys of generation 0, stored at seqs ``first`` on, for the key index's run
        (``finish``) and for lookups later in this transaction."""
        seqs = np.arange(first, first + len(keys), dtype=np.int64)
        self._staged.append((*entries, seqs))
        self._staged_keys.append((keys, fingerprints))

    def _new_keys(self, keys: list[EventKey], fingerprints: list[str]) -> tuple[Hashes, Hashes]:
        """The keys' index entries (sort keys, checks), refused if any key is stored or
        repeated: the check a UNIQUE constraint makes (dedup has looked the keys up in this
        transaction already, so a hit means a caller skipped it, or a batch repeats a key)."""
        hashes = key_hashes(keys, len(keys))
        if _repeats(keys, hashes) or self._stored(keys, hashes):
            raise ConcurrentWriteError("usage event key already stored (account, id)")
        return hashes[:, 0], checks_of(hashes, fingerprints)

    def finish(self) -> None:
        """Before commit: a full rollup log is folded, and (SQLite) the transaction's new keys
        become a run of the index."""
        if self._logged and self._fold_inline:
            self.fold_log()
        if self._staged and self._index is not None:
            hashes, checks, seqs = (
                np.concatenate(parts) for parts in zip(*self._staged, strict=True)
            )
            with self._index.lock:
                self._index.write(driver_of(self.conn), hashes, checks, seqs)
            self._staged.clear()
            self._staged_keys.clear()
            self._staged_found.clear()

    def lock_gauges(self, keys: Collection[GaugeKey]) -> None:
        """Transaction-level advisory locks on the keys' hashes, taken in sorted order so two
        writers never wait on each other in a circle. SQLite needs none: one writer at a time."""
        if not self._postgres or not keys:
            return
        for key in sorted(keys):
            self.conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": "\x1f".join(key)},
            )

    def gauge_neighbours(self, key: GaugeKey, ts_us: int) -> tuple[Level | None, int | None]:
        c = usage_events.c
        account, resource, subject = key
        same = and_(
            c.account == account,
            c.resource == resource,
            c.subject == subject,
            c.subject != "",  # says the partial gauge index applies (a gauge has a subject)
            c.superseded_by.is_(None),
        )
        before = self.conn.execute(
            select(c.ts_us, c.quantity)
            .where(same, c.ts_us <= ts_us)
            .order_by(c.ts_us.desc(), c.seq.desc())
            .limit(1)
        ).first()
        after = self.conn.execute(
            select(c.ts_us).where(same, c.ts_us > ts_us).order_by(c.ts_us).limit(1)
        ).scalar()
        previous = None if before is None else Level(before.ts_us, before.quantity)
        return previous, after

    def add_hourly(self, deltas: Mapping[HourKey, tuple[Decimal | str, int]]) -> None:
        """Add to the rollups, exactly: the deltas are appended to ``usage_hourly_log``, and
        folded into ``usage_hourly`` once it holds ``FOLD_ROWS`` (``finish``).

        Why not add in place: a batch's hours lie all over the table. On SQLite that dirtied a
        page per event, and SQLite writes each dirty page (4 KiB) to its log at commit: for a
        request of 1,000 events, most of the time it took. On PostgreSQL each delta was an
        index probe and a row version, and writers side by side waited on each other's rows.
        Appended deltas fill pages in order (COPY on PostgreSQL, multi-row ``VALUES`` on
        SQLite) and conflict with nothing; the fold adds them in key order. Readers add both
        tables (``hourly_rows``)."""
        self.add_hourly_columns(HourlyDeltas.of(deltas))

    def add_hourly_columns(self, deltas: HourlyDeltas) -> None:
        """:meth:`add_hourly` for deltas as columns: each pair's series is found once, and
        the log's rows are made in C (no tuple per delta)."""
        if not len(deltas):
            return
        numbers = np.array(self._series_numbers(deltas.pairs), dtype=np.int64)
        series = numbers[np.asarray(deltas.pair, dtype=np.intp)]
        driver = driver_of(self.conn)
        if self._postgres:
            columns = (pa.array(series), deltas.hour_us, deltas.quantity, deltas.events)
            copy_columns(driver, _LOG_COLUMNS, columns)
        else:
            rows = zip(series.tolist(), deltas.hour_us, deltas.quantity, deltas.events, strict=True)
            insert_values(driver, _LOG_INSERT, 4, list(chain.from_iterable(rows)))
        self._logged = True

    # -- series: the (account, resource) pairs' numbers --------------------------------------

    def _series_numbers(self, pairs: list[tuple[str, str]]) -> list[int]:
        """The numbers of these (account, resource) pairs, in order, each numbered the first
        time it has a rollup. Pairs this process has seen committed are known without a query
        (looked up in C: the set of the pairs and dict of those known it replaces were some
        5% of the interpreter's time serving HTTP ingestion)."""
        numbers = list(map(self._series_known.get, pairs))
        if None not in numbers:
            return cast(list[int], numbers)
        missing = {pair for pair, number in zip(pairs, numbers, strict=True) if number is None}
        found = self._series_of_new(missing)
        return [found[pair] if n is None else n for pair, n in zip(pairs, numbers, strict=True)]

    def _series_of_new(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Numbers of pairs this process does not know yet: those this transaction found or
        made already, then those stored, then new ones, numbered now. They become known to
        the process once this transaction has committed (``committed``): a number made by a
        transaction that is rolled back is never taken for a stored one."""
        pending = self._new_series
        found = {pair: pending[pair] for pair in pending.keys() & pairs}
        rest = pairs.difference(found)
        if rest:
            stored = self._stored_series(rest)
            missing = rest.difference(stored)
            if missing:  # in sorted order: writers side by side wait in one direction only
                rows = sorted(missing)
                driver = driver_of(self.conn)
                if self._postgres:
                    with driver.cursor() as cursor:
                        cursor.execute(_PG_NEW_SERIES, _pg_pair_arrays(rows))
                else:
                    insert_rows(driver, _SERIES_INSERT, 2, rows, _SERIES_KEPT)
                stored.update(self._stored_series(missing))
            pending.update(stored)
            found.update(stored)
        return found

    def _stored_series(self, pairs: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
        driver = driver_of(self.conn)
        found: dict[tuple[str, str], int] = {}
        for chunk in chunks(pairs, _KEYS_PER_LOOKUP):
            if self._postgres:
                with driver.cursor() as cursor:
                    cursor.execute(_PG_SERIES, _pg_pair_arrays(chunk))
                    rows = cursor.fetchall()
            else:
                rows = driver.execute(_SQLITE_SERIES, (_json(chunk),)).fetchall()
            found.update(((account, resource), series) for series, account, resource in rows)
        return found

    def committed(self) -> None:
        """After commit: the pairs this transaction numbered or found are known to the
        process from now on."""
        if self._new_series:
            self._series_known.update(self._new_series)
            self._new_series = {}

    def fold_log(self) -> None:
        """Add the logged deltas into ``usage_hourly`` and empty the log, if it holds
        ``FOLD_ROWS``. On SQLite (one writer) one statement adds them in key order (``_FOLD``:
        ``synor_exact_add`` is called only where an hour already has a row or a second delta,
        and the two are not small whole numbers). On PostgreSQL one statement deletes the
        log's rows and adds exactly those it deleted, so deltas committed meanwhile by other
        writers stay for the next fold; one folder at a time (an advisory lock tried, not
        waited for: a writer that finds a fold running leaves the log to it)."""
        driver = driver_of(self.conn)
        if self._postgres:
            with driver.cursor() as cursor:
                cursor.execute(_LOG_SIZE)
                (size,) = cursor.fetchone()
                if size is None or size < FOLD_ROWS:
                    return
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (FOLD_LOCK_KEY,))
                (locked,) = cursor.fetchone()
                if locked:
                    cursor.execute(_PG_FOLD)
            return
        (size,) = driver.execute(_LOG_SIZE).fetchone()
        if size is not None and size >= FOLD_ROWS:
            driver.execute(_FOLD)
            driver.execute("DELETE FROM usage_hourly_log")

    def open_gauges(self, keys: Collection[GaugeKey]) -> dict[GaugeKey, Level]:
        rows = self._rows_by_key(usage_gauges, ("account", "resource", "subject"), keys)
        return {(r.account, r.resource, r.subject): Level(r.since_us, r.level) for r in rows}

    def save_open_gauges(self, rows: Mapping[GaugeKey, Level]) -> None:
        if not rows:
            return
        self._replace(
            usage_gauges,
            ("account", "resource", "subject"),
            [(a, r, s, format(v.level, "f"), v.ts_us) for (a, r, s), v in rows.items()],
        )

    def _replace(self, table: Table, key: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Insert-or-replace by primary key, through the driver: an ``unnest`` of one array per
        column on PostgreSQL, multi-row ``VALUES`` on SQLite. ``rows`` are in the table's column
        order, decimals as plain-notation text (both databases read that exactly); table and
        column names are this module's constants."""
        names = [column.name for column in table.c]
        updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in key)
        conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        driver = driver_of(self.conn)
        if self._postgres:
            dialect = self.conn.dialect
            arrays = ", ".join(f"%s::{c.type.compile(dialect=dialect)}[]" for c in table.c)
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) {conflict}"  # noqa: S608, E501
            with driver.cursor() as cursor:
                # each column one array literal: psycopg adapts a list element by element
                cursor.execute(sql, [pg_array_literal(col) for col in zip(*rows, strict=True)])
            return
        insert_rows(
            driver, f"INSERT INTO {table.name} ({', '.join(names)})", len(names), rows, conflict
        )

    # -- replacements ------------------------------------------------------------------------

    def add_replacement(self, replacement: Replacement) -> int:
        result = self.conn.execute(
            insert(usage_replacements).values(
                account=replacement.account,
                start_us=replacement.start_us,
                end_us=replacement.end_us,
                created_us=replacement.created_us,
                superseded=replacement.superseded,
                added=replacement.added,
                note=replacement.note,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def update_replacement(self, replacement: Replacement) -> None:
        self.conn.execute(
            update(usage_replacements)
            .where(usage_replacements.c.seq == replacement.seq)
            .values(
                superseded=replacement.superseded,
                added=replacement.added,
                reverted_us=replacement.reverted_us,
            )
        )

    def replacements(self, account: str | None) -> list[Replacement]:
        c = usage_replacements.c
        query = select(usage_replacements).order_by(c.seq.desc())
        if account is not None:
            query = query.where(c.account == account)
        # The table's columns are the dataclass's fields, by name.
        return [Replacement(**row._mapping) for row in self.conn.execute(query)]

    def supersede(self, account: str, start_us: int, end_us: int, by: int) -> int:
        """Take the account's counted events in the window out of the count (SQLite: those
        held in segments are first taken out of them, as rows, which are then marked)."""
        if not self._postgres:
            taken = event_segments.take_out(driver_of(self.conn), account, start_us, end_us)
            insert_rows(driver_of(self.conn), _EVENTS_INSERT, len(_EVENT_FIELDS) + 1, taken)
        c = usage_events.c
        result = self.conn.execute(
            update(usage_events)
            .where(
                c.account == account,
                c.ts_us >= start_us,
                c.ts_us < end_us,
                c.superseded_by.is_(None),
                c.generation != by,
            )
            .values(superseded_by=by)
        )
        return int(result.rowcount)

    def withdraw(self, replacement: int) -> None:
        """Take a replacement's events out of the count and put back those it superseded."""
        c = usage_events.c
        self.conn.execute(
            update(usage_events)
            .where(c.generation == replacement, c.superseded_by.is_(None))
            .values(superseded_by=-replacement)
        )
        self.conn.execute(
            update(usage_events).where(c.superseded_by == replacement).values(superseded_by=None)
        )

    def active_events(
        self, account: str, resources: Collection[str], start_us: int, end_us: int | None
    ) -> list[ActiveEvent]:
        c = usage_events.c
        query = (
            select(c.resource, c.subject, c.ts_us, c.quantity, c.seq)
            .where(
                c.account == account,
                c.resource.in_(list(resources)),
                c.ts_us >= start_us,
                c.superseded_by.is_(None),
            )
            .order_by(c.ts_us, c.seq)
        )
        if end_us is not None:
            query = query.where(c.ts_us < end_us)
        events = [ActiveEvent(*row) for row in self.conn.execute(query)]
        if self._postgres:
            return events
        wanted = set(resources)
        for segment in event_segments.scan(driver_of(self.conn), start_us, end_us):
            events.extend(_segment_events(segment, account, wanted, start_us, end_us))
        events.sort(key=_TIME_ORDER)
        return events

    def clear_rollups(
        self, account: str, resources: Collection[str], start_us: int, end_us: int | None
    ) -> None:
        """Delete hourly rollups of these resources from ``start_us`` (to ``end_us``), and the
        open gauge segments of these resources when the range is open-ended."""
        pair = usage_series.c
        series = select(pair.series).where(
            pair.account == account, pair.resource.in_(list(resources))
        )
        for table in (usage_hourly, usage_hourly_log):  # the rollups and their logged deltas
            c = table.c
            condition = and_(c.series.in_(series), c.hour_us >= start_us)
            if end_us is not None:
                condition = and_(condition, c.hour_us < end_us)
            self.conn.execute(delete(table).where(condition))
        if end_us is None:
            g = usage_gauges.c
            self.conn.execute(
                delete(usage_gauges).where(g.account == account, g.resource.in_(list(resources)))
            )

    def add_rejections(self, rows: Sequence[DeadLetter]) -> None:
        if not rows:
            return
        self.conn.execute(
            insert(usage_rejections),
            [
                {
                    "received_us": r.received_us,
                    "source": r.source,
                    "status": r.status.value,
                    "account": r.account,
                    "event_id": r.event_id,
                    "field": r.field,
                    "reason": r.reason,
                    "body": r.body,
                }
                for r in rows
            ],
        )

    def period_totals(
        self, account: str, start_us: int, end_us: int
    ) -> dict[str, tuple[Decimal, int]]:
        c = hourly_rows().c
        query = select(c.resource, c.quantity, c.events).where(
            c.account == account, c.hour_us >= start_us, c.hour_us < end_us
        )
        totals: dict[str, tuple[Decimal, int]] = {}
        for row in self.conn.execute(query):
            quantity, events = totals.get(row.resource, (Decimal(0), 0))
            totals[row.resource] = (EXACT.add(quantity, row.quantity), events + row.events)
        return totals

    def period_totals_of(
        self, accounts: Collection[str], start_us: int, end_us: int
    ) -> dict[str, dict[str, Decimal]]:
        c = hourly_rows().c
        totals: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for chunk in chunks(accounts, 2000):
            query = select(c.account, c.resource, c.quantity).where(
                c.account.in_(chunk), c.hour_us >= start_us, c.hour_us < end_us
            )
            for account, resource, quantity in self.conn.execute(query):
                mine = totals[account]
                mine[resource] = EXACT.add(mine.get(resource, Decimal(0)), quantity)
        return totals

    def open_gauges_of(self, accounts: Collection[str]) -> dict[GaugeKey, Level]:
        c = usage_gauges.c
        found: dict[GaugeKey, Level] = {}
        for chunk in chunks(accounts, 2000):
            query = select(usage_gauges).where(c.account.in_(chunk))
            for row in self.conn.execute(query):
                found[(row.account, row.resource, row.subject)] = Level(row.since_us, row.level)
        return found

    def account_open_gauges(self, account: str) -> dict[GaugeKey, Level]:
        query = select(usage_gauges).where(usage_gauges.c.account == account)
        return {
            (row.account, row.resource, row.subject): Level(row.since_us, row.level)
            for row in self.conn.execute(query)
        }

    def dead_letters(self, *, limit: int, before: int | None) -> list[DeadLetter]:
        c = usage_rejections.c
        query = select(usage_rejections).order_by(c.seq.desc()).limit(limit)
        if before is not None:
            query = query.where(c.seq < before)
        return [
            DeadLetter(**{**row._mapping, "status": EventStatus(row.status)})
            for row in self.conn.execute(query)
        ]
