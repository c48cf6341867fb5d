"""The Alembic migrations build exactly the schema the code declares, on both databases, and the
database itself refuses to change or delete ledger rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from synor_economics.adapters.sql import migrate
from synor_economics.adapters.sql.tables import POSTGRESQL_ONLY, metadata
from synor_economics.domain.ledger import AccountKind, AccountSpec, Transfer
from synor_economics.services.ledger import LedgerService
from tests.conftest import migrated_engine
from tests.integration.test_usage_series import migrate_to

DATABASES = ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = migrated_engine(request.getfixturevalue(request.param))
    yield engine
    engine.dispose()


def test_migrations_match_the_declared_tables(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"

    def declared_here(item: object, name: str | None, *_: object) -> bool:
        return postgres or name not in POSTGRESQL_ONLY

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": declared_here})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)


def test_ledger_rows_cannot_be_updated_or_deleted(engine: Engine, clock) -> None:
    from synor_economics.adapters.sql.uow import SqlUnitOfWork

    ledger = LedgerService(SqlUnitOfWork(engine), clock)
    ledger.open_accounts(
        [AccountSpec.of("a", AccountKind.TREASURY), AccountSpec.of("b", AccountKind.REVENUE)]
    )
    ledger.post(Transfer.between("t1", debit="a", credit="b", amount=5))
    statements = [
        "UPDATE ledger_entries SET amount = '6'",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transfers SET memo = 'edited'",
        "DELETE FROM ledger_transfers",
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="immutable"), engine.begin() as conn:
            conn.execute(text(statement))
    assert ledger.transfer("t1").amount == 5
    assert ledger.check().ok


@pytest.mark.postgres
def test_postgres_events_are_keyed_by_account_and_id_not_by_seq(postgres_url: str) -> None:
    """Migration 0013 (PostgreSQL): ``usage_events.seq`` loses its index, the unique key is the
    replica identity, the rollup log's sequence caches numbers; the downgrade puts all back."""
    engine = migrated_engine(postgres_url)

    def shape() -> tuple[object, ...]:
        with engine.connect() as conn:
            keys = conn.execute(
                text(
                    "SELECT conname FROM pg_constraint "
                    "WHERE conrelid = 'usage_events'::regclass ORDER BY conname"
                )
            ).scalars()
            identity = conn.execute(
                text("SELECT relreplident FROM pg_class WHERE relname = 'usage_events'")
            ).scalar_one()
            cache = conn.execute(
                text(
                    "SELECT cache_size FROM pg_sequences "
                    "WHERE sequencename LIKE 'usage_hourly_log%'"
                )
            ).scalar_one()
            return list(keys), identity, cache

    assert shape() == (["uq_usage_events_account_event_id"], "i", 1000)
    migrate_to(engine, "0012_usage_event_segments")
    assert shape() == (["pk_usage_events", "uq_usage_events_account_event_id"], "d", 1)
    migrate.upgrade(engine)
    assert shape() == (["uq_usage_events_account_event_id"], "i", 1000)
    engine.dispose()


def test_postgres_event_keys_compare_bytewise(postgres_url: str) -> None:
    """Migration 0014 (PostgreSQL): ``usage_events``' account and id, and the unique key's
    index on them, use collation ``C``; the downgrade gives them the database's default."""
    engine = migrated_engine(postgres_url)

    def collations() -> tuple[list[tuple[str, str | None]], list[str | None]]:
        with engine.connect() as conn:
            columns = conn.execute(
                text(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE table_name = 'usage_events' AND column_name IN ('account', 'event_id') "
                    "ORDER BY column_name"
                )
            ).all()
            index = conn.execute(
                text(
                    "SELECT array_agg(c.collname ORDER BY k.n) FROM pg_index AS i "
                    "CROSS JOIN LATERAL unnest(i.indcollation::oid[]) WITH ORDINALITY AS k(o, n) "
                    "LEFT JOIN pg_collation AS c ON c.oid = k.o "
                    "WHERE i.indexrelid = 'uq_usage_events_account_event_id'::regclass"
                )
            ).scalar_one()
            return [tuple(row) for row in columns], index

    bytewise = ([("account", "C"), ("event_id", "C")], ["C", "C", None])
    assert collations() == bytewise
    migrate_to(engine, "0013_usage_events_unindexed_seq")
    assert collations() == ([("account", None), ("event_id", None)], ["default", "default", None])
    migrate.upgrade(engine)
    assert collations() == bytewise
    engine.dispose()
