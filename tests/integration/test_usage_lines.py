"""NDJSON lines through the columnar intake path give what the same events give one by one:
the same outcome for every event, the same usage, the same dead letters; on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql import usage_repository
from synor_economics.adapters.sql.engine import scratch_postgres
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventStatus, parse_event
from synor_economics.services import usage_documents
from synor_economics.services.usage import UsageService
from synor_economics.services.usage_input import InputError, Lines, events_of, read_events
from tests.conftest import migrated_engine
from tests.integration.test_usage import NOW, event, gauge


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[UsageService, UsageService]]:
    """Two fresh databases of one kind: one fed lines, one fed decoded events."""
    catalog = load_default_catalog()
    with ExitStack() as stack:
        if request.param == "sqlite":
            urls = [f"sqlite:///{tmp_path / name}.db" for name in ("lines", "events")]
        else:
            admin = request.getfixturevalue("postgres_admin_url")
            urls = [stack.enter_context(scratch_postgres(admin, "synor_test")) for _ in "ab"]
        engines = [migrated_engine(url) for url in urls]
        for engine in engines:
            stack.callback(engine.dispose)
        first, second = (UsageService(SqlUnitOfWork(e), FixedClock(NOW), catalog) for e in engines)
        yield first, second


def mixed_batch(rng: random.Random, start: int, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plain counters, some sent before (same body or not), gauges, bad events and events with
    meta."""
    bodies: list[dict[str, Any]] = []
    before = list(sent)  # from earlier batches only: a key repeated in one batch is its own case
    for n in range(start, start + 60):
        kind = rng.randrange(10)
        if kind == 0 and before:
            again = dict(rng.choice(before))
            if rng.random() < 0.5:
                again["quantity"] = "99"  # the same id with another body: a conflict
            bodies.append(again)
        elif kind == 1:
            bodies.append(gauge(f"g{n}", n * 1000, f"2026-11-0{n % 9 + 1}T10:00:00Z"))
        elif kind == 2:
            bodies.append(event(f"e{n}", quantity="-3" if n % 2 else "1e3"))  # ok; rejected
        elif kind == 3:
            bodies.append(event(f"e{n}", meta={"region": "eu"}, account=f"acct_{n % 5}"))
        else:
            body = event(
                f"e{n}",
                quantity=f"{n % 7 + 1}.{'5' * (n % 3)}".rstrip("."),
                account=f"acct_{n % 5}",
                ts=f"2026-11-{n % 19 + 1:02d}T{n % 24:02d}:00:00Z",
            )
            if kind == 4:  # what CSV and COPY's text format quote or escape
                body["operator"] = 'op"1,\\N\\.'
                body["subject"] = 'vm,\\t"x"'
            bodies.append(body)
            sent.append(body)
    return bodies


def summary(service: UsageService) -> Any:
    usage = {a: service.period_usage(f"acct_{a}", "2026-11") for a in range(5)}
    letters = [
        (d.status, d.event_id, d.field, d.reason, d.body)
        for d in service.dead_letters(limit=10_000)
    ]
    return {
        a: [(r.resource.id, r.raw, r.events) for r in u.resources] for a, u in usage.items()
    }, sorted(letters)


def test_lines_and_events_end_the_same(pair: tuple[UsageService, UsageService]) -> None:
    by_lines, by_events = pair
    rng = random.Random(3)
    counts: Counter[EventStatus] = Counter()
    sent: list[dict[str, Any]] = []
    for start in range(0, 300, 60):
        bodies = mixed_batch(rng, start, sent)
        lines = [json.dumps(body).encode() for body in bodies]
        if start == 120:  # a key repeated inside one batch: the batch goes event by event
            lines.append(lines[-1])
            bodies.append(bodies[-1])
        screened = by_lines.screen_lines(Lines(lines), "file")
        if start != 120:  # the columnar path took the plain events
            assert screened.plain is not None
            assert len(screened.plain.positions) > 30
        columnar = by_lines.store(screened)
        one_by_one = by_events.ingest(bodies, source="file")
        assert list(columnar) == list(one_by_one)
        assert columnar.counts() == one_by_one.counts()
        assert columnar.problems() == one_by_one.problems()
        answer = msgspec.json.decode(usage_documents.encoded_ingest_document(columnar))
        assert answer == usage_documents.ingest_document(one_by_one)  # the API's answer
        counts.update(columnar.counts())
    assert all(counts[status] for status in EventStatus), counts
    assert summary(by_lines) == summary(by_events)
    assert isinstance(by_lines.uow, SqlUnitOfWork)
    if by_lines.uow.engine.dialect.name == "postgresql":  # SQLite: test_event_segments.py
        stored = stored_events(by_lines)
        assert stored == stored_events(by_events)
        assert any('op"1,' in row[6] for row in stored)


def stored_events(service: UsageService) -> list[tuple[Any, ...]]:
    """Every stored event's fields as the database holds them (on PostgreSQL, copied in as
    CSV)."""
    columns = "account, event_id, resource, quantity, ts_us, subject, operator, meta, fingerprint"
    assert isinstance(service.uow, SqlUnitOfWork)
    with service.uow.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {columns} FROM usage_events")).all()
    return sorted(tuple(row) for row in rows)


def test_a_malformed_line_is_reported_at_its_line(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "events.ndjson"
    good = json.dumps(event("e1")) + "\n"
    path.write_text(good + "\n" + good.replace("e1", "e2") + '{"id": "e3",\n')
    engine = migrated_engine(sqlite_url)
    service = UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())
    with pytest.raises(InputError, match="line 4, column"):
        list(service.ingest_all(read_events(path, "ndjson", 10), source="file", events=events_of))
    engine.dispose()


def test_folding_the_rollup_log_changes_no_total(
    pair: tuple[UsageService, UsageService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rollup deltas go to a log folded into ``usage_hourly`` in bulk: folded after every
    transaction or never, the totals (counters, gauges, corrections) are the same."""
    folding, keeping = pair
    rng = random.Random(11)
    sent: list[dict[str, Any]] = []
    for start in range(0, 240, 60):
        bodies = mixed_batch(rng, start, sent)
        monkeypatch.setattr(usage_repository, "FOLD_ROWS", 1)
        folding.ingest(Lines([json.dumps(body).encode() for body in bodies]), source="file")
        monkeypatch.setattr(usage_repository, "FOLD_ROWS", 10**9)
        keeping.ingest(Lines([json.dumps(body).encode() for body in bodies]), source="file")
    logged = []
    for service in pair:
        engine = service.uow.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            logged.append(conn.execute(text("SELECT COUNT(*) FROM usage_hourly_log")).scalar_one())
    assert logged[0] == 0
    assert logged[1] > 100  # the other kept every delta in the log
    assert summary(folding) == summary(keeping)
    assert any(summary(folding)[0].values())


def test_an_answer_of_plain_events_only_is_the_same_document(
    pair: tuple[UsageService, UsageService],
) -> None:
    """A batch whose every event took the columnar path is answered straight from its columns
    (``Outcomes.mapped``): the same document as the events' outcomes one by one."""
    by_lines, by_events = pair
    bodies = [event(f"p{n}", str(n + 1), account=f"acct_{n % 3}") for n in range(40)]
    for batch in (bodies[:25], bodies):  # the second time, 25 duplicates
        screened = by_lines.screen_lines(Lines([json.dumps(b).encode() for b in batch]), "http")
        assert screened.plain is not None
        assert len(screened.plain.positions) == len(batch)
        answer = usage_documents.encoded_ingest_document(by_lines.store(screened))
        expected = usage_documents.ingest_document(by_events.ingest(batch, source="http"))
        assert msgspec.json.decode(answer) == expected
        assert expected["events"][-1] == {
            "index": len(batch) - 1,
            "id": batch[-1]["id"],
            "status": "accepted",
        }


def test_events_one_by_one_are_stored_as_they_were_parsed(
    pair: tuple[UsageService, UsageService],
) -> None:
    """Events that are not plain (meta, gauges), stored one by one, keep every field exactly:
    texts that CSV and COPY quote or escape, the longest quantities, meta's JSON."""
    service, _ = pair
    tricky = 'a"b,c\\N\\.'
    bodies = [
        event(
            "m1", "123456789012345678901234567890.123456789012345678", meta={"k": tricky + "\t\né€"}
        ),
        event("m2", "-2.5", resource="database.queries", meta={"note": "", "n": 3, "b": True}),
        gauge("g1", 5 * 10**12, "2026-11-02T00:00:00Z", subject=tricky),
        event("m3", "1", operator=tricky, meta={"x": None}),
    ]
    assert service.ingest(bodies, source="file").counts() == {EventStatus.ACCEPTED: 4}
    resources = load_default_catalog().resources
    parsed = sorted(parse_event(body, resources, None) for body in bodies)
    stored = stored_events(service)
    assert [(*row[:3], Decimal(str(row[3])), *row[4:]) for row in stored] == [
        tuple(event) for event in parsed
    ]
    assert tricky in {row[5] for row in stored} & {row[6] for row in stored}
    assert {"k": tricky + "\t\né€"} in [json.loads(row[7]) for row in stored if row[7]]
