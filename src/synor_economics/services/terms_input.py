"""An account's terms (discounts, commitments, credit grants, uptime, prepaid) read from a decoded
YAML or JSON document, every error naming its place (``accounts[0].discounts[1].percent``).

Used by simulation files (SPEC §10) and estimate files (SPEC §11), so both write terms the same way:

```yaml
prepaid: "10"                                   # SYNOR
credits: [{id: c1, amount: "3", priority: 1, expires_at: "2026-12-31T00:00:00Z",
           scope: {service: compute}}]
discounts:
  - {id: d1, kind: percent, percent: "10", scope: {resource: compute.cpu}, priority: 1,
     start: "2026-11-01T00:00:00Z", end: "2027-01-01T00:00:00Z"}
  - {id: d2, kind: fixed, amount: "1.5"}        # SYNOR off the invoice
commitments: [{id: r1, resource: compute.cpu, quantity: "500", unit_price: "0.015",
               term_months: 12, start: "2026-01-01T00:00:00Z"}]
uptime: {compute: "99.5"}                        # percent for the period, per service
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar

from synor_economics.catalog import fields as doc
from synor_economics.domain.catalog import Catalog
from synor_economics.domain.errors import CatalogError, MoneyError, SynorError
from synor_economics.domain.invoice import Terms
from synor_economics.domain.money import parse_synor
from synor_economics.domain.period import Period
from synor_economics.domain.pricing import Currency
from synor_economics.domain.terms import (
    Commitment,
    CreditGrant,
    Discount,
    DiscountKind,
    Scope,
)

_T = TypeVar("_T")


class DocumentError(SynorError, ValueError):
    """A simulation or estimate document that cannot be used; the message names the place."""


TERMS_KEYS = frozenset({"prepaid", "credits", "discounts", "commitments", "uptime"})
"""The keys :func:`read_terms` reads."""


def read_terms(table: Mapping[str, Any], where: str, catalog: Catalog) -> Terms:
    """The terms keys of ``table`` (others are the caller's to check)."""
    grants = tuple(
        _grant(item, f"{where}.credits[{index}]", catalog, index)
        for index, item in enumerate(_list(table.get("credits"), doc.join(where, "credits")))
    )
    discounts = tuple(
        _discount(item, f"{where}.discounts[{index}]", catalog)
        for index, item in enumerate(_list(table.get("discounts"), doc.join(where, "discounts")))
    )
    commitments = tuple(
        _commitment(item, f"{where}.commitments[{index}]", catalog)
        for index, item in enumerate(
            _list(table.get("commitments"), doc.join(where, "commitments"))
        )
    )
    _unique([g.id for g in grants], doc.join(where, "credits"))
    _unique([d.id for d in discounts], doc.join(where, "discounts"))
    _unique([c.id for c in commitments], doc.join(where, "commitments"))
    _unique([c.resource for c in commitments], doc.join(where, "commitments"), "resource")
    prepaid = table.get("prepaid")
    return Terms(
        discounts=discounts,
        commitments=commitments,
        uptime=_uptime(table.get("uptime"), doc.join(where, "uptime"), catalog),
        grants=grants,
        prepaid=0 if prepaid is None else synor_at(prepaid, doc.join(where, "prepaid")),
    )


def read_discount(document: object, catalog: Catalog) -> Discount:
    """One discount as an API body gives it (the same keys as a simulation file's)."""
    return _one(document, catalog, _discount)


def read_commitment(document: object, catalog: Catalog) -> Commitment:
    return _one(document, catalog, _commitment)


def read_grant(document: object, catalog: Catalog) -> CreditGrant:
    return _one(document, catalog, lambda table, where, book: _grant(table, where, book, 0))


def _one(
    document: object, catalog: Catalog, read: Callable[[Mapping[str, Any], str, Catalog], _T]
) -> _T:
    try:
        return read(doc.table(document, "body"), "body", catalog)
    except CatalogError as error:
        raise DocumentError(str(error)) from None


def synor_at(value: object, where: str) -> int:
    """A SYNOR amount written as a decimal string ("1.5"), as base units."""
    doc.no_float(value, where, f'a string like "{value}"')
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CatalogError(where, f'must be a SYNOR amount like "1.5", not {doc.kind(value)}')
    try:
        units = parse_synor(str(value), what="amount")
    except MoneyError as error:
        raise CatalogError(where, str(error)) from None
    if units < 0:
        raise CatalogError(where, f"must not be negative, got {value}")
    return units


def instant_at(value: object, where: str) -> datetime:
    """A UTC instant (RFC 3339 string, or a datetime a YAML parser already made)."""
    moment = doc.instant(value, where)
    if moment.tzinfo is None or moment.utcoffset() is None or moment.utcoffset().total_seconds():  # type: ignore[union-attr]
        raise CatalogError(where, f"must be in UTC (end in Z), got {value!r}")
    return moment


def integer_at(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogError(where, f"must be an integer, not {doc.kind(value)}")
    return value


def _list(value: object, where: str) -> list[Mapping[str, Any]]:
    return [] if value is None else doc.tables(value, where, non_empty=False)


def _unique(ids: list[str], where: str, what: str = "id") -> None:
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if item in seen:
            raise CatalogError(f"{where}[{index}].{what}", f"duplicate {what} {item!r}")
        seen.add(item)


def _identifier(table: Mapping[str, Any], where: str) -> str:
    value = doc.text(table.get("id"), doc.join(where, "id"))
    if not value.strip():
        raise CatalogError(doc.join(where, "id"), "must not be empty")
    return value


def _scope(value: object, where: str, catalog: Catalog) -> Scope | None:
    if value is None:
        return None
    table = doc.table(value, where)
    doc.check_keys(table, where, required=(), optional=("service", "resource"), what="a scope")
    if len(table) != 1:
        raise CatalogError(where, "must name exactly one of service or resource")
    if "resource" in table:
        resource = doc.text(table["resource"], doc.join(where, "resource"))
        with doc.inside(doc.join(where, "resource")):
            catalog.resource(resource)
        return Scope(resource=resource)
    service = doc.text(table["service"], doc.join(where, "service"))
    if service not in catalog.services():
        raise CatalogError(
            doc.join(where, "service"),
            f"unknown service {service!r}; expected one of: {', '.join(catalog.services())}",
        )
    return Scope(service=service)


def _optional_instant(table: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = table.get(key)
    return None if value is None else instant_at(value, doc.join(where, key))


def _domain(where: str, build: Any, **fields: Any) -> Any:
    """Build a domain value; its own refusal (a percent above 100) is reported at ``where``."""
    try:
        return build(**fields)
    except SynorError as error:
        raise CatalogError(where, str(error)) from None


def _discount(table: Mapping[str, Any], where: str, catalog: Catalog) -> Discount:
    kind = doc.one_of(table.get("kind"), DiscountKind, doc.join(where, "kind"), "discount kind")
    needs = ("id", "kind", "percent") if kind == DiscountKind.PERCENT else ("id", "kind", "amount")
    doc.check_keys(
        table,
        where,
        required=needs,
        optional=("scope", "priority", "start", "end"),
        what=f"a {kind} discount",
    )
    priority = table.get("priority", 0)
    return _domain(  # type: ignore[no-any-return]
        where,
        Discount,
        id=_identifier(table, where),
        kind=DiscountKind(kind),
        percent=doc.decimal(table["percent"], doc.join(where, "percent"))
        if "percent" in table
        else None,
        amount=synor_at(table["amount"], doc.join(where, "amount")) if "amount" in table else None,
        scope=_scope(table.get("scope"), doc.join(where, "scope"), catalog),
        priority=integer_at(priority, doc.join(where, "priority")),
        start=_optional_instant(table, "start", where),
        end=_optional_instant(table, "end", where),
    )


def _grant(table: Mapping[str, Any], where: str, catalog: Catalog, created: int) -> CreditGrant:
    doc.check_keys(
        table,
        where,
        required=("id", "amount"),
        optional=("priority", "expires_at", "scope", "remaining"),
        what="a credit grant",
    )
    amount = synor_at(table["amount"], doc.join(where, "amount"))
    remaining = table.get("remaining")
    return _domain(  # type: ignore[no-any-return]
        where,
        CreditGrant,
        id=_identifier(table, where),
        amount=amount,
        remaining=amount
        if remaining is None
        else synor_at(remaining, doc.join(where, "remaining")),
        priority=integer_at(table.get("priority", 0), doc.join(where, "priority")),
        expires_at=_optional_instant(table, "expires_at", where),
        scope=_scope(table.get("scope"), doc.join(where, "scope"), catalog),
        created=created,
    )


def _commitment(table: Mapping[str, Any], where: str, catalog: Catalog) -> Commitment:
    doc.check_keys(
        table,
        where,
        required=("id", "resource", "quantity", "unit_price", "term_months", "start"),
        optional=("currency",),
        what="a commitment",
    )
    resource = doc.text(table["resource"], doc.join(where, "resource"))
    with doc.inside(doc.join(where, "resource")):
        catalog.resource(resource)
    currency = doc.one_of(
        table.get("currency", "SYNOR"), Currency, doc.join(where, "currency"), "currency"
    )
    return _domain(  # type: ignore[no-any-return]
        where,
        Commitment,
        id=_identifier(table, where),
        resource=resource,
        quantity=doc.decimal(table["quantity"], doc.join(where, "quantity")),
        unit_price=doc.decimal(table["unit_price"], doc.join(where, "unit_price")),
        term_months=integer_at(table["term_months"], doc.join(where, "term_months")),
        start=instant_at(table["start"], doc.join(where, "start")),
        currency=Currency(currency),
    )


def _uptime(value: object, where: str, catalog: Catalog) -> dict[str, Decimal]:
    if value is None:
        return {}
    table = doc.table(value, where)
    uptime: dict[str, Decimal] = {}
    for service, percent in table.items():
        place = doc.join(where, str(service))
        if service not in catalog.services():
            raise CatalogError(
                place,
                f"unknown service {service!r}; expected one of: {', '.join(catalog.services())}",
            )
        number = doc.decimal(percent, place)
        if not Decimal(0) <= number <= Decimal(100):
            raise CatalogError(place, f"uptime is a percent between 0 and 100, got {number}")
        uptime[str(service)] = number
    return uptime


def read_period(value: object, where: str) -> Period:
    table = doc.table(value, where)
    doc.check_keys(table, where, required=("start", "end"), optional=(), what="a period")
    start = instant_at(table["start"], doc.join(where, "start"))
    end = instant_at(table["end"], doc.join(where, "end"))
    try:
        return Period(start, end)
    except SynorError as error:
        raise CatalogError(where, str(error)) from None


def read_oracle(value: object, where: str) -> Fraction | None:
    """``{synor_usd: "0.25"}``: USD per SYNOR, positive."""
    if value is None:
        return None
    table = doc.table(value, where)
    doc.check_keys(table, where, required=("synor_usd",), optional=(), what="an oracle")
    price = doc.decimal(table["synor_usd"], doc.join(where, "synor_usd"))
    if price <= 0:
        raise CatalogError(doc.join(where, "synor_usd"), f"must be positive, got {price}")
    return Fraction(price)
