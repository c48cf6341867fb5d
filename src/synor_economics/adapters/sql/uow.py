"""The SQL unit of work: one connection, one transaction, the repositories bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from synor_economics.adapters.sql.background import BackgroundTask
from synor_economics.adapters.sql.billing_repository import SqlBillingRepository
from synor_economics.adapters.sql.checkpoint import Checkpointer
from synor_economics.adapters.sql.engine import WRITE_OPTION
from synor_economics.adapters.sql.ledger_repository import SqlLedgerRepository
from synor_economics.adapters.sql.oracle_repository import SqlOracleRepository
from synor_economics.adapters.sql.payment_watch_repository import SqlPaymentWatchRepository
from synor_economics.adapters.sql.usage_repository import SqlUsageRepository

LEDGER_LOCK_KEY = 0x53594E4F52
"""PostgreSQL advisory lock key ("SYNOR") that serialises ledger writers across processes."""

USAGE_LOCK_KEY = 0x5553414745
"""The lock usage writers take instead ("USAGE"): metering never waits for the ledger, nor the
ledger for metering; their tables do not overlap."""

ORACLE_LOCK_KEY = 0x4F5241434C45
"""The oracle's and the payment watcher's own records ("ORACLE"): a round never waits for a
ledger batch. (Crediting a payment goes through billing, under the ledger's lock.)"""

_SHARED_LOCK = text("SELECT pg_advisory_xact_lock_shared(:key)")
_EXCLUSIVE_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


class SqlTransaction:
    """A transaction's repositories: the ledger, usage and billing."""

    def __init__(self, conn: Connection, *, fold_inline: bool = True) -> None:
        self.connection = conn
        self._ledger = SqlLedgerRepository(conn)
        self._usage = SqlUsageRepository(conn, fold_inline=fold_inline)
        self._billing = SqlBillingRepository(conn)
        self._oracle = SqlOracleRepository(conn)
        self._chain = SqlPaymentWatchRepository(conn)

    def finish(self) -> None:
        """What must be written last, just before commit (the usage key index's new run)."""
        self._usage.finish()

    @property
    def ledger(self) -> SqlLedgerRepository:
        return self._ledger

    @property
    def usage(self) -> SqlUsageRepository:
        return self._usage

    @property
    def billing(self) -> SqlBillingRepository:
        return self._billing

    @property
    def oracle(self) -> SqlOracleRepository:
        return self._oracle

    @property
    def chain(self) -> SqlPaymentWatchRepository:
        return self._chain


class SqlUnitOfWork:
    """Opens SQL transactions. Writers are serialised: BEGIN IMMEDIATE on SQLite, an advisory
    transaction lock on PostgreSQL, so the ledger's sequence and running balances never race.
    ``lock_key`` picks the PostgreSQL lock: the ledger's by default; usage writers get their
    own, ``shared`` among themselves (ingestion is safe side by side: see the usage repository)
    and exclusive for replacements, which rebuild rollups. SQLite has one writer at a time
    whatever the lock.

    ``fold_apart``: on PostgreSQL, a write that logged rollup deltas has the log folded on a
    thread and connection of their own once it has committed (``background.py``), under
    the same lock, instead of folding a full log itself; ``close`` stops that thread.
    ``checkpoints``: on SQLite, asked for a WAL checkpoint after each write commits
    (``checkpoint.py``)."""

    def __init__(
        self,
        engine: Engine,
        lock_key: int = LEDGER_LOCK_KEY,
        *,
        shared: bool = False,
        fold_apart: bool = False,
        checkpoints: Checkpointer | None = None,
    ) -> None:
        self.engine = engine
        self.lock_key = lock_key
        self._shared = shared
        self._checkpoints = checkpoints
        apart = fold_apart and engine.dialect.name == "postgresql"
        self._folder = (
            BackgroundTask(
                self.fold,
                name="synor-rollup-fold",
                failure="folding the usage rollup log failed; it is retried later",
            )
            if apart
            else None
        )

    def fold(self) -> None:
        """Fold the rollup log, if full, in a write transaction of its own."""
        with self._transaction(exclusive=False, fold_inline=True) as transaction:
            transaction.usage.fold_log()

    def close(self) -> None:
        """Stop folding apart (a fold running finishes first)."""
        if self._folder is not None:
            self._folder.close()

    @contextmanager
    def write(self, *, exclusive: bool = False) -> Iterator[SqlTransaction]:
        """A write transaction; ``exclusive`` takes the lock alone even where writers share it."""
        folder = self._folder
        with self._transaction(exclusive=exclusive, fold_inline=folder is None) as transaction:
            yield transaction
        transaction.usage.committed()
        if folder is not None and transaction.usage.logged:
            folder.ask()
        if self._checkpoints is not None:
            self._checkpoints.ask()

    @contextmanager
    def _transaction(self, *, exclusive: bool, fold_inline: bool) -> Iterator[SqlTransaction]:
        lock = _SHARED_LOCK if self._shared and not exclusive else _EXCLUSIVE_LOCK
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(lock, {"key": self.lock_key})
                transaction = SqlTransaction(conn, fold_inline=fold_inline)
                yield transaction
                transaction.finish()

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        with self.engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            yield SqlTransaction(conn)
