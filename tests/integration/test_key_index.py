"""The SQLite key index (``adapters/sql/key_index.py``) deduplicates exactly: across processes
sharing one database file, across merges of its runs, after a rollback, through hash collisions,
and for events stored before it existed; a replayed batch is known from the index alone."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import numpy as np
import pytest
import xxhash
from alembic import command
from sqlalchemy import Engine, text

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql import key_index, migrate
from synor_economics.adapters.sql.engine import make_engine
from synor_economics.adapters.sql.key_index import KeyIndex, Run, checks_of, key_hashes
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain import usage as usage_domain
from synor_economics.domain.usage import EventStatus, UsageEvent, parse_event
from synor_economics.ports import ConcurrentWriteError
from synor_economics.services.usage import UsageService
from synor_economics.services.usage_input import Lines
from tests.conftest import migrated_engine
from tests.integration.test_usage import NOW, event, raw_of, statuses


def service(engine: Engine) -> UsageService:
    return UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())


_RUNS = (
    "CREATE TABLE usage_key_runs (run INTEGER PRIMARY KEY, token BLOB UNIQUE, "
    "entries INTEGER, hashes BLOB, checks BLOB, seqs BLOB)"
)


def run_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM usage_key_runs")).scalar_one())


def test_runs_merge_like_a_binary_counter_and_find_every_key() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(_RUNS)
    index = KeyIndex()
    keys = [("acct", f"e{i}") for i in range(7 * 40)]
    for batch in range(7):
        index.sync(db)
        part = keys[batch * 40 : (batch + 1) * 40]
        seqs = np.arange(batch * 40 + 1, (batch + 1) * 40 + 1, dtype=np.int64)
        hashes = key_hashes(part, len(part))
        index.write(db, hashes[:, 0], checks_of(hashes, [f"{i:032x}" for i in seqs]), seqs)
        index.sync(db)
        assert len(index.runs) == (batch + 1).bit_count()  # 1, 1, 2, 1, 2, 2, 3 runs
    assert [len(run) for run in index.runs] == [160, 80, 40]
    hashes = key_hashes(keys, len(keys))
    found = index.find(hashes[:, 0])
    assert sorted(zip(found.positions.tolist(), found.seqs.tolist(), strict=True)) == [
        (i, i + 1) for i in range(len(keys))
    ]
    expected = checks_of(hashes, [f"{i + 1:032x}" for i in range(len(keys))])
    assert np.array_equal(found.checks, expected[found.positions])
    fresh = KeyIndex()  # another process: reads the same runs from the table
    fresh.sync(db)
    assert [len(run) for run in fresh.runs] == [160, 80, 40]
    missing = fresh.find(key_hashes([("acct", "nope")], 1)[:, 0])
    assert len(missing.positions) == 0


def test_a_merge_keeps_every_entry_in_order() -> None:
    rng = np.random.default_rng(3)

    def run(seqs: range) -> Run:
        checks = rng.integers(0, 2**63, len(seqs), dtype=np.uint64)
        hashes = rng.integers(0, 50, len(seqs), dtype=np.uint64)
        return Run.of(hashes, checks, np.array(seqs, dtype=np.int64))

    older, newer = run(range(300)), run(range(300, 420))
    merged = older.merged(newer)
    assert np.all(merged.hashes[:-1] <= merged.hashes[1:])

    def entries(r: Run) -> list[tuple[int, int, int]]:
        return list(zip(r.hashes.tolist(), r.checks.tolist(), r.seqs.tolist(), strict=True))

    assert sorted(entries(merged)) == sorted(entries(older) + entries(newer))


def test_a_hash_shared_by_several_keys_names_every_row() -> None:
    run = Run.of(
        np.array([5, 9, 5, 1], dtype=np.uint64),
        np.array([50, 90, 51, 10], dtype=np.uint64),
        np.array([10, 11, 12, 13], np.int64),
    )
    found = run.find(np.array([5, 2, 1], dtype=np.uint64))
    triples = zip(found.positions.tolist(), found.seqs.tolist(), found.checks.tolist(), strict=True)
    assert sorted(triples) == [(0, 10, 50), (0, 12, 51), (2, 13, 10)]


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


@pytest.mark.parametrize(
    "collide",
    [
        pytest.param(lambda _: bytes(16), id="all 128 bits"),
        pytest.param(lambda text: bytes(8) + xxhash.xxh3_64_digest(text), id="the sort key"),
    ],
)
@pytest.mark.parametrize("as_lines", [False, True], ids=["stored as rows", "stored in a segment"])
def test_keys_whose_hashes_collide_are_told_apart_by_their_rows(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, collide: object, as_lines: bool
) -> None:
    """Every key on one sort key: the stored events, read back by seq (rows, or a segment for
    events sent as lines), decide between keys, and a conflict is found by its event whether
    the keys' other halves collide too or not. (A new key with a stored body whose 128 bits all
    collide would pass for a duplicate: the odds ``key_index.py`` accepts.)"""
    monkeypatch.setattr(usage_domain, "_key_hash", collide)
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    sent = [event(f"e{i}", str(i)) for i in range(1, 6)]
    stored = Lines([json.dumps(e).encode() for e in sent]) if as_lines else sent
    first = usage.ingest(stored, source="http")
    again = [event("e2", "2"), event("e9", "9"), event("e4", "40"), event("e10", "10")]
    outcomes = [usage.ingest(again, source="http")]
    outcomes.append(usage.ingest(Lines([json.dumps(e).encode() for e in again]), source="file"))
    assert statuses(first) == ["accepted"] * 5
    assert statuses(outcomes[0]) == ["duplicate", "accepted", "conflict", "accepted"]
    assert statuses(outcomes[1]) == ["duplicate", "duplicate", "conflict", "duplicate"]
    assert raw_of(usage, "compute.cpu") == 1 + 2 + 3 + 4 + 5 + 9 + 10
    engine.dispose()


def test_a_new_key_with_a_stored_body_is_new_when_only_its_sort_key_collides(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check holds the key's other 64 bits: two keys that share a sort key and a body (a
    body does not hold the key) are still two events, on the columnar path too."""
    monkeypatch.setattr(
        usage_domain, "_key_hash", lambda text: bytes(8) + xxhash.xxh3_64_digest(text)
    )
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    usage.ingest(Lines([json.dumps(event("e1", "5")).encode()]), source="file")
    same_body = Lines([json.dumps(event(name, "5")).encode() for name in ("e1", "e2", "e3")])
    outcomes = usage.ingest(same_body, source="file")
    assert statuses(outcomes) == ["duplicate", "accepted", "accepted"]
    assert raw_of(usage, "compute.cpu") == 15
    engine.dispose()


def test_a_replayed_batch_is_known_without_reading_its_rows(sqlite_url: str) -> None:
    """The columnar path decides duplicates from the index's checks: replaying a file reads no
    event row back; a conflict still reads its own."""
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    bodies = [event(f"e{i}", str(i)) for i in range(1, 41)]
    usage.ingest(Lines([json.dumps(e).encode() for e in bodies]), source="file")
    statements: list[str] = []
    with engine.connect() as conn:
        conn.connection.driver_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
    bodies[7] = event("e8", "800")
    replay = usage.ingest(Lines([json.dumps(e).encode() for e in bodies]), source="file")
    assert replay.counts() == {EventStatus.DUPLICATE: 39, EventStatus.CONFLICT: 1}
    by_seq = [s for s in statements if "ON t.seq = k.value" in s]
    assert len(by_seq) == 1
    assert f"json_each(x'{b'[8]'.hex()}')" in by_seq[0]  # the conflict's own row, e8's, alone
    assert raw_of(usage, "compute.cpu") == sum(range(1, 41))
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
                 "t": e.ts_us, "f": blake2b_fingerprint(e)},
            )  # fmt: skip
    migrate.upgrade(engine)
    assert run_count(engine) == 1
    with engine.connect() as conn:
        rewritten = conn.execute(text("SELECT fingerprint FROM usage_events ORDER BY seq"))
        assert [f for (f,) in rewritten] == [parse(f"old{i}", str(i)).fingerprint for i in range(3)]
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


def parse(event_id: str, quantity: str) -> UsageEvent:
    return parse_event(event(event_id, quantity), load_default_catalog().resources, None)


def blake2b_fingerprint(e: UsageEvent) -> str:
    """The fingerprint events had before migration 0010 (blake2b of the same body text)."""
    body = "\x1f".join((e.resource, format(e.quantity.normalize(), "f"), str(e.ts_us), "", "", ""))
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_fingerprints_go_back_and_forth_between_their_forms(
    database: str, request: pytest.FixtureRequest
) -> None:
    """0010 makes every fingerprint again with xxh3, and its downgrade with blake2b, and (on
    SQLite) the key index is rebuilt with each: dedup tells duplicates and conflicts apart."""
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    engine = migrated_engine(url)
    usage = service(engine)
    usage.ingest([event(f"e{i}", str(i)) for i in range(1, 5)], source="http")
    current = fingerprints(engine)
    config = migrate._config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009_usage_key_checks")
    assert fingerprints(engine) == [
        blake2b_fingerprint(parse(f"e{i}", str(i))) for i in range(1, 5)
    ]
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    assert fingerprints(engine) == current
    usage = service(engine)
    again = usage.ingest([event("e1", "1"), event("e2", "20"), event("e5", "5")], source="http")
    assert statuses(again) == ["duplicate", "conflict", "accepted"]
    engine.dispose()


def test_a_fingerprint_its_body_does_not_give_stops_the_migration(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    service(engine).ingest([event("e1", "1"), event("e2", "2")], source="http")
    config = migrate._config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009_usage_key_checks")
    with engine.begin() as conn:
        conn.execute(text("UPDATE usage_events SET fingerprint = 'f00d' WHERE event_id = 'e2'"))
    with pytest.raises(RuntimeError, match="does not give its stored fingerprint"):
        migrate.upgrade(engine)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0009_usage_key_checks"
    engine.dispose()


def fingerprints(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [
            f for (f,) in conn.execute(text("SELECT fingerprint FROM usage_events ORDER BY seq"))
        ]


def test_runs_are_kept_little_endian() -> None:
    db = sqlite3.connect(":memory:")
    db.execute(_RUNS)
    one = np.array([1], dtype=np.uint64)
    KeyIndex().write(db, one, one * 3, np.array([258], dtype=np.int64))
    hashes, checks, seqs = db.execute("SELECT hashes, checks, seqs FROM usage_key_runs").fetchone()
    assert hashes == (1).to_bytes(8, "little")
    assert checks == (3).to_bytes(8, "little")
    assert seqs == (258).to_bytes(8, "little")


def test_a_downgrade_leaves_the_runs_the_earlier_form_reads(sqlite_url: str) -> None:
    """0009's downgrade writes one run in 0008's form: 64-bit hashes of the keys (xxh3), sorted,
    and their rows, with no checks."""
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    usage.ingest([event(f"e{i}", str(i)) for i in range(1, 8)], source="http")
    config = migrate._config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008_usage_hourly_log")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT entries, hashes, seqs FROM usage_key_runs")).all()
        columns = {c[1] for c in conn.execute(text("PRAGMA table_info(usage_key_runs)"))}
    assert "checks" not in columns
    ((entries, hashes, seqs),) = rows
    expected = sorted(
        (xxhash.xxh3_64_intdigest(f"acct_42\x1fe{i}".encode()), i) for i in range(1, 8)
    )
    stored = zip(
        np.frombuffer(hashes, "<u8").tolist(), np.frombuffer(seqs, "<i8").tolist(), strict=True
    )
    assert entries == 7
    assert list(stored) == expected
    engine.dispose()


def test_the_index_is_rebuilt_a_chunk_at_a_time(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuilt by a migration, the index is written a few rows at a time (here three), each a
    run merged as the index merges its runs: every stored key is found again."""
    monkeypatch.setattr(key_index, "_STORED_CHUNK", 3)
    engine = migrated_engine(sqlite_url)
    usage = service(engine)
    for start in (1, 6):
        usage.ingest([event(f"e{i}", str(i)) for i in range(start, start + 5)], source="http")
    config = migrate._config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009_usage_key_checks")
        command.upgrade(config, "head")
    with engine.connect() as conn:
        entries = conn.execute(text("SELECT SUM(entries) FROM usage_key_runs")).scalar_one()
    assert entries == 10
    assert run_count(engine) > 1  # chunks of three: merged, but not into one run
    usage = service(engine)
    again = usage.ingest([event(f"e{i}", str(i)) for i in range(1, 11)], source="http")
    assert statuses(again) == ["duplicate"] * 10
    changed = usage.ingest([event("e7", "70"), event("e11", "11")], source="http")
    assert statuses(changed) == ["conflict", "accepted"]
    engine.dispose()
