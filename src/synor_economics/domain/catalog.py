"""The price book as domain values: resources, their meters, and effective-dated price rows.

A :class:`Catalog` is immutable and identified by ``version`` (a human label) and ``digest`` (the
sha256 of the document it was loaded from: its content identity, recorded on every invoice so
that an invoice can be re-rated with exactly the prices it was rated with).

**Which price applies to a period.** The price in effect at the *start* of a billing period applies
to the whole period: price changes take effect at period boundaries, as in Stripe. Rating calls
:meth:`Resource.price_at` with the period start. Pricing a period piecewise would need the usage
split at the change instant, which a gauge integral or a sum of late events cannot give back
exactly; one price per line is also what the invoice can show.

**Billable quantity.** Events arrive in the resource's *event unit*; prices are per *price unit*.
``divisor`` is the number of event units in one price unit (10**9 bytes per GB, 3600 core-seconds
per core-hour, 10**6 queries per 1M queries). A counter bills Σ quantities / divisor; a gauge bills
its time integral (unit·seconds) / (divisor · period_seconds), so a level held for the whole period
is that level of unit-months whatever the month's length (SPEC §3).
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from synor_economics.domain.errors import CatalogError, MoneyError
from synor_economics.domain.money import exact
from synor_economics.domain.pricing import (
    Currency,
    Graduated,
    Package,
    PerUnit,
    PricingModel,
    Volume,
)

RESOURCE_ID = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")
"""Lowercase dotted segments, at least two: the first is the service (``compute.gpu.rtx4090``)."""


class MeterKind(StrEnum):
    """How events become a period's quantity (SPEC §3)."""

    COUNTER = "counter"
    """The period's quantity is the sum of the event quantities in it."""

    GAUGE = "gauge"
    """Each event sets a level; the period's quantity is the level's time integral."""


def _require_utc(when: object, where: str) -> None:
    """Refuse a naive or non-UTC datetime: every instant in the price book is UTC (SPEC §2)."""
    if not isinstance(when, datetime):
        raise CatalogError(where, f"must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() != timedelta(0):
        raise CatalogError(where, f"must be a UTC datetime, got {when.isoformat()}")


@dataclass(frozen=True, slots=True)
class PriceRow:
    """A pricing model and the instant from which it is in effect."""

    effective_from: datetime
    model: PricingModel

    def __post_init__(self) -> None:
        _require_utc(self.effective_from, "effective_from")
        if not isinstance(self.model, PerUnit | Graduated | Volume | Package):
            raise CatalogError("model", f"must be a pricing model, not {self.model!r}")

    @property
    def currency(self) -> Currency:
        """The currency of the row's prices and minimum."""
        return self.model.currency


def _check_rows(prices: tuple[PriceRow, ...]) -> None:
    """Rows are non-empty and in strictly increasing ``effective_from`` order."""
    if not prices:
        raise CatalogError("prices", "must list at least one price row")
    for index, row in enumerate(prices):
        if not isinstance(row, PriceRow):
            raise CatalogError(f"prices[{index}]", f"must be a PriceRow, not {row!r}")
        if index == 0:
            continue
        before = prices[index - 1].effective_from
        if row.effective_from == before:
            raise CatalogError(
                f"prices[{index}].effective_from",
                f"duplicate effective_from {row.effective_from.isoformat()} "
                f"(same as prices[{index - 1}])",
            )
        if row.effective_from < before:
            raise CatalogError(
                f"prices[{index}].effective_from",
                f"rows must be in date order: {row.effective_from.isoformat()} is before "
                f"prices[{index - 1}] ({before.isoformat()})",
            )


@dataclass(frozen=True, slots=True)
class Resource:
    """A billable resource: its meter, units, and effective-dated price rows."""

    id: str
    meter: MeterKind
    event_unit: str
    price_unit: str
    divisor: int
    description: str
    allows_corrections: bool
    prices: tuple[PriceRow, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not RESOURCE_ID.match(self.id):
            raise CatalogError(
                "id", f"must be lowercase dotted segments like compute.cpu, got {self.id!r}"
            )
        if not isinstance(self.meter, MeterKind):
            raise CatalogError("meter", f"must be a MeterKind, not {self.meter!r}")
        self._check_fields()
        if self.meter is MeterKind.GAUGE and self.allows_corrections:
            raise CatalogError(
                "allows_corrections", "a gauge sets a level, and a level cannot be negative"
            )
        object.__setattr__(self, "prices", tuple(self.prices))
        _check_rows(self.prices)

    def _check_fields(self) -> None:
        for name in ("event_unit", "price_unit"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise CatalogError(name, f"must be a non-empty string, got {value!r}")
        if isinstance(self.divisor, bool) or not isinstance(self.divisor, int) or self.divisor <= 0:
            raise CatalogError("divisor", f"must be a positive integer, got {self.divisor!r}")
        if not isinstance(self.allows_corrections, bool):
            raise CatalogError(
                "allows_corrections", f"must be a bool, not {self.allows_corrections!r}"
            )

    @property
    def service(self) -> str:
        """The part of the id before the first dot: what discounts, SLAs and credits scope to."""
        return self.id.split(".", 1)[0]

    def price_at(self, when: datetime) -> PriceRow:
        """The row in effect at ``when``: the latest with ``effective_from <= when``.

        Rating passes the billing period's start (see the module docstring).
        """
        _require_utc(when, "when")
        starts = [row.effective_from for row in self.prices]
        index = bisect.bisect_right(starts, when)
        if index == 0:
            raise CatalogError(
                self.id,
                f"no price in effect at {when.isoformat()}; the first row starts "
                f"{starts[0].isoformat()}",
            )
        return self.prices[index - 1]

    def billable_quantity(self, raw: Fraction | Decimal, period_seconds: int | None) -> Fraction:
        """The period's quantity in price units, exact.

        ``raw`` is, for a counter, Σ event quantities (event units); for a gauge, ∫level dt in
        event-unit·seconds, which is divided by the period's length too. A negative ``raw`` is
        refused unless the resource allows corrections: it would mean an ingest bug upstream.
        """
        if isinstance(raw, Decimal) and raw.is_finite():
            numerator, denominator = raw.as_integer_ratio()  # exact, and faster than Fraction()
        else:
            amount = exact(raw, what="raw quantity")
            numerator, denominator = amount.numerator, amount.denominator
        if numerator < 0 and not self.allows_corrections:
            raise MoneyError(f"{self.id} does not allow corrections, but its raw quantity is {raw}")
        if self.meter is MeterKind.COUNTER:
            return Fraction(numerator, denominator * self.divisor)
        if isinstance(period_seconds, bool) or not isinstance(period_seconds, int):
            raise MoneyError(f"{self.id} is a gauge: period_seconds must be an int")
        if period_seconds <= 0:
            raise MoneyError(f"period_seconds must be positive, got {period_seconds}")
        return Fraction(numerator, denominator * self.divisor * period_seconds)


@dataclass(frozen=True, slots=True)
class Catalog:
    """A versioned price book: resources by id, read-only, iterated in id order."""

    version: str
    digest: str
    resources: Mapping[str, Resource]
    reserved: Mapping[int, Decimal] = field(default_factory=dict)
    """Percent off the on-demand price for reserved capacity, by term in months (1, 3, 12):
    what ``synor cost estimate`` offers as the reserved alternatives."""

    def __post_init__(self) -> None:
        for months, percent in self.reserved.items():
            if months not in (1, 3, 12):
                raise CatalogError(f"reserved.{months}", "a term is 1, 3 or 12 months")
            if not isinstance(percent, Decimal) or not Decimal(0) <= percent < Decimal(100):
                raise CatalogError(
                    f"reserved.{months}", f"must be a percent from 0 to below 100, not {percent}"
                )
        for key, resource in self.resources.items():
            if not isinstance(resource, Resource) or resource.id != key:
                raise CatalogError(key, f"is keyed to a resource with another id: {resource!r}")
        ordered = {key: self.resources[key] for key in sorted(self.resources)}
        object.__setattr__(self, "resources", MappingProxyType(ordered))

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources.values())

    def __len__(self) -> int:
        return len(self.resources)

    def __contains__(self, resource_id: object) -> bool:
        return resource_id in self.resources

    @property
    def gauge_ids(self) -> frozenset[str]:
        """The ids of the gauge resources (how ingestion tells gauges from counters)."""
        return frozenset(
            key for key, resource in self.resources.items() if resource.meter is MeterKind.GAUGE
        )

    @property
    def counter_ids(self) -> frozenset[str]:
        """The ids of the counter resources (those the columnar intake path takes)."""
        return frozenset(self.resources) - self.gauge_ids

    def resource(self, resource_id: str) -> Resource:
        """The resource with this id; an unknown id is an error that suggests close ones."""
        found = self.resources.get(resource_id)
        if found is None:
            close = difflib.get_close_matches(resource_id, list(self.resources), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CatalogError(resource_id, f"unknown resource in catalog {self.version}{hint}")
        return found

    def services(self) -> tuple[str, ...]:
        """The services the resources belong to, sorted, each once."""
        return tuple(sorted({resource.service for resource in self}))

    def with_rows(self, overrides: Mapping[str, PriceRow]) -> Catalog:
        """A catalog where each overridden resource has exactly the given row (SPEC §10).

        The version is kept (it names the book the prices derive from); the digest changes, because
        the content changed: it is the sha256 of the base digest and the overrides, so the same
        overrides of the same book always give the same identity.
        """
        resources = dict(self.resources)
        for resource_id, row in overrides.items():
            resources[resource_id] = replace(self.resource(resource_id), prices=(row,))
        digest = _overridden_digest(self.digest, overrides)
        return Catalog(self.version, digest, resources, self.reserved)


def _overridden_digest(base: str, overrides: Mapping[str, PriceRow]) -> str:
    """The content identity of a book with overrides: stable for equal overrides in any order.

    ``repr`` of the frozen rows is deterministic (Decimal, datetime and Fraction reprs are exact).
    """
    text = "\n".join([base, *(f"{key}={overrides[key]!r}" for key in sorted(overrides))])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
