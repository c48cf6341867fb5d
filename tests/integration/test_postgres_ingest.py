"""PostgreSQL's ingest path: a batch is copied as if all its keys were new, back to a
savepoint when one is not, and the rollup log is folded on a thread and connection of its own.
Real PostgreSQL throughout."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql import usage_repository
from synor_economics.adapters.sql.uow import USAGE_LOCK_KEY, SqlUnitOfWork
from synor_economics.adapters.sql.usage_repository import SqlUsageRepository
from synor_economics.catalog import load_default_catalog
from synor_economics.domain.usage import EventStatus
from synor_economics.services.usage import UsageService
from synor_economics.services.usage_input import Lines
from tests.conftest import migrated_engine
from tests.integration.test_usage import NOW, event

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = migrated_engine(postgres_url)
    yield engine
    engine.dispose()


def lines(bodies: list[dict[str, Any]]) -> Lines:
    return Lines([json.dumps(body).encode() for body in bodies])


def scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def cpu_total(service: UsageService) -> tuple[Decimal, int]:
    usage = service.period_usage("acct_42", "2026-11")
    (cpu,) = (r for r in usage.resources if r.resource.id == "compute.cpu")
    return cpu.raw, cpu.events


def test_keys_are_looked_up_only_when_one_is_stored(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[int] = []
    looked_up = SqlUsageRepository.fingerprints

    def counted(self: SqlUsageRepository, keys: Any) -> dict[tuple[str, str], str]:
        if keys:  # the batch's other events (none here) are looked up apart
            lookups.append(len(keys))
        return looked_up(self, keys)

    monkeypatch.setattr(SqlUsageRepository, "fingerprints", counted)
    service = UsageService(SqlUnitOfWork(engine), FixedClock(NOW), load_default_catalog())
    first = [event(f"e{n}", quantity=str(n + 1)) for n in range(20)]
    assert service.ingest(lines(first), source="file").counts() == {EventStatus.ACCEPTED: 20}
    assert lookups == []  # all new: copied at once, the constraint the only check

    again = first[:5] + [{**body, "quantity": "999"} for body in first[5:10]]
    fresh = [event(f"f{n}", quantity="100") for n in range(10)]
    outcome = service.ingest(lines(again + fresh), source="file")
    assert outcome.counts() == {
        EventStatus.DUPLICATE: 5,
        EventStatus.CONFLICT: 5,
        EventStatus.ACCEPTED: 10,
    }
    assert lookups == [20]  # the copy failed at a stored key: undone, then looked up once
    # nothing of the failed copy is left: 30 events stored, each once, the first copies standing
    assert scalar(engine, "SELECT COUNT(*) FROM usage_events") == 30
    assert scalar(engine, "SELECT quantity FROM usage_events WHERE event_id = 'e7'") == 8
    assert cpu_total(service) == (Decimal(sum(range(1, 21)) + 10 * 100), 30)


def test_the_log_is_folded_apart_and_no_total_changes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_repository, "FOLD_ROWS", 8)
    uow = SqlUnitOfWork(engine, lock_key=USAGE_LOCK_KEY, shared=True, fold_apart=True)
    service = UsageService(uow, FixedClock(NOW), load_default_catalog())
    expected = Counter[str]()
    for batch in range(4):
        bodies = [
            event(f"b{batch}e{n}", quantity=str(n + batch), ts=f"2026-11-{n + 1:02d}T10:00:00Z")
            for n in range(15)
        ]
        expected.update({str(body["ts"]): int(str(body["quantity"])) for body in bodies})
        assert service.ingest(lines(bodies), source="file").counts() == {EventStatus.ACCEPTED: 15}
    assert cpu_total(service) == (Decimal(expected.total()), 60)  # log or table, counted
    deadline = time.monotonic() + 30
    while scalar(engine, "SELECT COUNT(*) FROM usage_hourly_log") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scalar(engine, "SELECT COUNT(*) FROM usage_hourly_log") == 0  # folded, apart
    with engine.connect() as conn:
        hourly = conn.execute(text("SELECT quantity FROM usage_hourly")).scalars().all()
    assert sorted(hourly) == sorted(expected.values())
    assert cpu_total(service) == (Decimal(expected.total()), 60)
    assert [t for t in threading.enumerate() if t.name == "synor-rollup-fold"]
    uow.close()
    assert not [t for t in threading.enumerate() if t.name == "synor-rollup-fold"]
