"""Helpers the repositories' bulk paths share: lists cut to a size every driver accepts, the
DB-API connection under a SQLAlchemy transaction (for executemany and COPY), and PostgreSQL
arrays spelled as one text parameter."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from decimal import Decimal
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


def pg_array_literal(values: Iterable[object]) -> str:
    """A PostgreSQL array literal (``{"a","b"}``, ``{1,2.5,NULL}``) sent as one text parameter
    and cast in the statement: psycopg adapts a Python list element by element, which for
    thousands of values costs more than the statement they feed. Strings are double-quoted with
    ``"`` and ``\\`` escaped, so no value can break out of its element; decimals are written in
    plain notation, exactly."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif isinstance(value, str):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{escaped}"')
        elif isinstance(value, Decimal):
            parts.append(format(value, "f"))
        elif isinstance(value, bool):
            parts.append("true" if value else "false")
        else:
            parts.append(str(int(value)))  # type: ignore[call-overload]
    return "{" + ",".join(parts) + "}"
