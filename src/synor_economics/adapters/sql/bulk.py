"""Helpers the repositories' bulk paths share: lists cut to a size every driver accepts, and the
DB-API connection under a SQLAlchemy transaction (for executemany and COPY)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, TypeVar

from sqlalchemy import Connection

_T = TypeVar("_T")


def chunks(items: Collection[_T], size: int) -> Iterator[list[_T]]:
    """Lists of at most ``size`` items, in order."""
    listed = list(items)
    for start in range(0, len(listed), size):
        yield listed[start : start + size]


def driver_of(conn: Connection) -> Any:
    """The DB-API connection (sqlite3 or psycopg) under this transaction."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver
