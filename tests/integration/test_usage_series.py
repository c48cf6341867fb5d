"""Rollups keyed by series (an account's resource, numbered once) and the hour: migration 0011
moves rollups and logged deltas between the two forms and back, numbers made by a transaction
that rolled back are never taken for stored ones, and numbers seen committed need no query.
SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, text

from synor_economics.adapters.clock import FixedClock
from synor_economics.adapters.sql import migrate
from synor_economics.adapters.sql.uow import SqlUnitOfWork
from synor_economics.adapters.sql.usage_repository import SqlUsageRepository, known_series
from synor_economics.catalog import load_default_catalog
from synor_economics.services.usage import UsageService
from tests.conftest import migrated_engine
from tests.integration.test_usage import NOW

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

_OLD_HOURLY = [
    ("acct_1", "compute.cpu", 3_600_000_000, "7200", 2),
    ("acct_1", "storage.bytes", 3_600_000_000, "1.5", 1),
    ("acct_2", "compute.cpu", 7_200_000_000, "99999999999999999999.000000001", 4),
]
_OLD_LOG = [  # deltas waiting for a fold, in the order they were logged
    ("acct_2", "compute.cpu", 7_200_000_000, "1", 1),
    ("acct_3", "database.queries", 0, "12", 3),
    ("acct_1", "compute.cpu", 3_600_000_000, "-200", 1),
]


def engine_of(database: str, request: pytest.FixtureRequest) -> Engine:
    return migrated_engine(
        request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url")
    )


def migrate_to(engine: Engine, revision: str) -> None:
    config = migrate._config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(str(v) if isinstance(v, Decimal) else v for v in row)
            for row in conn.execute(text(sql))
        ]


@pytest.mark.parametrize("database", DATABASES)
def test_rollups_and_their_log_move_to_series_and_back(
    database: str, request: pytest.FixtureRequest
) -> None:
    engine = engine_of(database, request)
    migrate_to(engine, "0010_usage_fingerprints")
    with engine.begin() as conn:
        for table, values in (("usage_hourly", _OLD_HOURLY), ("usage_hourly_log", _OLD_LOG)):
            for account, resource, hour, quantity, events in values:
                conn.execute(
                    text(
                        f"INSERT INTO {table} (account, resource, hour_us, quantity, events) "
                        "VALUES (:a, :r, :h, :q, :n)"
                    ),
                    {"a": account, "r": resource, "h": hour, "q": quantity, "n": events},
                )
    migrate_to(engine, "head")
    series = dict(rows(engine, "SELECT account || '/' || resource, series FROM usage_series"))
    assert sorted(series) == [
        "acct_1/compute.cpu", "acct_1/storage.bytes", "acct_2/compute.cpu",
        "acct_3/database.queries",
    ]  # fmt: skip
    number = {(a, r): series[f"{a}/{r}"] for a, r, *_ in _OLD_HOURLY + _OLD_LOG}
    assert sorted(rows(engine, "SELECT series, hour_us, quantity, events FROM usage_hourly")) == (
        sorted((number[(a, r)], h, q, n) for a, r, h, q, n in _OLD_HOURLY)
    )
    logged = rows(
        engine, "SELECT series, hour_us, quantity, events FROM usage_hourly_log ORDER BY seq"
    )
    assert logged == [(number[(a, r)], h, q, n) for a, r, h, q, n in _OLD_LOG]
    with SqlUnitOfWork(engine).write() as tx:  # the log's seqs go on after the copied ones
        tx.usage.add_hourly({("acct_4", "compute.cpu", 0): ("5", 1)})
    assert rows(engine, "SELECT MAX(seq) FROM usage_hourly_log") == [(4,)]

    migrate_to(engine, "0010_usage_fingerprints")
    back = "SELECT account, resource, hour_us, quantity, events FROM usage_hourly"
    assert sorted(rows(engine, back)) == sorted(_OLD_HOURLY)
    logged_back = rows(
        engine,
        "SELECT account, resource, hour_us, quantity, events FROM usage_hourly_log ORDER BY seq",
    )
    assert logged_back == [*_OLD_LOG, ("acct_4", "compute.cpu", 0, "5", 1)]
    engine.dispose()


@pytest.mark.parametrize("database", DATABASES)
def test_numbers_of_a_rolled_back_transaction_are_not_remembered(
    database: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of(database, request)
    uow = SqlUnitOfWork(engine)
    known = known_series(engine)

    def rolled_back() -> None:
        with uow.write() as tx:
            tx.usage.add_hourly({("acct_9", "compute.cpu", 0): ("5", 1)})
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert ("acct_9", "compute.cpu") not in known
    assert rows(engine, "SELECT COUNT(*) FROM usage_series") == [(0,)]

    with uow.write() as tx:  # numbered again, for real this time
        tx.usage.add_hourly({("acct_9", "compute.cpu", 0): ("5", 1)})
    numbered = rows(engine, "SELECT series, account, resource FROM usage_series")
    assert known == {(a, r): s for s, a, r in numbered}

    queried: list[int] = []
    stored = SqlUsageRepository._stored_series

    def counted(self: SqlUsageRepository, pairs: Any) -> dict[tuple[str, str], int]:
        queried.append(len(pairs))
        return stored(self, pairs)

    monkeypatch.setattr(SqlUsageRepository, "_stored_series", counted)
    with uow.write() as tx:
        tx.usage.add_hourly(
            {
                ("acct_9", "compute.cpu", 3_600_000_000): ("2", 1),
                ("acct_8", "database.queries", 0): ("1", 1),
            }
        )
    assert queried == [1, 1]  # only the new pair: looked up, numbered, read back
    service = UsageService(uow, FixedClock(NOW), load_default_catalog())
    totals = {u.resource.id: u.raw for u in service.period_usage("acct_9", "1970-01").resources}
    assert totals["compute.cpu"] == Decimal(7)
    engine.dispose()
