"""Rating: one account's usage for one period turned into an invoice (SPEC §1, §4–§6).

:func:`rate` is the one function every face uses: the invoice run, the simulator, the cost
estimate and the invoice preview. Same usage, catalog, terms and rate in, same invoice out, to the
base unit; nothing here reads a clock or storage.

The order of work, and where it rounds (once per line, HALF_EVEN, SPEC §1):

1. **Usage lines**: per resource, the billable quantity priced by the row in effect at the period
   start; a USD row is converted at the locked rate (USD price ÷ USD per SYNOR). With a
   reserved commitment the resource gets a *commitment* line (committed quantity × committed
   price, used or not) and, above the commitment, an *overage* line rated by the on-demand row.
2. **Percent discounts**, ascending priority then id: per line in scope, a negative line of the
   line's exact amount less the percent discounts before it, × percent.
3. **SLA credits**: per service whose uptime fell below the schedule, a negative line of the
   percentage of the exact sum of that service's lines less their percent discounts.
4. **Fixed discounts**, ascending priority then id: capped so the subtotal never goes below zero
   (and a scoped one to what is left of its scope).
5. **Credit grants** by ascending priority, earliest expiry (none last), oldest; each pays at most
   what is left of its scope (see :func:`_apply_grants`) and of the invoice.
6. **Prepaid balance** pays what remains; the rest is **due**.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from synor_economics.domain.catalog import Catalog, PriceRow, Resource
from synor_economics.domain.errors import MoneyError
from synor_economics.domain.money import BASE, exact, round_half_even, round_ratio
from synor_economics.domain.period import Period
from synor_economics.domain.pricing import (
    Currency,
    Graduated,
    Package,
    PerUnit,
    PricingModel,
    Volume,
)
from synor_economics.domain.terms import (
    DEFAULT_SLA,
    Commitment,
    CreditGrant,
    Discount,
    DiscountKind,
    Scope,
    SlaStep,
    covers,
    service_of,
    sla_percent,
)


class LineKind(StrEnum):
    USAGE = "usage"
    COMMITMENT = "commitment"
    OVERAGE = "overage"


@dataclass(frozen=True, slots=True)
class TierCharge:
    """One tier's part of a graduated line (or the single tier of a volume line)."""

    up_to: Decimal | None
    unit_price: Decimal
    quantity: Fraction
    amount: Fraction
    """Exact, in the row's currency."""


@dataclass(frozen=True, slots=True)
class Line:
    """A charge for one resource: exact amounts, and ``amount``, the one rounding, in base units."""

    resource: str
    kind: LineKind
    quantity: Fraction
    """Billable quantity in the price unit."""
    unit: str
    model: str
    currency: Currency
    unit_price: Decimal | None
    """The price per unit where one price applies (per_unit, volume, commitment)."""
    tiers: tuple[TierCharge, ...]
    packages: int | None
    minimum_applied: bool
    native: Fraction
    """Exact amount in ``currency``."""
    exact: Fraction
    """Exact amount in SYNOR."""
    amount: int

    @property
    def service(self) -> str:
        return service_of(self.resource)

    @property
    def key(self) -> str:
        """Unique within an invoice: the resource, and the kind when it is not plain usage."""
        return self.resource if self.kind is LineKind.USAGE else f"{self.resource}:{self.kind}"


class AdjustmentKind(StrEnum):
    PERCENT_DISCOUNT = "percent_discount"
    SLA_CREDIT = "sla_credit"
    LATE_USAGE = "late_usage"
    """Usage of an earlier, finalised period that arrived after its invoice (SPEC §7): the
    difference, per service, carried onto this invoice. It may be positive."""
    FIXED_DISCOUNT = "fixed_discount"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A line that is not usage: a discount or an SLA credit (``amount`` ≤ 0 base units), or
    late usage carried from an earlier invoice (either sign; ``line`` holds its service)."""

    kind: AdjustmentKind
    source: str
    """The discount id, or the service an SLA credit is for."""
    line: str | None
    """The line key a percent discount reduces (None for SLA credits and fixed discounts)."""
    percent: Decimal | None
    exact: Fraction
    amount: int


@dataclass(frozen=True, slots=True)
class CreditUse:
    grant: str
    amount: int


@dataclass(frozen=True, slots=True)
class Terms:
    """An account's terms for one period: what :func:`rate` applies besides the price book."""

    discounts: tuple[Discount, ...] = ()
    commitments: tuple[Commitment, ...] = ()
    uptime: Mapping[str, Decimal] = field(default_factory=dict)
    """Percent uptime per service over the period; a service not listed met its SLA."""
    sla: tuple[SlaStep, ...] = DEFAULT_SLA
    grants: tuple[CreditGrant, ...] = ()
    prepaid: int = 0
    carried: tuple[Carried, ...] = ()
    """Late usage of earlier invoices, to be billed on this one."""


@dataclass(frozen=True, slots=True)
class Carried:
    """What an earlier invoice (``source``) under-billed (positive) or over-billed (negative)
    for one service, because usage arrived after it was finalised."""

    source: str
    service: str
    amount: int


def service_totals(lines: Sequence[Line], adjustments: Sequence[Adjustment]) -> dict[str, int]:
    """Per service: its lines with their percent discounts, its SLA credit and late usage
    carried onto it; what late usage is measured against."""
    totals: dict[str, int] = {}
    services = {line.key: line.service for line in lines}
    for line in lines:
        totals[line.service] = totals.get(line.service, 0) + line.amount
    for a in adjustments:
        if a.kind is AdjustmentKind.PERCENT_DISCOUNT and a.line is not None:
            service = services[a.line]
        elif a.kind is AdjustmentKind.SLA_CREDIT:
            service = a.source
        elif a.kind is AdjustmentKind.LATE_USAGE and a.line is not None:
            service = a.line
        else:
            continue
        totals[service] = totals.get(service, 0) + a.amount
    return totals


@dataclass(frozen=True, slots=True)
class Rated:
    """A rated invoice: the lines, the adjustments, and how it is paid."""

    period: Period
    rate: Fraction | None
    """USD per SYNOR the USD prices were converted at (None: no USD price was needed)."""
    lines: tuple[Line, ...]
    adjustments: tuple[Adjustment, ...]
    subtotal: int
    credits: tuple[CreditUse, ...]
    prepaid_applied: int
    total_due: int

    @property
    def charges(self) -> int:
        return sum(line.amount for line in self.lines)

    def adjustment_total(self, *kinds: AdjustmentKind) -> int:
        return sum(a.amount for a in self.adjustments if a.kind in kinds)

    @property
    def discounts(self) -> int:
        """Percent and fixed discount lines together (≤ 0), as SPEC §10 reports them."""
        return self.adjustment_total(AdjustmentKind.PERCENT_DISCOUNT, AdjustmentKind.FIXED_DISCOUNT)

    @property
    def sla_credits(self) -> int:
        return self.adjustment_total(AdjustmentKind.SLA_CREDIT)

    @property
    def late_usage(self) -> int:
        return self.adjustment_total(AdjustmentKind.LATE_USAGE)

    @property
    def credits_applied(self) -> int:
        return sum(use.amount for use in self.credits)


def rate(
    catalog: Catalog,
    period: Period,
    quantities: Mapping[str, Fraction],
    terms: Terms,
    *,
    rate: Fraction | None = None,
) -> Rated:
    """Rate an account's billable quantities (price units, per resource) for a period."""
    lines = usage_lines(catalog, period, quantities, terms.commitments, rate)
    percent = _percent_discounts(lines, terms.discounts, period)
    sla = _sla_credits(lines, percent, terms)
    late = tuple(
        Adjustment(
            AdjustmentKind.LATE_USAGE, c.source, c.service, None, Fraction(c.amount, BASE), c.amount
        )
        for c in terms.carried
        if c.amount != 0
    )
    earlier = (*percent, *sla, *late)
    running = sum(line.amount for line in lines) + sum(a.amount for a in earlier)
    fixed = _fixed_discounts(lines, earlier, terms.discounts, period, running)
    adjustments = (*earlier, *fixed)
    subtotal = max(0, running + sum(a.amount for a in fixed))
    credits = _apply_grants(lines, adjustments, subtotal, terms.grants, period)
    left = subtotal - sum(use.amount for use in credits)
    prepaid = min(max(terms.prepaid, 0), left)
    return Rated(
        period=period,
        rate=rate if any(line.currency is Currency.USD for line in lines) else None,
        lines=lines,
        adjustments=adjustments,
        subtotal=subtotal,
        credits=credits,
        prepaid_applied=prepaid,
        total_due=left - prepaid,
    )


# -- 1. usage lines ------------------------------------------------------------------------


def usage_lines(
    catalog: Catalog,
    period: Period,
    quantities: Mapping[str, Fraction],
    commitments: Iterable[Commitment],
    usd_rate: Fraction | None,
) -> tuple[Line, ...]:
    """One line per resource with usage, plus commitment and overage lines, in resource order.

    A resource with a zero quantity and no commitment has no line; a free resource with usage
    has a line of amount 0 (SPEC §10).
    """
    active = {c.resource: c for c in commitments if c.active_in(period)}
    lines: list[Line] = []
    for resource_id in sorted(set(quantities) | set(active)):
        resource = catalog.resource(resource_id)
        quantity = exact(quantities.get(resource_id, Fraction(0)), what=resource_id)
        row = _row_at(resource, period.start)
        commitment = active.get(resource_id)
        if commitment is None:
            if quantity != 0:
                lines.append(_priced_line(resource, row, quantity, LineKind.USAGE, usd_rate))
            continue
        lines.append(_commitment_line(resource, commitment, usd_rate))
        overage = quantity - Fraction(commitment.quantity)
        if overage > 0:
            lines.append(_priced_line(resource, row, overage, LineKind.OVERAGE, usd_rate))
    return tuple(lines)


_ROWS: dict[tuple[int, datetime], tuple[Resource, PriceRow]] = {}
"""Price rows by (resource object, period start): a close rates thousands of invoices of one
period against one book. The resource is kept in the value so its id cannot be reused."""


def _row_at(resource: Resource, start: datetime) -> PriceRow:
    key = (id(resource), start)
    found = _ROWS.get(key)
    if found is None or found[0] is not resource:
        if len(_ROWS) > 10_000:
            _ROWS.clear()
        found = _ROWS[key] = (resource, resource.price_at(start))
    return found[1]


def to_synor(native: Fraction, currency: Currency, usd_rate: Fraction | None) -> Fraction:
    """An exact amount in SYNOR: a USD amount ÷ the rate (USD per SYNOR, SPEC §10)."""
    if currency is Currency.SYNOR:
        return native
    if usd_rate is None:
        raise MoneyError("a USD price needs an oracle rate (USD per SYNOR) to convert at")
    if usd_rate <= 0:
        raise MoneyError(f"the USD per SYNOR rate must be positive, got {usd_rate}")
    return native / usd_rate


@dataclass(frozen=True, slots=True)
class _Pricing:
    """How a line was priced, before it is converted to SYNOR and rounded."""

    model: str
    currency: Currency
    native: Fraction
    unit_price: Decimal | None = None
    tiers: tuple[TierCharge, ...] = ()
    packages: int | None = None
    minimum_applied: bool = False


def _line(
    resource: Resource,
    kind: LineKind,
    quantity: Fraction,
    pricing: _Pricing,
    usd_rate: Fraction | None,
) -> Line:
    """The line, in SYNOR exactly, and its amount: the one rounding (SPEC §1)."""
    synor = to_synor(pricing.native, pricing.currency, usd_rate)
    return Line(
        resource=resource.id,
        kind=kind,
        quantity=quantity,
        unit=resource.price_unit,
        model=pricing.model,
        currency=pricing.currency,
        unit_price=pricing.unit_price,
        tiers=pricing.tiers,
        packages=pricing.packages,
        minimum_applied=pricing.minimum_applied,
        native=pricing.native,
        exact=synor,
        amount=round_ratio(synor.numerator * BASE, synor.denominator),
    )


def _priced_line(
    resource: Resource, row: PriceRow, quantity: Fraction, kind: LineKind, usd_rate: Fraction | None
) -> Line:
    """A line priced by a row's model. A negative quantity (corrections outweighing usage)
    prices linearly under per_unit; the other models cannot price it (see ``_negative``)."""
    model = row.model
    if quantity < 0 and not isinstance(model, PerUnit):
        return _negative(resource, row, quantity, kind, usd_rate)
    return _line(resource, kind, quantity, _pricing(model, quantity), usd_rate)


def _pricing(model: PricingModel, quantity: Fraction) -> _Pricing:
    """What the model charges for the quantity, with the detail an invoice shows."""
    native = model.exact_amount(quantity)
    minimum = model.minimum is not None and quantity > 0 and native == Fraction(model.minimum)
    name, currency = model.name, model.currency
    if isinstance(model, PerUnit):
        return _Pricing(name, currency, native, model.unit_price, minimum_applied=minimum)
    if isinstance(model, Graduated):
        parts = tuple(
            TierCharge(p.tier.up_to, p.tier.unit_price, p.quantity, p.amount)
            for p in model.tier_parts(quantity)
        )
        return _Pricing(name, currency, native, tiers=parts, minimum_applied=minimum)
    if isinstance(model, Volume):
        tier = model.tier_for(quantity)
        part = TierCharge(
            tier.up_to, tier.unit_price, quantity, quantity * Fraction(tier.unit_price)
        )
        return _Pricing(
            name, currency, native, tier.unit_price, tiers=(part,), minimum_applied=minimum
        )
    assert isinstance(model, Package)
    return _Pricing(
        name, currency, native, model.package_price, packages=model.packages(quantity),
        minimum_applied=minimum,
    )  # fmt: skip


def _negative(
    resource: Resource, row: PriceRow, quantity: Fraction, kind: LineKind, usd_rate: Fraction | None
) -> Line:
    """A net-negative quantity under a tiered or package row is billed as 0 for the period.

    "The part of −5 in tier 0–100" has no meaning, and any guess would misprice. The quantity is
    still shown, so the bill is checkable; the over-count it corrects was billed in an earlier,
    finalised period and is refunded there by a credit note (docs/decisions.md).
    """
    model: PricingModel = row.model
    return _line(
        resource, kind, quantity, _Pricing(model.name, model.currency, Fraction(0)), usd_rate
    )


def _commitment_line(resource: Resource, commitment: Commitment, usd_rate: Fraction | None) -> Line:
    quantity = Fraction(commitment.quantity)
    pricing = _Pricing(
        "commitment",
        commitment.currency,
        quantity * Fraction(commitment.unit_price),
        unit_price=commitment.unit_price,
    )
    return _line(resource, LineKind.COMMITMENT, quantity, pricing, usd_rate)


# -- 2-4. discounts and SLA credits ----------------------------------------------------------


def _percent_discounts(
    lines: Sequence[Line], discounts: Iterable[Discount], period: Period
) -> tuple[Adjustment, ...]:
    """Percent discounts in order; each takes its percent of what earlier ones left of a line.

    Only lines with a positive exact amount are discounted: a credit line (net corrections) is
    not made larger by a discount."""
    chosen = sorted(
        (d for d in discounts if d.kind is DiscountKind.PERCENT and d.applies_to(period)),
        key=lambda d: d.order,
    )
    remaining = {line.key: line.exact for line in lines}
    out: list[Adjustment] = []
    for discount in chosen:
        assert discount.percent is not None
        share = Fraction(discount.percent) / 100
        for line in lines:
            left = remaining[line.key]
            if left <= 0 or not covers(discount.scope, line.resource):
                continue
            cut = left * share
            remaining[line.key] = left - cut
            out.append(
                Adjustment(
                    AdjustmentKind.PERCENT_DISCOUNT,
                    discount.id,
                    line.key,
                    discount.percent,
                    -cut,
                    -round_half_even(cut * BASE),
                )
            )
    return tuple(out)


def _net_exact(line: Line, percent: Iterable[Adjustment]) -> Fraction:
    """A line's exact amount less its exact percent discounts."""
    return line.exact + sum((a.exact for a in percent if a.line == line.key), Fraction(0))


def _sla_credits(
    lines: Sequence[Line], percent: Sequence[Adjustment], terms: Terms
) -> tuple[Adjustment, ...]:
    out: list[Adjustment] = []
    for service in sorted(terms.uptime):
        share = sla_percent(terms.uptime[service], terms.sla)
        if share == 0:
            continue
        base = sum(
            (_net_exact(line, percent) for line in lines if line.service == service), Fraction(0)
        )
        if base <= 0:
            continue
        cut = base * Fraction(share) / 100
        out.append(
            Adjustment(
                AdjustmentKind.SLA_CREDIT, service, None, share, -cut, -round_half_even(cut * BASE)
            )
        )
    return tuple(out)


def _scope_part(scope: Scope, lines: Sequence[Line], adjustments: Sequence[Adjustment]) -> int:
    """The in-scope part of an invoice (SPEC §5): the in-scope lines with their percent-discount
    lines, and for a service scope that service's SLA line and late usage. Never below zero."""
    keys = {line.key for line in lines if scope.covers(line.resource)}
    part = sum(line.amount for line in lines if line.key in keys)
    part += sum(a.amount for a in adjustments if a.line in keys)
    if scope.service is not None:
        part += sum(
            a.amount
            for a in adjustments
            if (a.kind is AdjustmentKind.SLA_CREDIT and a.source == scope.service)
            or (a.kind is AdjustmentKind.LATE_USAGE and a.line == scope.service)
        )
    return max(part, 0)


def _fixed_discounts(
    lines: Sequence[Line],
    earlier: Sequence[Adjustment],
    discounts: Iterable[Discount],
    period: Period,
    running: int,
) -> tuple[Adjustment, ...]:
    """Fixed discounts after percent discounts and SLA credits, each capped so the subtotal
    stays at or above zero; a scoped one also to what is left of its scope's part."""
    chosen = sorted(
        (d for d in discounts if d.kind is DiscountKind.FIXED and d.applies_to(period)),
        key=lambda d: d.order,
    )
    out: list[Adjustment] = []
    used: dict[Scope, int] = {}
    for discount in chosen:
        assert discount.amount is not None
        cap = max(running, 0)
        if discount.scope is not None:
            part = _scope_part(discount.scope, lines, earlier)
            cap = min(cap, part - used.get(discount.scope, 0))
        cut = max(min(discount.amount, cap), 0)
        if discount.scope is not None:
            used[discount.scope] = used.get(discount.scope, 0) + cut
        running -= cut
        out.append(
            Adjustment(AdjustmentKind.FIXED_DISCOUNT, discount.id, None, None, Fraction(-cut), -cut)
        )
    return tuple(out)


# -- 5. credit grants ----------------------------------------------------------------------


def _enclosing(scope: Scope | None) -> list[Scope | None]:
    """A scope and every scope around it: resource → its service → the whole invoice."""
    if scope is None:
        return [None]
    if scope.resource is not None:
        return [scope, Scope(service=service_of(scope.resource)), None]
    return [scope, None]


def _within(inner: Scope | None, outer: Scope | None) -> bool:
    """Whether everything ``inner`` covers, ``outer`` covers too."""
    if outer is None:
        return True
    if inner is None:
        return False
    if outer.resource is not None:
        return inner.resource == outer.resource
    if inner.resource is not None:
        return service_of(inner.resource) == outer.service
    return inner.service == outer.service


def _apply_grants(
    lines: Sequence[Line],
    adjustments: Sequence[Adjustment],
    subtotal: int,
    grants: Iterable[CreditGrant],
    period: Period,
) -> tuple[CreditUse, ...]:
    """Consume usable grants in order (SPEC §5).

    A grant pays at most: what is left of it; and, for its scope and every scope enclosing it
    (its service, the whole invoice), that scope's part less what grants scoped within it have
    already paid. The nesting makes this exact: a compute grant that paid the compute lines in
    full leaves nothing for a later ``compute.cpu`` grant, while an unscoped grant, which could
    have paid anything, limits later grants only through the invoice total.
    """
    paid: list[tuple[Scope | None, int]] = []
    uses: list[CreditUse] = []
    for grant in sorted((g for g in grants if g.usable_for(period)), key=lambda g: g.order):
        cap = grant.remaining
        for scope in _enclosing(grant.scope):
            part = subtotal if scope is None else _scope_part(scope, lines, adjustments)
            already = sum(amount for inner, amount in paid if _within(inner, scope))
            cap = min(cap, part - already)
        if cap <= 0:
            continue
        paid.append((grant.scope, cap))
        uses.append(CreditUse(grant.id, cap))
    return tuple(uses)
