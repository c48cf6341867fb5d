"""Pricing models of a price row (SPEC §4): what a quantity costs, exactly, before rounding.

A model turns a billable quantity (in the resource's price unit) into an exact amount in the row's
currency. Nothing here rounds: SPEC §1 rounds once per invoice line, so every model returns a
``Fraction`` and leaves rounding to the invoice. Quantities are ``Fraction`` because the quantities
they price are often non-terminating (core-seconds / 3600).

The four models:

- :class:`PerUnit`: quantity × unit_price. The only model that is linear, so the only one that
  prices a negative quantity (a period whose correction events outweigh its usage becomes a credit).
- :class:`Graduated`: each tier prices the part of the quantity that falls inside it.
- :class:`Volume`: the whole quantity at the unit price of the first tier with quantity <= up_to.
- :class:`Package`: ceil(quantity / package_size) × package_price.

Every model may carry a ``minimum`` charge (raised to when the quantity is positive) and a
``currency``. A tiered or package model refuses a negative quantity, because "the part of −5 in
the tier 0–100" has no meaning and guessing one would silently misprice a correction.

Construction validates the invariants (prices >= 0, tiers ordered and open-ended, ...) and raises
:class:`CatalogError` whose ``where`` is relative to the row (``tiers[1].up_to``), so the catalog
loader only has to prefix the place of the row in its document.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import ClassVar, NamedTuple, TypeAlias

from synor_economics.domain.errors import CatalogError, MoneyError
from synor_economics.domain.money import exact


class Currency(StrEnum):
    """The currency a price row is denominated in (SPEC §3: SYNOR, or USD as a pegged price)."""

    SYNOR = "SYNOR"
    USD = "USD"


def _require_decimal(value: object, where: str, *, positive: bool = False) -> None:
    """Refuse anything but a finite, non-negative ``Decimal`` (strictly positive if asked).

    Prices are ``Decimal`` because they are written as decimal strings in the price book; a float
    here means a caller skipped parsing, which is exactly the bug this check exists to stop.
    """
    if isinstance(value, float):
        raise CatalogError(where, f"must be an exact Decimal, not a float ({value!r})")
    if not isinstance(value, Decimal):
        raise CatalogError(where, f"must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise CatalogError(where, f"must be a finite number, not {value}")
    if positive and value <= 0:
        raise CatalogError(where, f"must be greater than zero, got {value}")
    if value < 0:
        raise CatalogError(where, f"must not be negative, got {value}")


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier of a graduated or volume model: quantities up to ``up_to`` (None: no bound)."""

    up_to: Decimal | None
    unit_price: Decimal

    def __post_init__(self) -> None:
        if self.up_to is not None:
            _require_decimal(self.up_to, "up_to", positive=True)
        _require_decimal(self.unit_price, "unit_price")

    def contains(self, quantity: Fraction) -> bool:
        """Whether ``quantity`` is at or below this tier's bound (the volume model's test)."""
        return self.up_to is None or quantity <= Fraction(self.up_to)


class TierPart(NamedTuple):
    """The share of a graduated quantity that one tier prices: shown as a sub-line on invoices."""

    tier: Tier
    quantity: Fraction
    amount: Fraction


@dataclass(frozen=True, slots=True, kw_only=True)
class _Model(ABC):
    """What every pricing model shares: the minimum charge, the currency, and quantity checks.

    Subclasses implement :meth:`_charge` for a checked quantity; :meth:`exact_amount` wraps it so
    the minimum and the refusal of floats live in one place.
    """

    name: ClassVar[str]
    minimum: Decimal | None = None
    currency: Currency = Currency.SYNOR

    def __post_init__(self) -> None:
        if self.minimum is not None:
            _require_decimal(self.minimum, "minimum")
        if not isinstance(self.currency, Currency):
            raise CatalogError("currency", f"must be a Currency, not {self.currency!r}")

    def exact_amount(self, quantity: Fraction) -> Fraction:
        """The exact charge for ``quantity`` price units, in :attr:`currency`, unrounded.

        The minimum applies only to a period with usage (quantity > 0): a period without usage
        costs nothing, and a credit (negative quantity) is never inflated to a minimum.
        """
        checked = exact(quantity, what="quantity")
        amount = self._charge(checked)
        if self.minimum is not None and checked > 0:
            return max(amount, Fraction(self.minimum))
        return amount

    @abstractmethod
    def _charge(self, quantity: Fraction) -> Fraction:
        """The model's own charge for an exact quantity, before the minimum."""

    def _refuse_negative(self, quantity: Fraction) -> None:
        if quantity < 0:
            raise MoneyError(
                f"a {self.name} price cannot rate a negative quantity ({quantity}); only "
                "per_unit rows price corrections below zero"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class PerUnit(_Model):
    """quantity × unit_price: linear, so negative quantities (net corrections) price as credits."""

    name: ClassVar[str] = "per_unit"
    unit_price: Decimal
    _price: Fraction = field(init=False, repr=False, compare=False, default=Fraction(0))
    """``unit_price`` as a Fraction, converted once (Decimal → Fraction costs microseconds)."""

    def __post_init__(self) -> None:
        super(PerUnit, self).__post_init__()  # explicit: slots break bare super()
        _require_decimal(self.unit_price, "unit_price")
        object.__setattr__(self, "_price", Fraction(self.unit_price))

    def _charge(self, quantity: Fraction) -> Fraction:
        return quantity * self._price


def _check_tiers(tiers: tuple[Tier, ...]) -> None:
    """Tiers are non-empty, bounded by strictly increasing ``up_to``, and the last is open-ended."""
    if not tiers:
        raise CatalogError("tiers", "must list at least one tier")
    previous: Decimal | None = None
    for index, tier in enumerate(tiers):
        if not isinstance(tier, Tier):
            raise CatalogError(f"tiers[{index}]", f"must be a Tier, not {type(tier).__name__}")
        last = index == len(tiers) - 1
        if tier.up_to is None and not last:
            raise CatalogError(f"tiers[{index}].up_to", "only the last tier may be open-ended")
        if tier.up_to is not None and last:
            raise CatalogError(
                f"tiers[{index}].up_to", "the last tier must be open-ended (no up_to)"
            )
        if tier.up_to is not None and previous is not None and tier.up_to <= previous:
            raise CatalogError(
                f"tiers[{index}].up_to",
                f"must be greater than the previous tier's up_to ({previous}), got {tier.up_to}",
            )
        previous = tier.up_to


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tiered(_Model):
    """A model priced by tiers; the tiers are validated once, here."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        super(_Tiered, self).__post_init__()  # explicit: slots break bare super()
        object.__setattr__(self, "tiers", tuple(self.tiers))
        _check_tiers(self.tiers)


@dataclass(frozen=True, slots=True, kw_only=True)
class Graduated(_Tiered):
    """Each tier prices the part of the quantity inside it; a free allowance is a 0-priced tier."""

    name: ClassVar[str] = "graduated"

    def tier_parts(self, quantity: Fraction) -> list[TierPart]:
        """The tiers the quantity reaches, each with its part of the quantity and its amount.

        ``exact_amount(q) == max(sum(p.amount for p in tier_parts(q)), minimum)`` for q > 0, so an
        invoice can show the tiers as sub-lines and the minimum as the difference.
        """
        checked = exact(quantity, what="quantity")
        self._refuse_negative(checked)
        parts: list[TierPart] = []
        floor = Fraction(0)
        for tier in self.tiers:
            if checked <= floor:
                break
            ceiling = checked if tier.up_to is None else min(checked, Fraction(tier.up_to))
            inside = ceiling - floor
            parts.append(TierPart(tier, inside, inside * Fraction(tier.unit_price)))
            floor = ceiling
        return parts

    def _charge(self, quantity: Fraction) -> Fraction:
        return sum((part.amount for part in self.tier_parts(quantity)), Fraction(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume(_Tiered):
    """The whole quantity at the unit price of the tier it falls in (quantity <= up_to, first)."""

    name: ClassVar[str] = "volume"

    def tier_for(self, quantity: Fraction) -> Tier:
        """The tier whose price applies to the whole of ``quantity``: the boundary is inclusive."""
        checked = exact(quantity, what="quantity")
        self._refuse_negative(checked)
        return next(tier for tier in self.tiers if tier.contains(checked))

    def _charge(self, quantity: Fraction) -> Fraction:
        return quantity * Fraction(self.tier_for(quantity).unit_price)


@dataclass(frozen=True, slots=True, kw_only=True)
class Package(_Model):
    """ceil(quantity / package_size) × package_price: usage is sold in whole packages."""

    name: ClassVar[str] = "package"
    package_size: Decimal
    package_price: Decimal

    def __post_init__(self) -> None:
        super(Package, self).__post_init__()  # explicit: slots break bare super()
        _require_decimal(self.package_size, "package_size", positive=True)
        _require_decimal(self.package_price, "package_price")

    def packages(self, quantity: Fraction) -> int:
        """How many packages ``quantity`` needs: a started package is a whole package."""
        checked = exact(quantity, what="quantity")
        self._refuse_negative(checked)
        return math.ceil(checked / Fraction(self.package_size))

    def _charge(self, quantity: Fraction) -> Fraction:
        return self.packages(quantity) * Fraction(self.package_price)


PricingModel: TypeAlias = PerUnit | Graduated | Volume | Package
"""Any pricing model of SPEC §4; ``match`` on it to handle each model explicitly."""

MODEL_NAMES: tuple[str, ...] = tuple(model.name for model in (PerUnit, Graduated, Volume, Package))
"""The model names a price row may use, as written in the price book."""
