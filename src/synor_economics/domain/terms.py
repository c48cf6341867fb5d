"""An account's commercial terms for rating (SPEC §4–§6): discounts, reserved commitments, SLA
schedules and credit grants, with the scope they apply to.

These are plain values; :mod:`synor_economics.domain.invoice` applies them. Every amount is exact:
percentages and prices are ``Decimal``, fixed amounts and grants are ``int`` base units.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from synor_economics.domain.errors import SynorError
from synor_economics.domain.period import Period, add_months, require_utc
from synor_economics.domain.pricing import Currency


class TermsError(SynorError, ValueError):
    """Terms that cannot be applied (a percent above 100, a term of 5 months, ...)."""


def _check_decimal(value: object, what: str, *, upper: Decimal | None = None) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TermsError(f"{what} must be an exact decimal, not {value!r}")
    if value < 0 or (upper is not None and value > upper):
        bound = f"between 0 and {upper}" if upper is not None else "at least 0"
        raise TermsError(f"{what} must be {bound}, got {value}")
    return value


def _check_units(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TermsError(f"{what} must be a non-negative int of base units, not {value!r}")
    return value


def service_of(resource_id: str) -> str:
    """A resource's service: the part of its id before the first dot (SPEC §4)."""
    return resource_id.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Scope:
    """What a discount or grant applies to: one service, or one resource (never both)."""

    service: str | None = None
    resource: str | None = None

    def __post_init__(self) -> None:
        if (self.service is None) == (self.resource is None):
            raise TermsError("a scope names exactly one of service or resource")

    def covers(self, resource_id: str) -> bool:
        if self.resource is not None:
            return resource_id == self.resource
        return service_of(resource_id) == self.service

    @property
    def label(self) -> str:
        return f"resource {self.resource}" if self.resource else f"service {self.service}"


def covers(scope: Scope | None, resource_id: str) -> bool:
    """Whether a scope (None: the whole invoice) covers a resource."""
    return scope is None or scope.covers(resource_id)


class DiscountKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Discount:
    """A percent or fixed discount (SPEC §4), applying to invoices whose period overlaps
    ``[start, end)``. A fixed discount's ``amount`` is base units."""

    id: str
    kind: DiscountKind
    percent: Decimal | None = None
    amount: int | None = None
    scope: Scope | None = None
    priority: int = 0
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind is DiscountKind.PERCENT:
            _check_decimal(self.percent, f"discount {self.id} percent", upper=Decimal(100))
            if self.amount is not None:
                raise TermsError(f"percent discount {self.id} takes a percent, not an amount")
        elif self.kind is DiscountKind.FIXED:
            _check_units(self.amount, f"discount {self.id} amount")
            if self.percent is not None:
                raise TermsError(f"fixed discount {self.id} takes an amount, not a percent")
        else:
            raise TermsError(f"discount kind must be percent or fixed, not {self.kind!r}")
        _check_window(self.start, self.end, f"discount {self.id}")

    def applies_to(self, period: Period) -> bool:
        return period.overlaps(self.start, self.end)

    @property
    def order(self) -> tuple[int, str]:
        """Discounts of one kind apply by ascending priority, then id (SPEC §4)."""
        return (self.priority, self.id)


def _check_window(start: datetime | None, end: datetime | None, what: str) -> None:
    if start is not None:
        require_utc(start, f"{what} start")
    if end is not None:
        require_utc(end, f"{what} end")
    if start is not None and end is not None and end <= start:
        raise TermsError(f"{what}: end must be after start")


TERM_MONTHS = (1, 3, 12)


@dataclass(frozen=True, slots=True)
class Commitment:
    """Reserved capacity (SPEC §4): ``quantity`` price units of ``resource`` per period at
    ``unit_price``, for ``term_months`` from ``start``; billed whether used or not."""

    id: str
    resource: str
    quantity: Decimal
    unit_price: Decimal
    term_months: int
    start: datetime
    currency: Currency = Currency.SYNOR

    def __post_init__(self) -> None:
        _check_decimal(self.quantity, f"commitment {self.id} quantity")
        _check_decimal(self.unit_price, f"commitment {self.id} unit_price")
        if self.term_months not in TERM_MONTHS:
            raise TermsError(
                f"commitment {self.id} term must be 1, 3 or 12 months, got {self.term_months!r}"
            )
        require_utc(self.start, f"commitment {self.id} start")

    @property
    def end(self) -> datetime:
        return add_months(self.start, self.term_months)

    def active_in(self, period: Period) -> bool:
        """A commitment bills every period that starts inside its term."""
        return self.start <= period.start < self.end


@dataclass(frozen=True, slots=True)
class SlaStep:
    """Uptime below ``below`` percent earns ``percent`` of the service's charges back."""

    below: Decimal
    percent: Decimal


DEFAULT_SLA = (
    SlaStep(Decimal("99.9"), Decimal(10)),
    SlaStep(Decimal("99.0"), Decimal(25)),
    SlaStep(Decimal("95.0"), Decimal(100)),
)
"""SPEC §6's default schedule."""


def sla_percent(uptime: Decimal, schedule: tuple[SlaStep, ...] = DEFAULT_SLA) -> Decimal:
    """The credit percentage for an uptime: the lowest threshold crossed decides (SPEC §6)."""
    _check_decimal(uptime, "uptime", upper=Decimal(100))
    crossed = [step for step in schedule if uptime < step.below]
    return min(crossed, key=lambda step: step.below).percent if crossed else Decimal(0)


@dataclass(frozen=True, slots=True)
class CreditGrant:
    """A credit grant (SPEC §5). ``remaining`` is what is left of ``amount`` before this
    invoice; ``created`` orders grants of equal priority and expiry (older first)."""

    id: str
    amount: int
    remaining: int
    priority: int = 0
    expires_at: datetime | None = None
    scope: Scope | None = None
    created: int = 0

    def __post_init__(self) -> None:
        _check_units(self.amount, f"grant {self.id} amount")
        _check_units(self.remaining, f"grant {self.id} remaining")
        if self.remaining > self.amount:
            raise TermsError(f"grant {self.id} cannot have more left than it granted")
        if self.expires_at is not None:
            require_utc(self.expires_at, f"grant {self.id} expires_at")

    def usable_for(self, period: Period) -> bool:
        """A grant pays invoices whose period ends no later than its expiry (SPEC §5)."""
        return self.remaining > 0 and (self.expires_at is None or period.end <= self.expires_at)

    @property
    def order(self) -> tuple[int, int, datetime | None, int]:
        """Ascending priority, then earliest expiry (none last), then oldest."""
        never = self.expires_at is None
        return (self.priority, int(never), self.expires_at, self.created)
