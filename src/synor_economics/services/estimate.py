"""Cost estimates (SPEC §11): what a period's usage would cost, on demand and reserved.

An estimate is an invoice for one account with that usage and no other terms, rated by
:func:`synor_economics.domain.invoice.rate` (so it equals that invoice to the base unit), plus
the same usage under a reserved commitment for each term the price book offers: a commitment of
exactly the estimated quantity of every priced resource, at the on-demand price less the term's
discount (SPEC §4). Where the on-demand row is tiered, the reserved unit price is the line's
average on-demand price less the discount, so a reserved line never costs more than on demand.

Quantities are in price units (GB-month, core-hours, 1M queries, ...); a gauge's quantity is
taken as held for the whole period (SPEC §11).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from synor_economics.catalog import fields as doc
from synor_economics.domain.catalog import Catalog
from synor_economics.domain.errors import CatalogError, SynorError
from synor_economics.domain.invoice import Rated, Terms, rate
from synor_economics.domain.money import decimal_text
from synor_economics.domain.period import Period
from synor_economics.domain.terms import Commitment
from synor_economics.services.terms_input import DocumentError, read_oracle, read_period

_SUFFIX = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_AMOUNT = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kKmMbBgGtT]?)")


@dataclass(frozen=True, slots=True)
class Alternative:
    """The usage rated under one pricing option."""

    name: str
    """``on-demand`` or ``reserved 12 months``."""
    term_months: int | None
    rated: Rated


@dataclass(frozen=True, slots=True)
class Estimate:
    period: Period
    rate: Fraction | None
    quantities: Mapping[str, Fraction]
    on_demand: Rated
    reserved: tuple[Alternative, ...]

    @property
    def alternatives(self) -> tuple[Alternative, ...]:
        return (Alternative("on-demand", None, self.on_demand), *self.reserved)


def natural_quantity(text: str, what: str) -> Fraction:
    """``"30M"`` → 30,000,000; ``"1.5k"`` → 1,500; ``"720"`` → 720. Exact, never negative."""
    match = _AMOUNT.fullmatch(text.strip().replace("_", "").replace(",", ""))
    if match is None:
        raise DocumentError(
            f"{what}: {text!r} is not a quantity; write a decimal number, optionally with "
            "K, M, B or T (thousand, million, billion, trillion), e.g. 30M"
        )
    return Fraction(Decimal(match[1])) * _SUFFIX.get(match[2].lower(), 1)


def current_period(now: datetime | None = None) -> Period:
    """The calendar month (UTC) containing ``now``: the default period of an estimate."""
    return Period.containing(now or datetime.now(UTC))


def read_estimate_file(
    document: Any, catalog: Catalog, now: datetime | None = None
) -> tuple[dict[str, Fraction], Period, Fraction | None]:
    """An estimate file (SPEC §11): resource id → quantity in price units, plus optional
    ``period`` and ``oracle``."""
    try:
        table = doc.table(document, "file")
        period = read_period(table["period"], "period") if "period" in table else None
        usd_rate = read_oracle(table.get("oracle"), "oracle")
        quantities: dict[str, Fraction] = {}
        for key, value in table.items():
            if key in ("period", "oracle"):
                continue
            with doc.inside(str(key)):
                catalog.resource(str(key))
            quantity = doc.decimal(value, str(key))
            if quantity < 0:
                raise CatalogError(str(key), f"must not be negative, got {quantity}")
            quantities[str(key)] = Fraction(quantity)
    except CatalogError as error:
        raise DocumentError(str(error)) from None
    return quantities, period or current_period(now), usd_rate


def estimate(
    catalog: Catalog,
    quantities: Mapping[str, Fraction],
    period: Period,
    usd_rate: Fraction | None,
) -> Estimate:
    """Rate the usage on demand, and under each reserved term of the price book."""
    for resource_id in quantities:
        catalog.resource(resource_id)  # an unknown id fails here, with a suggestion
    used = {r: q for r, q in quantities.items() if q != 0}
    try:
        on_demand = rate(catalog, period, used, Terms(), rate=usd_rate)
        reserved = tuple(
            Alternative(
                f"reserved {months} month{'s' if months > 1 else ''}",
                months,
                rate(
                    catalog,
                    period,
                    used,
                    _reserved_terms(on_demand, months, percent, period),
                    rate=usd_rate,
                ),
            )
            for months, percent in catalog.reserved.items()
        )
    except SynorError as error:
        raise DocumentError(str(error)) from None
    return Estimate(period, usd_rate, dict(used), on_demand, reserved)


def _reserved_terms(on_demand: Rated, months: int, percent: Decimal, period: Period) -> Terms:
    """A commitment per priced line: its quantity at its average price less ``percent``, the
    price rounded HALF_EVEN to 18 decimals (an offer is a price one can write down)."""
    keep = 1 - Fraction(percent) / 100
    commitments = []
    for line in on_demand.lines:
        if line.quantity <= 0 or line.native <= 0:
            continue
        average = line.native / line.quantity * keep
        commitments.append(
            Commitment(
                id=f"reserved-{months}m-{line.resource}",
                resource=line.resource,
                quantity=Decimal(decimal_text(line.quantity)),
                unit_price=Decimal(decimal_text(average)),
                term_months=months,
                start=period.start,
                currency=line.currency,
            )
        )
    return Terms(commitments=tuple(commitments))
