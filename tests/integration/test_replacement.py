"""Replacement backfills on real databases: one account's window swapped for a corrected file,
the originals kept, and the swap undone exactly; counters and gauges both, for events sent one
by one and as NDJSON lines (on SQLite, held in segments until a replacement takes them out)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.services.replacement import ReplacementError, ReplacementService
from synor_economics.services.usage import Outcomes, UsageService
from synor_economics.services.usage_input import Lines
from tests.conftest import migrated_engine

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
START = datetime(2026, 11, 10, tzinfo=UTC)
END = datetime(2026, 11, 11, tzinfo=UTC)
GB = 10**9


class LinesUsage(UsageService):
    """Events sent as NDJSON lines: the columnar path, whose events SQLite keeps in segments
    (a replacement takes them out as rows)."""

    def ingest(self, raws: Sequence[object], *, source: str) -> Outcomes:
        return super().ingest(Lines([json.dumps(raw).encode() for raw in raws]), source=source)


@pytest.fixture(
    params=[
        ("sqlite", UsageService),
        ("sqlite", LinesUsage),
        pytest.param(("postgres", UsageService), marks=pytest.mark.postgres),
        pytest.param(("postgres", LinesUsage), marks=pytest.mark.postgres),
    ],
    ids=["sqlite", "sqlite-lines", "postgres", "postgres-lines"],
)
def services(request: pytest.FixtureRequest) -> Iterator[tuple[UsageService, ReplacementService]]:
    database, usage_kind = request.param
    url = request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    engine = migrated_engine(url)
    uow, clock, catalog = SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog()
    yield usage_kind(uow, clock, catalog), ReplacementService(uow, clock, catalog)
    engine.dispose()


def cpu(event_id: str, quantity: int, ts: str, account: str = "acct_1") -> dict[str, object]:
    return {
        "id": event_id,
        "account": account,
        "resource": "compute.cpu",
        "quantity": str(quantity),
        "ts": ts,
    }


def stored(event_id: str, level: int, ts: str) -> dict[str, object]:
    return {
        "id": event_id,
        "account": "acct_1",
        "resource": "storage.storage",
        "quantity": str(level),
        "ts": ts,
        "subject": "bucket",
    }


def raw(usage: UsageService, resource: str, account: str = "acct_1") -> Decimal:
    rows = usage.period_usage(account, "2026-11").resources
    return sum((r.raw for r in rows if r.resource.id == resource), Decimal(0))


def test_a_window_is_replaced_and_the_replacement_reverted(
    services: tuple[UsageService, ReplacementService],
) -> None:
    usage, replacements = services
    usage.ingest(
        [
            cpu("before", 1, "2026-11-09T23:59:59Z"),
            cpu("in-1", 100, "2026-11-10T05:00:00Z"),
            cpu("in-2", 200, "2026-11-10T23:00:00Z"),
            cpu("after", 1000, "2026-11-11T00:00:00Z"),
            cpu("other", 7, "2026-11-10T05:00:00Z", account="acct_2"),
        ],
        source="stream",
    )
    assert raw(usage, "compute.cpu") == 1301
    report = replacements.replace(
        "acct_1",
        START,
        END,
        [cpu("in-1", 150, "2026-11-10T05:00:00Z"), cpu("new", 5, "2026-11-10T12:30:00Z")],
        note="sampler over-ran",
    )
    assert [o.status.value for o in report.outcomes] == ["accepted", "accepted"]
    assert (report.replacement.superseded, report.replacement.added) == (2, 2)
    assert raw(usage, "compute.cpu") == 1 + 150 + 5 + 1000
    assert raw(usage, "compute.cpu", "acct_2") == 7  # another account is untouched
    # A late copy of a replaced event is still a duplicate of what was first sent.
    late = usage.ingest([cpu("in-2", 200, "2026-11-10T23:00:00Z")], source="stream")
    assert late[0].status.value == "duplicate"
    replacements.revert(report.replacement.seq)
    assert raw(usage, "compute.cpu") == 1301
    (listed,) = replacements.replacements("acct_1")
    assert not listed.active
    assert listed.note == "sampler over-ran"
    with pytest.raises(ReplacementError, match="already reverted"):
        replacements.revert(listed.seq)


def test_replacement_events_must_belong_to_the_account_and_window(
    services: tuple[UsageService, ReplacementService],
) -> None:
    _, replacements = services
    report = replacements.replace(
        "acct_1",
        START,
        END,
        [
            cpu("ok", 1, "2026-11-10T01:00:00Z"),
            cpu("late", 1, "2026-11-11T00:00:00Z"),
            cpu("theirs", 1, "2026-11-10T01:00:00Z", account="acct_2"),
            cpu("ok", 2, "2026-11-10T01:00:00Z"),
        ],
    )
    assert [(o.status.value, o.field) for o in report.outcomes] == [
        ("accepted", ""),
        ("rejected", "ts"),
        ("rejected", "account"),
        ("conflict", "id"),
    ]
    for start, end, words in (
        (datetime(2026, 11, 10, 0, 30, tzinfo=UTC), END, "whole hours"),
        (END, START, "after it starts"),
        (datetime(2026, 10, 1, tzinfo=UTC), END, "35 days"),
    ):
        with pytest.raises(ReplacementError, match=words):
            replacements.replace("acct_1", start, end, [])


def test_gauges_are_rebuilt_across_the_window(
    services: tuple[UsageService, ReplacementService],
) -> None:
    usage, replacements = services
    usage.ingest(
        [
            stored("g1", 100 * GB, "2026-11-01T00:00:00Z"),
            stored("g2", 300 * GB, "2026-11-10T06:00:00Z"),
            stored("g3", 50 * GB, "2026-11-15T00:00:00Z"),
        ],
        source="stream",
    )
    before = raw(usage, "storage.storage")
    hours = 3600
    expected = (9 * 24 + 6) * hours * 100 * GB + (4 * 24 + 18) * hours * 300 * GB
    expected += (5 * 24 + 12) * hours * 50 * GB
    assert before == expected
    # The 300 GB reading was wrong: the bucket held 120 GB from 06:00 on the 10th.
    report = replacements.replace(
        "acct_1", START, END, [stored("g2-fixed", 120 * GB, "2026-11-10T06:00:00Z")]
    )
    fixed = expected - (4 * 24 + 18) * hours * (300 - 120) * GB
    assert raw(usage, "storage.storage") == fixed
    # Later levels still integrate from the rebuilt state.
    usage.ingest([stored("g4", 10 * GB, "2026-11-20T00:00:00Z")], source="stream")
    fixed -= 12 * hours * (50 - 10) * GB
    assert raw(usage, "storage.storage") == fixed
    replacements.revert(report.replacement.seq)
    assert raw(usage, "storage.storage") == fixed + (4 * 24 + 18) * hours * (300 - 120) * GB


def test_only_the_newest_overlapping_replacement_can_be_reverted(
    services: tuple[UsageService, ReplacementService],
) -> None:
    usage, replacements = services
    usage.ingest([cpu("a", 10, "2026-11-10T01:00:00Z")], source="stream")
    first = replacements.replace("acct_1", START, END, [cpu("a", 20, "2026-11-10T01:00:00Z")])
    second = replacements.replace("acct_1", START, END, [cpu("a", 30, "2026-11-10T01:00:00Z")])
    assert raw(usage, "compute.cpu") == 30
    with pytest.raises(ReplacementError, match="revert it first"):
        replacements.revert(first.replacement.seq)
    replacements.revert(second.replacement.seq)
    assert raw(usage, "compute.cpu") == 20
    replacements.revert(first.replacement.seq)
    assert raw(usage, "compute.cpu") == 10
