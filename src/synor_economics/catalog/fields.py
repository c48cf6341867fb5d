"""Reading values out of a decoded document (TOML, YAML or JSON) with the place of every error.

Shared by the price book loader and the simulation and estimate file readers: each check raises
``CatalogError(where, problem)``, whose ``where`` is the path in the document
(``accounts[0].discounts[1].percent``). Numbers must be strings (``"0.02"``) or integers: a float
has already lost exactness by the time it is seen, so it is refused with a message saying how to
write it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from synor_economics.domain.errors import CatalogError, MoneyError
from synor_economics.domain.money import parse_decimal

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")


@contextmanager
def inside(where: str) -> Iterator[None]:
    """Re-raise a domain ``CatalogError`` with its place prefixed by ``where`` in the document."""
    try:
        yield
    except CatalogError as err:
        raise CatalogError(join(where, err.where), err.problem) from None


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where and key else where or key


def check_keys(
    table: Mapping[str, Any],
    where: str,
    *,
    required: Collection[str],
    optional: Collection[str],
    what: str,
) -> None:
    """Every key known, every required key present: a typo must not silently drop a price."""
    allowed = sorted({*required, *optional})
    for key in table:
        if key not in allowed:
            raise CatalogError(
                join(where, str(key)), f"unknown key in {what}; allowed: {', '.join(allowed)}"
            )
    for key in sorted(required):
        if key not in table:
            raise CatalogError(join(where, key), f"missing: {what} needs it")


def table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogError(where, f"must be a table of keys, not {kind(value)}")
    return value


def tables(value: object, where: str, *, non_empty: bool) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        raise CatalogError(where, f"must be a list of tables, not {kind(value)}")
    if non_empty and not value:
        raise CatalogError(where, "must not be empty")
    return [table(item, f"{where}[{number}]") for number, item in enumerate(value)]


def text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise CatalogError(where, f"must be a string, not {kind(value)}")
    return value


def one_of(value: object, options: Iterable[str], where: str, what: str) -> str:
    """A name out of a fixed set (a model, a meter kind, a currency), with the set in the error."""
    names = [str(option) for option in options]
    if not isinstance(value, str) or value not in names:
        raise CatalogError(where, f"unknown {what} {value!r}; expected one of: {', '.join(names)}")
    return value


def no_float(value: Any, where: str, example: str) -> Any:
    """Refuse a float with a message saying how to write the value exactly."""
    if isinstance(value, float):
        raise CatalogError(
            where, f"is a float ({value!r}), which is inexact; write {example} instead"
        )
    return value


def decimal(value: object, where: str) -> Decimal:
    no_float(value, where, f'a string like "{value}"')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise CatalogError(where, f'must be a decimal string like "0.02", not {kind(value)}')
    try:
        return parse_decimal(value, what="the value")
    except MoneyError as err:
        raise CatalogError(where, str(err)) from None


def optional_decimal(value: object, where: str) -> Decimal | None:
    return None if value is None else decimal(value, where)


def instant(value: object, where: str) -> datetime:
    """An RFC 3339 timestamp string (``2026-01-01T00:00:00Z``) or a decoded datetime.

    Whether it is UTC is the domain's rule (``PriceRow``); here only the notation is checked.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not TIMESTAMP.match(value):
        raise CatalogError(
            where, f"must be an RFC 3339 UTC timestamp like 2026-01-01T00:00:00Z, got {value!r}"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise CatalogError(where, f"not a valid timestamp: {err}") from None


def kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
