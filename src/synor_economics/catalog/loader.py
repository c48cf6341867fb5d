"""Read a price book (TOML) into a :class:`~synor_economics.domain.catalog.Catalog`.

The document format is described at the top of ``default.toml``. This module checks the document's
*shape* — known keys, types, exact numbers, timestamps — and leaves the *invariants* (prices >= 0,
tiers ordered, rows in date order, id syntax) to the domain constructors, which raise
``CatalogError`` with a place relative to themselves; ``doc.inside`` prefixes that with the place
in the document. So every rule lives once, and every error names its exact place, such as
``resources[3](compute.cpu).prices[0].tiers[1].up_to``.

Numbers must be strings (``"0.02"``) or integers: a TOML/JSON/YAML float has already lost
exactness by the time we see it, so it is refused with a message saying how to write it.

:func:`parse_price_row` is public because simulation files (SPEC §10) override rows with the same
row format, written in YAML or JSON (``up_to: null`` there is the open-ended last tier).
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from importlib import resources as package_data
from os import PathLike
from pathlib import Path
from typing import Any

from synor_economics.catalog import fields as doc
from synor_economics.domain.catalog import Catalog, MeterKind, PriceRow, Resource
from synor_economics.domain.errors import CatalogError
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
    doc.check_keys(
        data, "", required={"version", "resources"}, optional=("reserved",), what="a price book"
    )
    version = doc.text(data["version"], "version")
    resources: dict[str, Resource] = {}
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(doc.tables(data["resources"], "resources", non_empty=True)):
        resource = _parse_resource(entry, index)
        if resource.id in first_seen:
            raise CatalogError(
                f"{_resource_place(index, resource.id)}.id",
                f"duplicate resource id, first defined at resources[{first_seen[resource.id]}]",
            )
        first_seen[resource.id] = index
        resources[resource.id] = resource
    reserved = _reserved(data.get("reserved"), "reserved")
    return Catalog(version=version, digest=digest, resources=resources, reserved=reserved)


def _reserved(value: object, where: str) -> dict[int, Decimal]:
    """``[reserved] term_discounts = {"1" = "5", "3" = "15", "12" = "30"}``: percent off the
    on-demand price for a commitment of that many months."""
    if value is None:
        return {}
    table = doc.table(value, where)
    doc.check_keys(table, where, required=("term_discounts",), optional=(), what="[reserved]")
    place = doc.join(where, "term_discounts")
    terms: dict[int, Decimal] = {}
    for months, percent in doc.table(table["term_discounts"], place).items():
        key = doc.join(place, str(months))
        if str(months) not in {"1", "3", "12"}:
            raise CatalogError(key, "a term is 1, 3 or 12 months")
        terms[int(months)] = doc.decimal(percent, key)
    with doc.inside(place):
        return dict(sorted(terms.items()))


def parse_price_row(
    data: Mapping[str, Any], *, where: str, default_effective_from: datetime | None
) -> PriceRow:
    """One price row, e.g. ``{model: graduated, tiers: [...]}`` or ``{currency: USD, ...}``.

    ``default_effective_from`` is used when the row does not say; ``None`` makes the key required
    (the price book itself always dates its rows).
    """
    table = doc.table(data, where)
    model = doc.one_of(
        table.get("model", "per_unit"), MODEL_NAMES, doc.join(where, "model"), "model"
    )
    model_class, needs, read_fields = _MODEL_FIELDS[model]
    doc.check_keys(table, where, required=needs, optional=_ROW_OPTIONAL, what=f"a {model} row")
    effective_from = _effective_from(table, where, default_effective_from)
    currency = doc.one_of(
        table.get("currency", "SYNOR"), Currency, doc.join(where, "currency"), "currency"
    )
    fields = read_fields(table, where)
    fields["minimum"] = doc.optional_decimal(table.get("minimum"), doc.join(where, "minimum"))
    with doc.inside(where):
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
    doc.check_keys(
        entry, where, required=_RESOURCE_KEYS, optional=_RESOURCE_OPTIONAL, what="a resource"
    )
    prices_at = doc.join(where, "prices")
    rows = tuple(
        parse_price_row(row, where=f"{prices_at}[{number}]", default_effective_from=None)
        for number, row in enumerate(doc.tables(entry["prices"], prices_at, non_empty=False))
    )
    meter = doc.one_of(entry["meter"], MeterKind, doc.join(where, "meter"), "meter kind")
    event_unit = doc.text(entry["event_unit"], doc.join(where, "event_unit"))
    price_unit = doc.text(entry["price_unit"], doc.join(where, "price_unit"))
    description = doc.text(entry.get("description", ""), doc.join(where, "description"))
    divisor = doc.no_float(entry["divisor"], doc.join(where, "divisor"), "an integer like 3600")
    with doc.inside(where):
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
    for number, entry in enumerate(doc.tables(value, where, non_empty=False)):
        place = f"{where}[{number}]"
        doc.check_keys(entry, place, required={"unit_price"}, optional={"up_to"}, what="a tier")
        up_to = doc.optional_decimal(entry.get("up_to"), doc.join(place, "up_to"))
        unit_price = doc.decimal(entry["unit_price"], doc.join(place, "unit_price"))
        with doc.inside(place):
            tiers.append(Tier(up_to=up_to, unit_price=unit_price))
    return tuple(tiers)


def _per_unit_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"unit_price": doc.decimal(table["unit_price"], doc.join(where, "unit_price"))}


def _tiered_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {"tiers": _tiers(table["tiers"], doc.join(where, "tiers"))}


def _package_fields(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "package_size": doc.decimal(table["package_size"], doc.join(where, "package_size")),
        "package_price": doc.decimal(table["package_price"], doc.join(where, "package_price")),
    }


_FieldReader = Callable[[Mapping[str, Any], str], dict[str, Any]]
_MODEL_FIELDS: dict[str, tuple[Callable[..., Any], frozenset[str], _FieldReader]] = {
    "per_unit": (PerUnit, frozenset({"unit_price"}), _per_unit_fields),
    "graduated": (Graduated, frozenset({"tiers"}), _tiered_fields),
    "volume": (Volume, frozenset({"tiers"}), _tiered_fields),
    "package": (Package, frozenset({"package_size", "package_price"}), _package_fields),
}
"""Per model name: the class, the keys its rows need, and how to read them."""


def _effective_from(table: Mapping[str, Any], where: str, default: datetime | None) -> datetime:
    if "effective_from" in table:
        return doc.instant(table["effective_from"], doc.join(where, "effective_from"))
    if default is None:
        raise CatalogError(
            doc.join(where, "effective_from"), "missing: a price book dates every row"
        )
    return default
