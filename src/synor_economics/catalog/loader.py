"""Read a price book (TOML) into a :class:`~synor_economics.domain.catalog.Catalog`.

The document format is described at the top of ``default.toml``. This module checks the document's
*shape* — known keys, types, exact numbers, timestamps — and leaves the *invariants* (prices >= 0,
tiers ordered, rows in date order, id syntax) to the domain constructors, which raise
``CatalogError`` with a place relative to themselves; :func:`_inside` prefixes that with the
place in the document. So every rule lives once, and every error names its exact place, such as
``resources[3](compute.cpu).prices[0].tiers[1].up_to``.

Numbers must be strings (``"0.02"``) or integers: a TOML/JSON/YAML float has already lost
exactness by the time we see it, so it is refused with a message saying how to write it.

:func:`parse_price_row` is public because simulation files (SPEC §10) override rows with the same
row format, written in YAML or JSON (``up_to: null`` there is the open-ended last tier).
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from importlib import resources as package_data
from os import PathLike
from pathlib import Path
from typing import Any

from synor_economics.domain.catalog import Catalog, MeterKind, PriceRow, Resource
from synor_economics.domain.errors import CatalogError, MoneyError
from synor_economics.domain.money import parse_decimal
from synor_economics.domain.pricing import (
    MODEL_NAMES,
    Currency,
    Graduated,
    Package,
    PerUnit,
    Tier,
    Volume,
)

DEFAULT_CATALOG = "default.toml"
"""The packaged price book, beside this module."""

_RESOURCE_KEYS = frozenset({"id", "meter", "event_unit", "price_unit", "divisor", "prices"})
_RESOURCE_OPTIONAL = frozenset({"description", "allows_corrections"})
_ROW_OPTIONAL = frozenset({"effective_from", "model", "currency", "minimum"})
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")


# ---------------------------------------------------------------------------------------------
# Entry points


@functools.cache
def load_default_catalog() -> Catalog:
    """The packaged price book (SPEC §3), parsed once per process: a catalog is immutable."""
    raw = package_data.files("synor_economics.catalog").joinpath(DEFAULT_CATALOG).read_bytes()
    return _catalog_from_bytes(raw, source=DEFAULT_CATALOG)


def load_catalog(path: str | PathLike[str]) -> Catalog:
    """A price book from a TOML file; its digest is the sha256 of the file's bytes."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise CatalogError(str(path), f"cannot read the price book: {err.strerror}") from None
    return _catalog_from_bytes(raw, source=str(path))


def parse_catalog(data: Mapping[str, Any], *, digest: str) -> Catalog:
    """A price book from an already-decoded document; ``digest`` identifies its content."""
    _check_keys(data, "", required={"version", "resources"}, optional=(), what="a price book")
    version = _text(data["version"], "version")
    resources: dict[str, Resource] = {}
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(_tables(data["resources"], "resources", non_empty=True)):
        resource = _parse_resource(entry, index)
        if resource.id in first_seen:
            raise CatalogError(
                f"{_resource_place(index, resource.id)}.id",
                f"duplicate resource id, first defined at resources[{first_seen[resource.id]}]",
            )
        first_seen[resource.id] = index
        resources[resource.id] = resource
    return Catalog(version=version, digest=digest, resources=resources)


def parse_price_row(
    data: Mapping[str, Any], *, where: str, default_effective_from: datetime | None
) -> PriceRow:
    """One price row, e.g. ``{model: graduated, tiers: [...]}`` or ``{currency: USD, ...}``.

    ``default_effective_from`` is used when the row does not say; ``None`` makes the key required
    (the price book itself always dates its rows).
    """
    table = _table(data, where)
    model = _one_of(table.get("model", "per_unit"), MODEL_NAMES, _join(where, "model"), "model")
    model_class, needs, read_fields = _MODEL_FIELDS[model]
    _check_keys(table, where, required=needs, optional=_ROW_OPTIONAL, what=f"a {model} row")
    effective_from = _effective_from(table, where, default_effective_from)
    currency = _one_of(
        table.get("currency", "SYNOR"), Currency, _join(where, "currency"), "currency"
    )
    fields = read_fields(table, where)
    fields["minimum"] = _optional_decimal(table.get("minimum"), _join(where, "minimum"))
    with _inside(where):
        return PriceRow(effective_from, model_class(**fields, currency=Currency(currency)))


# ---------------------------------------------------------------------------------------------
# Documents


def _catalog_from_bytes(raw: bytes, *, source: str) -> Catalog:
    """Decode TOML and parse it; the digest covers the exact bytes, comments included."""
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CatalogError(source, f"not UTF-8 text: {err.reason} at byte {err.start}") from None
    except tomllib.TOMLDecodeError as err:
        raise CatalogError(source, f"not valid TOML: {err}") from None
    return parse_catalog(document, digest=hashlib.sha256(raw).hexdigest())


def _resource_place(index: int, resource_id: object) -> str:
    """``resources[3](compute.cpu)``: the index finds it in the file, the id tells what it is."""
    place = f"resources[{index}]"
    return f"{place}({resource_id})" if isinstance(resource_id, str) else place


def _parse_resource(entry: Mapping[str, Any], index: int) -> Resource:
    where = _resource_place(index, entry.get("id"))
    _check_keys(
        entry, where, required=_RESOURCE_KEYS, optional=_RESOURCE_OPTIONAL, what="a resource"
    )
    prices_at = _join(where, "prices")
    rows = tuple(
        parse_price_row(row, where=f"{prices_at}[{number}]", default_effective_from=None)
        for number, row in enumerate(_tables(entry["prices"], prices_at, non_empty=False))
    )
    meter = _one_of(entry["meter"], MeterKind, _join(where, "meter"), "meter kind")
    event_unit = _text(entry["event_unit"], _join(where, "event_unit"))
    price_unit = _text(entry["price_unit"], _join(where, "price_unit"))
    description = _text(entry.get("description", ""), _join(where, "description"))
    divisor = _no_float(entry["divisor"], _join(where, "divisor"), "an integer like 3600")
    with _inside(where):
        return Resource(
            id=entry["id"],
            meter=MeterKind(meter),
            event_unit=event_unit,
            price_unit=price_unit,
            divisor=divisor,
            description=description,
            allows_corrections=entry.get("allows_corrections", False),
            prices=rows,
        )


def _tiers(value: object, where: str) -> tuple[Tier, ...]:
    tiers: list[Tier] = []
    for number, entry in enumerate(_tables(value, where, non_empty=False)):
        place = f"{where}[{number}]"
        _check_keys(entry, place, required={"unit_price"}, optional={"up_to"}, what="a tier")
        up_to = _optional_decimal(entry.get("up_to"), _join(place, "up_to"))
        unit_price = _decimal(entry["unit_price"], _join(place, "unit_price"))
        with _inside(place):
            tiers.append(Tier(up_to=up_to, unit_price=unit_price))
    return tuple(tiers)


def _per_unit_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"unit_price": _decimal(table["unit_price"], _join(where, "unit_price"))}


def _tiered_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"tiers": _tiers(table["tiers"], _join(where, "tiers"))}


def _package_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "package_size": _decimal(table["package_size"], _join(where, "package_size")),
        "package_price": _decimal(table["package_price"], _join(where, "package_price")),
    }


_FieldReader = Callable[[Mapping[str, Any], str], dict[str, Any]]
_MODEL_FIELDS: dict[str, tuple[Callable[..., Any], frozenset[str], _FieldReader]] = {
    "per_unit": (PerUnit, frozenset({"unit_price"}), _per_unit_fields),
    "graduated": (Graduated, frozenset({"tiers"}), _tiered_fields),
    "volume": (Volume, frozenset({"tiers"}), _tiered_fields),
    "package": (Package, frozenset({"package_size", "package_price"}), _package_fields),
}
"""Per model name: the class, the keys its rows need, and how to read them."""


# ---------------------------------------------------------------------------------------------
# Values


@contextmanager
def _inside(where: str) -> Iterator[None]:
    """Re-raise a domain ``CatalogError`` with its place prefixed by ``where`` in the document."""
    try:
        yield
    except CatalogError as err:
        raise CatalogError(_join(where, err.where), err.problem) from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where and key else where or key


def _check_keys(
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
                _join(where, str(key)), f"unknown key in {what}; allowed: {', '.join(allowed)}"
            )
    for key in sorted(required):
        if key not in table:
            raise CatalogError(_join(where, key), f"missing: {what} needs it")


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogError(where, f"must be a table of keys, not {_kind(value)}")
    return value


def _tables(value: object, where: str, *, non_empty: bool) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        raise CatalogError(where, f"must be a list of tables, not {_kind(value)}")
    if non_empty and not value:
        raise CatalogError(where, "must not be empty")
    return [_table(item, f"{where}[{number}]") for number, item in enumerate(value)]


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise CatalogError(where, f"must be a string, not {_kind(value)}")
    return value


def _one_of(value: object, options: Iterable[str], where: str, what: str) -> str:
    """A name out of a fixed set (a model, a meter kind, a currency), with the set in the error."""
    names = [str(option) for option in options]
    if not isinstance(value, str) or value not in names:
        raise CatalogError(where, f"unknown {what} {value!r}; expected one of: {', '.join(names)}")
    return value


def _no_float(value: Any, where: str, example: str) -> Any:
    """Refuse a float with a message saying how to write the value exactly."""
    if isinstance(value, float):
        raise CatalogError(
            where, f"is a float ({value!r}), which is inexact; write {example} instead"
        )
    return value


def _decimal(value: object, where: str) -> Decimal:
    _no_float(value, where, f'a string like "{value}"')
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise CatalogError(where, f'must be a decimal string like "0.02", not {_kind(value)}')
    try:
        return parse_decimal(value, what="the value")
    except MoneyError as err:
        raise CatalogError(where, str(err)) from None


def _optional_decimal(value: object, where: str) -> Decimal | None:
    return None if value is None else _decimal(value, where)


def _effective_from(table: Mapping[str, Any], where: str, default: datetime | None) -> datetime:
    if "effective_from" in table:
        return _instant(table["effective_from"], _join(where, "effective_from"))
    if default is None:
        raise CatalogError(_join(where, "effective_from"), "missing: a price book dates every row")
    return default


def _instant(value: object, where: str) -> datetime:
    """An RFC 3339 timestamp string (``2026-01-01T00:00:00Z``) or a decoded datetime.

    Whether it is UTC is the domain's rule (``PriceRow``); here only the notation is checked.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        raise CatalogError(
            where, f"must be an RFC 3339 UTC timestamp like 2026-01-01T00:00:00Z, got {value!r}"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise CatalogError(where, f"not a valid timestamp: {err}") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
