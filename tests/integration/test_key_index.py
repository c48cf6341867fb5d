"""The SQLite key index (``adapters/sql/key_index.py``) deduplicates exactly: across processes
sharing one database file, across merges of its runs, after a rollback, through hash collisions,
and for events stored before it existed."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from sqlalchemy import Engine, text

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql import key_index, migrate
from synor_economics.adapters.sql.engine import make_engine
from synor_economics.adapters.sql.key_index import KeyIndex, Run, key_hashes
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventStatus, parse_event
from synor_economics.ports import ConcurrentWriteError
from synor_economics.services.usage import UsageService
from tests.conftest import migrated_engine
from tests.integration.test_usage import NOW, event, raw_of, statuses


def service(engine: Engine) -> UsageService:
    return UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())


def run_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM usage_key_runs")).scalar_one())


def test_runs_merge_like_a_binary_counter_and_find_every_key() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE usage_key_runs (run INTEGER PRIMARY KEY, token BLOB UNIQUE, "
        "entries INTEGER, hashes BLOB, seqs BLOB)"
    )
    index = KeyIndex()
    keys = [("acct", f"e{i}") for i in range(7 * 40)]
    for batch in range(7):
        index.sync(db)
        part = keys[batch * 40 : (batch + 1) * 40]
        seqs = np.arange(batch * 40 + 1, (batch + 1) * 40 + 1, dtype=np.int64)
        index.write(db, key_hashes(part, len(part)), seqs)
        index.sync(db)
        assert len(index.runs) == (batch + 1).bit_count()  # 1, 1, 2, 1, 2, 2, 3 runs
    assert [len(run) for run in index.runs] == [160, 80, 40]
    positions, seqs = index.find(key_hashes(keys, len(keys)))
    assert sorted(zip(positions.tolist(), seqs.tolist(), strict=True)) == [
        (i, i + 1) for i in range(len(keys))
    ]
    fresh = KeyIndex()  # another process: reads the same runs from the table
    fresh.sync(db)
    assert [len(run) for run in fresh.runs] == [160, 80, 40]
    missing, _ = fresh.find(key_hashes([("acct", "nope")], 1))
    assert len(missing) == 0


def test_a_merge_keeps_every_entry_in_order() -> None:
    rng = np.random.default_rng(3)
    older = Run.of(rng.integers(0, 50, 300, dtype=np.uint64), np.arange(300, dtype=np.int64))
    newer = Run.of(rng.integers(0, 50, 120, dtype=np.uint64), np.arange(300, 420, dtype=np.int64))
    merged = older.merged(newer)
    assert np.all(merged.hashes[:-1] <= merged.hashes[1:])
    pairs = sorted(zip(merged.hashes.tolist(), merged.seqs.tolist(), strict=True))
    every = [
        *zip(older.hashes.tolist(), older.seqs.tolist(), strict=True),
        *zip(newer.hashes.tolist(), newer.seqs.tolist(), strict=True),
    ]
    assert pairs == sorted(every)


def test_a_hash_shared_by_several_keys_names_every_row() -> None:
    run = Run.of(np.array([5, 9, 5, 1], dtype=np.uint64), np.array([10, 11, 12, 13], np.int64))
    positions, seqs = run.find(np.array([5, 2, 1], dtype=np.uint64))
    assert sorted(zip(positions.tolist(), seqs.tolist(), strict=True)) == [
        (0, 10),
        (0, 12),
        (2, 13),
    ]


def test_two_processes_on_one_file_count_each_event_once(sqlite_url: str) -> None:
    """Two engines stand for two processes (``synor serve`` and ``synor usage ingest``): each
    has its own index in memory and catches up with the runs the other wrote and merged."""
    first, second = migrated_engine(sqlite_url), migrated_engine(sqlite_url)
    a, b = service(first), service(second)
    total = 0
    for step in range(12):  # overlapping batches, alternating between the two
        ids = range(step * 10, step * 10 + 20)  # half of each batch was sent the step before
        outcomes = (a if step % 2 else b).ingest(
            [event(f"e{i}", str(i)) for i in ids], source="http"
        )
        fresh = [i for i in ids if i >= step * 10 + (10 if step else 0)]
        total += sum(fresh)
        assert statuses(outcomes) == ["duplicate"] * (20 - len(fresh)) + ["accepted"] * len(fresh)
    assert raw_of(a, "compute.cpu") == raw_of(b, "compute.cpu") == total
    assert run_count(first) <= 4  # 12 runs written, merged as they came
    conflict = a.ingest([event("e3", "999")], source="http")
    assert statuses(conflict) == ["conflict"]
    first.dispose()
    second.dispose()


def test_a_rolled_back_transaction_leaves_no_key_behind(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    catalog = load_default_catalog()
    parsed = parse_event(event("lost"), catalog.resources, None)

    def crash_before_commit() -> None:
        with usage.uow.write() as tx:
            tx.usage.add_events([parsed], received_us=0, source="http")
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash_before_commit()
    assert statuses(usage.ingest([event("lost")], source="http")) == ["accepted"]
    assert raw_of(usage, "compute.cpu") == 7200
    engine.dispose()


def test_storing_a_stored_key_is_refused_as_a_unique_constraint_would(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    catalog = load_default_catalog()
    usage.ingest([event("e1")], source="http")
    parsed = parse_event(event("e1"), catalog.resources, None)
    with pytest.raises(ConcurrentWriteError), usage.uow.write() as tx:
        tx.usage.add_events([parsed], received_us=0, source="http")  # as if dedup was skipped
    twice = parse_event(event("e2"), catalog.resources, None)
    with pytest.raises(ConcurrentWriteError), usage.uow.write() as tx:
        tx.usage.add_events([twice, twice], received_us=0, source="http")
    assert raw_of(usage, "compute.cpu") == 7200
    engine.dispose()


def test_keys_whose_hashes_collide_are_told_apart_by_their_rows(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_index, "_hash", lambda _: 42)  # every key collides with every other
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    first = usage.ingest([event(f"e{i}", str(i)) for i in range(1, 6)], source="http")
    again = usage.ingest(
        [event("e2", "2"), event("e9", "9"), event("e4", "40"), event("e10", "10")],
        source="http",
    )
    assert statuses(first) == ["accepted"] * 5
    assert statuses(again) == ["duplicate", "accepted", "conflict", "accepted"]
    assert raw_of(usage, "compute.cpu") == 1 + 2 + 3 + 4 + 5 + 9 + 10
    engine.dispose()


def test_events_stored_before_the_index_are_found_after_the_upgrade(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine, "0006_chain")  # the UNIQUE constraint, no index yet
    resources = load_default_catalog().resources
    with engine.begin() as conn:
        for i in range(3):
            e = parse_event(event(f"old{i}", str(i)), resources, None)
            conn.execute(
                text(
                    "INSERT INTO usage_events (account, event_id, resource, quantity, ts_us, "
                    "subject, operator, meta, fingerprint, received_us, source) VALUES "
                    "(:a, :i, :r, :q, :t, '', '', '', :f, 0, 'http')"
                ),
                {"a": e.account, "i": e.id, "r": e.resource, "q": str(e.quantity),
                 "t": e.ts_us, "f": e.fingerprint},
            )  # fmt: skip
    migrate.upgrade(engine)
    assert run_count(engine) == 1
    usage = service(engine)
    outcomes = usage.ingest(
        [event("old1", "1"), event("old2", "5"), event("new", "4")], source="http"
    )
    assert statuses(outcomes) == ["duplicate", "conflict", "accepted"]
    assert [d.status for d in usage.dead_letters()] == [EventStatus.CONFLICT]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM usage_events")).scalar_one()
    assert stored == 4
    engine.dispose()


def test_runs_are_kept_little_endian() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE usage_key_runs (run INTEGER PRIMARY KEY, token BLOB UNIQUE, "
        "entries INTEGER, hashes BLOB, seqs BLOB)"
    )
    KeyIndex().write(db, np.array([1], dtype=np.uint64), np.array([258], dtype=np.int64))
    hashes, seqs = db.execute("SELECT hashes, seqs FROM usage_key_runs").fetchone()
    assert hashes == (1).to_bytes(8, "little")
    assert seqs == (258).to_bytes(8, "little")
