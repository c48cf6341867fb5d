"""Group commit (``services/usage_commit.py``): batches submitted side by side are stored
together, each answered as if stored alone in arrival order, and a batch that cannot be stored
fails by itself. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventColumns
from synor_economics.ports import HourlyDeltas
from synor_economics.services.usage import Outcomes, Screened, UsageService
from synor_economics.services.usage_columns import PlainRows
from synor_economics.services.usage_input import Lines
from tests.conftest import migrated_engine

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def usage(request: pytest.FixtureRequest) -> Iterator[UsageService]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = migrated_engine(url)
    service = UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())
    try:
        yield service
    finally:
        service.close()
        engine.dispose()


def texts(*pairs: tuple[str, str]) -> Lines:
    """Events as JSON texts (the columnar path), by (id, quantity)."""
    return Lines(
        [
            json.dumps(
                {
                    "id": event_id,
                    "account": "acct_7",
                    "resource": "compute.cpu",
                    "quantity": quantity,
                    "ts": "2026-11-03T10:00:00Z",
                }
            ).encode()
            for event_id, quantity in pairs
        ]
    )


def held(usage: UsageService) -> threading.Event:
    """Hold the committer in its first group until the event is set, so that the batches
    submitted meanwhile wait together and make the next group."""
    release = threading.Event()
    store_group = usage.store_group
    first = [True]

    def holding(batches: Sequence[Screened]) -> list[Outcomes]:
        if first[0]:
            first[0] = False
            release.wait(timeout=30)
        return store_group(batches)

    usage.store_group = holding  # type: ignore[method-assign]
    return release


def statuses(answer: Future[Outcomes]) -> list[str]:
    return [outcome.status.value for outcome in answer.result(timeout=30)]


def cpu(usage: UsageService) -> tuple[Decimal, int]:
    (row,) = usage.period_usage("acct_7", "2026-11").resources
    return row.raw, row.events


def test_batches_waiting_together_are_answered_as_if_stored_one_after_another(
    usage: UsageService,
) -> None:
    release = held(usage)
    first = usage.submit(usage.screen_batch(texts(("a", "1")), "http"))
    waiting = [
        usage.submit(usage.screen_batch(batch, "http"))
        for batch in (
            texts(("b", "2"), ("a", "1")),  # a: a duplicate of the first batch
            texts(("c", "4"), ("b", "9")),  # b: conflicts with the batch before it
            [{"id": "d", "account": "acct_7"}],  # rejected
            texts(("c", "4"), ("e", "8")),
        )
    ]
    release.set()
    assert statuses(first) == ["accepted"]
    assert [statuses(answer) for answer in waiting] == [
        ["accepted", "duplicate"],
        ["accepted", "conflict"],
        ["rejected"],
        ["duplicate", "accepted"],
    ]
    assert cpu(usage) == (Decimal(1 + 2 + 4 + 8), 4)
    letters = sorted((d.event_id, d.status.value) for d in usage.dead_letters())
    assert letters == [("b", "conflict"), ("d", "rejected")]


def test_a_batch_that_cannot_be_stored_fails_alone(usage: UsageService) -> None:
    release = held(usage)
    first = usage.submit(usage.screen_batch(texts(("a", "1")), "http"))
    good = usage.submit(usage.screen_batch(texts(("b", "2")), "http"))
    # A batch whose columnar rows repeat a key: screening never makes one, storage refuses it.
    screened = usage.screen_batch(texts(("x", "1")), "http")
    assert screened.plain is not None
    twice = EventColumns.take(screened.plain.events, [0, 0])
    broken = Screened(
        screened.intake,
        [],
        2,
        PlainRows([0, 1], twice, HourlyDeltas([], [], [], [], [])),
        screened.raw,
    )
    bad = usage.submit(broken)
    later = usage.submit(usage.screen_batch(texts(("c", "4")), "http"))
    release.set()
    assert statuses(first) == statuses(good) == statuses(later) == ["accepted"]
    with pytest.raises(Exception, match="key"):
        bad.result(timeout=30)
    assert cpu(usage) == (Decimal(1 + 2 + 4), 3)


def test_closing_stores_what_was_submitted(usage: UsageService) -> None:
    answers = [usage.submit(usage.screen_batch(texts((f"k{i}", "1")), "http")) for i in range(20)]
    usage.close()
    assert all(statuses(answer) == ["accepted"] for answer in answers)
    assert cpu(usage) == (Decimal(20), 20)
