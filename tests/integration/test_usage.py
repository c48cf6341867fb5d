"""Usage ingestion against real databases: validation, exactly-once dedup, rollups, gauges,
dead letters. The same assertions run on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventOutcome, EventStatus
from synor_economics.services.usage import PeriodError, UsageService, month_bounds
from tests.conftest import migrated_engine

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def usage(request: pytest.FixtureRequest) -> Iterator[UsageService]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = migrated_engine(url)
    try:
        yield UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())
    finally:
        engine.dispose()


def event(event_id: str, quantity: object = "7200", **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": event_id,
        "account": "acct_42",
        "resource": "compute.cpu",
        "quantity": quantity,
        "ts": "2026-11-03T10:00:00Z",
    }
    body.update(fields)
    return body


def statuses(outcomes: Sequence[EventOutcome]) -> list[str]:
    return [o.status.value for o in outcomes]


def raw_of(service: UsageService, resource: str, period: str = "2026-11") -> Decimal:
    found = [
        r for r in service.period_usage("acct_42", period).resources if r.resource.id == resource
    ]
    return found[0].raw if found else Decimal(0)


def test_a_batch_keeps_good_events_and_reports_each_bad_one(usage: UsageService) -> None:
    outcomes = usage.ingest(
        [
            event("e1"),
            event("e2", quantity=7200.0),
            event("e3", resource="compute.quantum"),
            event("e4", quantity="1.5"),
        ],
        source="http",
    )
    assert statuses(outcomes) == ["accepted", "rejected", "rejected", "accepted"]
    assert (outcomes[1].field, outcomes[1].index, outcomes[1].id) == ("quantity", 1, "e2")
    assert "float" not in outcomes[1].reason
    assert "number" in outcomes[1].reason
    assert outcomes[2].field == "resource"
    assert raw_of(usage, "compute.cpu") == Decimal("7201.5")
    letters = usage.dead_letters()
    assert [(d.event_id, d.field, d.status) for d in letters] == [
        ("e3", "resource", EventStatus.REJECTED),
        ("e2", "quantity", EventStatus.REJECTED),
    ]
    assert '"compute.quantum"' in letters[0].body


def test_replays_count_once_and_conflicts_keep_the_first_copy(usage: UsageService) -> None:
    assert statuses(usage.ingest([event("e1"), event("e1")], source="http")) == [
        "accepted",
        "duplicate",
    ]
    # The same body written differently is the same event; a different quantity is a conflict.
    again = usage.ingest(
        [event("e1", quantity="7200.000", ts="2026-11-03T10:00:00+00:00"), event("e1", "9")],
        source="stream",
    )
    assert statuses(again) == ["duplicate", "conflict"]
    assert again[1].field == "id"
    assert raw_of(usage, "compute.cpu") == Decimal(7200)
    assert usage.dead_letters()[0].status is EventStatus.CONFLICT
    # The id is per account: another account may use it.
    other = usage.ingest([event("e1", account="acct_7")], source="file")
    assert statuses(other) == ["accepted"]


def test_accounts_with_quotes_braces_and_commas_dedup_and_roll_up(usage: UsageService) -> None:
    """Keys travel to the database as JSON (SQLite) or array literals (PostgreSQL): characters
    that mean something there must arrive as they are."""
    odd = "a\"b\\c{d},e'NULL"
    first = usage.ingest(
        [event("e1", account=odd), event("e1", account="NULL"), event("e2", account=odd)],
        source="http",
    )
    again = usage.ingest(
        [event("e1", account=odd), event("e1", account=odd, quantity="1")], source="http"
    )
    assert statuses(first) == ["accepted", "accepted", "accepted"]
    assert statuses(again) == ["duplicate", "conflict"]
    totals = {r.resource.id: r.raw for r in usage.period_usage(odd, "2026-11").resources}
    assert totals == {"compute.cpu": Decimal(14400)}


def test_counter_totals_are_exact_over_many_events(usage: UsageService) -> None:
    rng = random.Random(3)
    quantities = [
        Decimal(rng.randrange(1, 10**12)) / Decimal(10 ** rng.randrange(0, 18)) for _ in range(300)
    ]
    batch = [
        event(f"q{i}", format(q, "f"), ts=f"2026-11-{1 + i % 19:02d}T{i % 24:02d}:00:00Z")
        for i, q in enumerate(quantities)
    ]
    assert set(statuses(usage.ingest(batch, source="file"))) == {"accepted"}
    assert Fraction(raw_of(usage, "compute.cpu")) == sum(map(Fraction, quantities))


def test_corrections_only_where_the_resource_allows_them(usage: UsageService) -> None:
    outcomes = usage.ingest(
        [
            event("c1", "100"),
            event("c2", "-30"),
            event("d1", "-1", resource="storage.deal"),
        ],
        source="http",
    )
    assert statuses(outcomes) == ["accepted", "accepted", "rejected"]
    assert "corrections" in outcomes[2].reason
    assert raw_of(usage, "compute.cpu") == Decimal(70)


def test_time_window_is_enforced(usage: UsageService) -> None:
    future = (NOW + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soon = (NOW + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (NOW - timedelta(days=36)).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcomes = usage.ingest(
        [event("f", ts=future), event("s", ts=soon), event("o", ts=old)], source="http"
    )
    assert statuses(outcomes) == ["rejected", "accepted", "rejected"]
    assert "future" in outcomes[0].reason
    assert "35 days" in outcomes[2].reason


GB = 10**9


def gauge(event_id: str, level: int, ts: str, subject: str = "bucket-1") -> dict[str, object]:
    return event(event_id, str(level), resource="storage.storage", ts=ts, subject=subject)


def test_gauge_integrates_levels_and_carries_in_across_the_period_start(
    usage: UsageService,
) -> None:
    # 100 GB from Oct 31 12:00, 300 GB from Nov 10 00:00; asked on Nov 20 12:00.
    usage.ingest(
        [
            gauge("g1", 100 * GB, "2026-10-31T12:00:00Z"),
            gauge("g2", 300 * GB, "2026-11-10T00:00:00Z"),
        ],
        source="stream",
    )
    nov_seconds = 9 * 86_400 * 100 * GB + (10 * 86_400 + 12 * 3600) * 300 * GB
    assert raw_of(usage, "storage.storage") == Decimal(nov_seconds)
    assert raw_of(usage, "storage.storage", "2026-10") == Decimal(12 * 3600 * 100 * GB)
    row = next(
        r
        for r in usage.period_usage("acct_42", "2026-11").resources
        if r.resource.id == "storage.storage"
    )
    assert row.billable == Fraction(nov_seconds, GB * 30 * 86_400)


def test_a_late_gauge_event_in_the_middle_of_history_is_exact(usage: UsageService) -> None:
    usage.ingest(
        [
            gauge("g1", 100 * GB, "2026-11-01T00:00:00Z"),
            gauge("g3", 0, "2026-11-05T00:00:00Z"),
        ],
        source="stream",
    )
    assert raw_of(usage, "storage.storage") == Decimal(4 * 86_400 * 100 * GB)
    # Late: the level was 250 GB from Nov 2 06:30 until the Nov 5 event.
    usage.ingest([gauge("g2", 250 * GB, "2026-11-02T06:30:00Z")], source="stream")
    expected = (30 * 3600 + 30 * 60) * 100 * GB + (2 * 86_400 + 17 * 3600 + 30 * 60) * 250 * GB
    assert raw_of(usage, "storage.storage") == Decimal(expected)


def test_gauges_need_a_subject_and_keep_subjects_apart(usage: UsageService) -> None:
    outcomes = usage.ingest(
        [
            event("n", "5", resource="storage.storage"),
            gauge("a", 10, "2026-11-19T12:00:00Z", subject="a"),
            gauge("b", 30, "2026-11-20T00:00:00Z", subject="b"),
        ],
        source="http",
    )
    assert statuses(outcomes) == ["rejected", "accepted", "accepted"]
    assert outcomes[0].field == "subject"
    assert raw_of(usage, "storage.storage") == Decimal(10 * 86_400 + 30 * 12 * 3600)


def test_gauge_events_in_any_arrival_order_give_the_same_integral(usage: UsageService) -> None:
    rng = random.Random(11)
    offsets = rng.sample(range(19 * 86_400), 40)  # distinct: equal times would order by arrival
    levels = [(f"r{i}", rng.randrange(0, 10**6), offset) for i, offset in enumerate(offsets)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    batch = [
        gauge(i, level, (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i, level, offset in levels
    ]
    rng.shuffle(batch)
    for chunk in (batch[:15], batch[15:16], batch[16:]):
        usage.ingest(chunk, source="file")
    ordered = sorted((offset, level) for _, level, offset in levels)
    now_offset = int((NOW - start).total_seconds())
    expected = sum(
        level * ((ordered[k + 1][0] if k + 1 < len(ordered) else now_offset) - offset)
        for k, (offset, level) in enumerate(ordered)
    )
    assert raw_of(usage, "storage.storage") == Decimal(expected)


def test_period_must_be_a_month() -> None:
    assert month_bounds("2026-12")[1] == datetime(2027, 1, 1, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "nov", "2026-11-01"):
        with pytest.raises(PeriodError):
            month_bounds(bad)


@pytest.mark.postgres
def test_usage_writers_share_their_lock_and_an_exclusive_writer_shuts_them_out(
    postgres_url: str,
) -> None:
    """While one usage writer is in its transaction, another may start (the lock is shared);
    nobody may while an exclusive one (a replacement, a batch's last try) holds it."""
    from sqlalchemy import text

    from synor_economics.adapters.sql.uow import USAGE_LOCK_KEY

    engine = migrated_engine(postgres_url)
    uow = SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, shared=True)
    probe = "SELECT pg_try_advisory_xact_lock{}(:key)"

    def others_may(kind: str) -> bool:
        with engine.connect() as conn, conn.begin():
            return bool(conn.execute(text(probe.format(kind)), {"key": USAGE_LOCK_KEY}).scalar())

    with uow.write():
        assert others_may("_shared")
        assert not others_may("")
    with uow.write(exclusive=True):
        assert not others_may("_shared")
    assert others_may("")


@pytest.mark.postgres
def test_writers_side_by_side_count_every_event_once(postgres_url: str) -> None:
    """Ingestion on PostgreSQL runs in parallel (a shared lock): two writers sending
    overlapping batches, counters and one gauge key alike, still count each event once."""
    from concurrent.futures import ThreadPoolExecutor

    from synor_economics.adapters.sql.uow import USAGE_LOCK_KEY

    engine = migrated_engine(postgres_url)
    uow = SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, shared=True)
    usage = UsageService(uow, FixedClock(NOW), load_default_catalog())
    rng = random.Random(8)
    counters = [event(f"c{i}", str(i), ts=f"2026-11-05T{i % 24:02d}:00:00Z") for i in range(400)]
    gauges = [
        gauge(f"g{i}", rng.randrange(10**6), f"2026-11-{1 + i % 19:02d}T{i % 24:02d}:00:00Z")
        for i in range(60)
    ]
    batches = []
    for _ in range(8):  # every batch a random half of everything: plenty of collisions
        mixed = rng.sample(counters, 200) + rng.sample(gauges, 30)
        rng.shuffle(mixed)
        batches.append(mixed)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda b: usage.ingest(b, source="stream"), batches))
    accepted = {o.id for r in results for o in r if o.status is EventStatus.ACCEPTED}
    assert all(
        o.status in (EventStatus.ACCEPTED, EventStatus.DUPLICATE) for r in results for o in r
    )
    sent_counters = {e["id"] for b in batches for e in b if e["resource"] == "compute.cpu"}
    assert raw_of(usage, "compute.cpu") == sum(
        int(str(e["id"])[1:]) for e in counters if e["id"] in sent_counters
    )
    assert {i for i in accepted if str(i).startswith("c")} == sent_counters
    # The gauge: its integral equals the one computed from the events that got in.
    got = sorted(
        (to_us_text(str(g["ts"])), int(str(g["quantity"]))) for g in gauges if g["id"] in accepted
    )
    start = to_us_text("2026-11-01T00:00:00Z")
    now_us = to_us_text("2026-11-20T12:00:00Z")
    expected = (
        sum(
            level * ((got[k + 1][0] if k + 1 < len(got) else now_us) - ts)
            for k, (ts, level) in enumerate(got)
        )
        // 1_000_000
    )
    assert ts_ok(got, start)
    assert raw_of(usage, "storage.storage") == Decimal(expected)
    engine.dispose()


def to_us_text(stamp: str) -> int:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000


def ts_ok(levels: list[tuple[int, int]], start: int) -> bool:
    """Distinct times at or after the period start (so the expected integral is unambiguous)."""
    times = [ts for ts, _ in levels]
    return len(set(times)) == len(times) and min(times) >= start


@pytest.mark.postgres
def test_a_key_stored_by_another_writer_meanwhile_is_a_retryable_race(postgres_url: str) -> None:
    from synor_economics.domain.usage import parse_event
    from synor_economics.ports import ConcurrentWriteError

    engine = migrated_engine(postgres_url)
    uow = SqlUnitOfWork(engine)
    catalog = load_default_catalog()
    usage = UsageService(uow, FixedClock(NOW), catalog)
    usage.ingest([event("e1")], source="http")
    parsed = parse_event(event("e1"), catalog.resources, to_us_text("2026-11-20T12:00:00Z"))
    with pytest.raises(ConcurrentWriteError), uow.write() as tx:
        tx.usage.add_events([parsed], received_us=0, source="http")  # as if the lookup missed it
    engine.dispose()


class RacingOnce:
    """A unit of work whose first write transaction loses a race (as PostgreSQL reports it)."""

    def __init__(self, inner: SqlUnitOfWork) -> None:
        self.inner = inner
        self.raced = False

    @contextmanager
    def write(self, *, exclusive: bool = False) -> Iterator[Any]:
        with self.inner.write(exclusive=exclusive) as tx:
            yield tx
            if not self.raced:
                self.raced = True
                from synor_economics.ports import ConcurrentWriteError

                raise ConcurrentWriteError("duplicate key value violates unique constraint")

    def read(self) -> Any:
        return self.inner.read()


def test_a_batch_that_lost_a_race_is_tried_again_and_answered_once(sqlite_url: str) -> None:
    engine = migrated_engine(sqlite_url)
    racing = RacingOnce(SqlUnitOfWork(engine))
    usage = UsageService(racing, FixedClock(NOW), load_default_catalog())
    outcomes = usage.ingest([event("a"), event("a", "9"), event("b", 1.5)], source="stream")
    assert racing.raced
    assert [o.status.value for o in outcomes] == ["accepted", "conflict", "rejected"]
    assert raw_of(usage, "compute.cpu") == 7200
    assert sorted(d.status.value for d in usage.dead_letters()) == ["conflict", "rejected"]
    engine.dispose()
