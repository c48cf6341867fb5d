"""Engines for the two supported databases, with the settings each needs to be a safe ledger.

SQLite (the embedded default): WAL so readers never block the writer, ``synchronous=FULL`` so a
committed transfer survives a power cut, foreign keys on, and ``BEGIN IMMEDIATE`` for write
transactions so two writers queue instead of failing halfway. PostgreSQL: a transaction-level
advisory lock serialises ledger writers (see ``uow.py``); readers use MVCC snapshots.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from synor_economics.adapters.sql.checkpoint import AUTOCHECKPOINT_PAGES
from synor_economics.domain.meters import EXACT

WRITE_OPTION = "synor_write"
"""Execution option marking a connection whose transaction will write."""


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the engine for ``url``, creating a SQLite file's folder if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, echo=echo)
    # JIT compilation pays off for long analytical queries; for the ledger's short batched
    # lookups it added ~30 ms of compiling to each (measured on the replay of a batch).
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args={"options": "-c jit=off"})


def _sqlite_engine(url: str, database: str | None, *, echo: bool) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # Checkpoints run on a thread of their own (``checkpoint.py``); a writer makes one
        # itself only when the log grows this long.
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB: hot index pages stay in memory
        cursor.close()
        dbapi_connection.create_function("synor_exact_add", 2, exact_add, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        writing = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def exact_add(left: str, right: str) -> str:
    """Two decimals stored as TEXT, added exactly (SQLite's own ``+`` goes through floats);
    registered on every SQLite connection as ``synor_exact_add`` for additive upserts."""
    total = EXACT.add(Decimal(left), Decimal(right))
    return format(total, "f")


@contextmanager
def scratch_postgres(admin_url: str, prefix: str = "synor_scratch") -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration of the block (tests, benchmarks),
    dropped afterwards even if connections are still open. Yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def describe_url(url: str) -> str:
    """The URL with any password hidden, for logs and ``synor config``."""
    return make_url(url).render_as_string(hide_password=True)
