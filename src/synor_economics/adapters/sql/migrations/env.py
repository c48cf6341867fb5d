"""Alembic environment: runs on the connection the caller hands over, or opens one."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from synor_economics.adapters.sql.engine import make_engine
from synor_economics.adapters.sql.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


run_migrations_online()
