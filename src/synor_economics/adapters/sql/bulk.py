"""Helpers the repositories' bulk paths share: lists cut to a size every driver accepts, the
DB-API connection under a SQLAlchemy transaction (for executemany and COPY), PostgreSQL
arrays spelled as one text parameter, and columns copied into PostgreSQL as CSV."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import Any, TypeAlias, TypeVar

import pyarrow as pa
import pyarrow.csv as pa_csv
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


MAX_PARAMETERS = 32_766
"""SQLite's default bound on a statement's parameters (builds may raise it, none lowers it)."""


def rows_per_statement(width: int) -> int:
    """Most rows of ``width`` values in one multi-row ``VALUES`` (SQLite): the largest power of
    two whose parameters fit, so that the rows left over go in statements of half as many,
    and so on, and a dozen statement texts serve every batch and stay in the driver's cache."""
    return 1 << ((MAX_PARAMETERS // width).bit_length() - 1)


def insert_rows(
    driver: Any, head: str, width: int, rows: Iterable[Sequence[Any]], tail: str = ""
) -> None:
    """Insert ``rows`` of ``width`` values with multi-row ``INSERT ... VALUES`` statements
    (SQLite): ``head`` is the statement up to ``VALUES``, ``tail`` what follows the rows (an
    ``ON CONFLICT`` clause).

    Why not ``executemany``: it steps the statement once per row and lets the interpreter go
    and take it back at every step. With other threads busy (requests being validated while a
    batch is stored) each taking-back can wait for the interpreter's switch interval, so the
    storing thread crawls. A multi-row statement binds its rows in one C loop and runs them in
    one step, the interpreter released throughout; it is also some 15% faster alone."""
    insert_values(driver, head, width, list(chain.from_iterable(rows)), tail)


def insert_values(driver: Any, head: str, width: int, values: list[Any], tail: str = "") -> None:
    """:func:`insert_rows` for rows given as one flat list, row after row: callers holding
    columns make it in C (``list(chain.from_iterable(zip(*columns)))``), which costs a fraction
    of a tuple made in Python per row."""
    count = len(values) // width
    start, size = 0, rows_per_statement(width)
    while start < count:
        while size > count - start:
            size //= 2
        statement = _values_statement(head, width, size, tail)
        driver.execute(statement, values[start * width : (start + size) * width])
        start += size


@lru_cache(maxsize=64)
def _values_statement(head: str, width: int, count: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * count)} {tail}"


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


Column: TypeAlias = "pa.Array[Any] | pa.ChunkedArray[Any] | list[str] | list[int]"
"""A column to copy: Arrow's, or a list Arrow converts."""

_CSV = pa_csv.WriteOptions(include_header=False, batch_size=16_384)
"""Arrow's CSV: no header; every string quoted (its default, "needed", quotes any string), so
that an empty string stays one and is never PostgreSQL's unquoted empty field, NULL."""


def copy_columns(driver: Any, target: str, columns: Sequence[Column], *, sort_by: int = 0) -> None:
    """COPY rows given as columns into ``target`` (``"table (a, b, ...)"``, PostgreSQL), as one
    CSV text that Arrow writes in C++; with ``sort_by``, the rows in the order of their first
    ``sort_by`` columns (strings by code point, as Python sorts them: UTF-8's byte order).

    Why not psycopg's ``write_row``: it formats each row's values one by one through their
    dumpers, some 3 µs a row of a dozen fields, which was the largest part of a stream worker's
    own time per event. Arrow makes the same rows for about a fifth of that. CSV's quoting
    (a quote doubled, nothing else escaped) is the same in both: any text goes through as it
    is. Strings are checked by Arrow as they are converted; text Arrow refuses (a lone
    surrogate) raises ``pyarrow.ArrowException``, and PostgreSQL would refuse it too."""
    arrays = [pa.array(column) if isinstance(column, list) else column for column in columns]
    table = pa.Table.from_arrays(arrays, names=[str(n) for n in range(len(arrays))])
    if sort_by:
        table = table.sort_by([(str(n), "ascending") for n in range(sort_by)])
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=_CSV)
    with driver.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
        copy.write(memoryview(sink.getvalue()))
