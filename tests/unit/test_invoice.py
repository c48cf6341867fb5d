"""Rating (domain/invoice.py): each rule on a small case worked by hand, and the invariants that
must hold for any usage and terms (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synor_economics.catalog import load_default_catalog
from synor_economics.domain.catalog import Catalog, PriceRow
from synor_economics.domain.errors import MoneyError
from synor_economics.domain.invoice import AdjustmentKind, LineKind, Rated, Terms, rate
from synor_economics.domain.ledger import Side
from synor_economics.domain.period import Period
from synor_economics.domain.postings import credits as credits_account
from synor_economics.domain.postings import invoice_transfer, prepaid, receivable
from synor_economics.domain.pricing import Currency, Graduated, Package, PerUnit, Tier, Volume
from synor_economics.domain.terms import (
    Commitment,
    CreditGrant,
    Discount,
    DiscountKind,
    Scope,
    TermsError,
    sla_percent,
)

SYNOR = 10**18
NOV = Period.month(2026, 11)
BOOK = load_default_catalog()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def units(text: str) -> int:
    return int(Decimal(text) * SYNOR)


def with_row(resource: str, model: object) -> Catalog:
    return BOOK.with_rows({resource: PriceRow(EPOCH, model)})  # type: ignore[arg-type]


def percent(id: str, pct: str, scope: Scope | None = None, priority: int = 0) -> Discount:
    return Discount(id, DiscountKind.PERCENT, percent=Decimal(pct), scope=scope, priority=priority)


def fixed(id: str, amount: str, priority: int = 0, scope: Scope | None = None) -> Discount:
    return Discount(id, DiscountKind.FIXED, amount=units(amount), priority=priority, scope=scope)


def grant(id: str, amount: str, **kw: object) -> CreditGrant:
    return CreditGrant(id, units(amount), units(amount), **kw)  # type: ignore[arg-type]


NO_TERMS = Terms()


def rated(quantities: dict[str, Fraction], terms: Terms = NO_TERMS, **kw: object) -> Rated:
    return rate(kw.pop("catalog", BOOK), NOV, quantities, terms, **kw)  # type: ignore[arg-type]


def test_per_unit_lines_round_once_half_even() -> None:
    # 1/3 core-hour × 0.02 = 0.00666… SYNOR = 6666666666666666.67 base units → …667
    invoice = rated({"compute.cpu": Fraction(1, 3)})
    assert invoice.lines[0].amount == 6666666666666667
    # a tie: 0.25 base units → 0 (even), 0.75 → 1, 1.5 → 2, 2.5 → 2
    catalog = with_row("storage.deal", PerUnit(unit_price=Decimal("0.000000000000000001")))
    for quantity, expected in ((Fraction(1, 4), 0), (Fraction(3, 4), 1), (Fraction(3, 2), 2),
                               (Fraction(5, 2), 2)):  # fmt: skip
        assert rated({"storage.deal": quantity}, catalog=catalog).lines[0].amount == expected


def test_graduated_volume_package_and_minimum() -> None:
    tiers = (
        Tier(Decimal(100), Decimal(0)),
        Tier(Decimal(1000), Decimal("0.02")),
        Tier(None, Decimal("0.01")),
    )
    graduated = with_row("compute.cpu", Graduated(tiers=tiers))
    # 1500: 100 free + 900 × 0.02 + 500 × 0.01 = 18 + 5 = 23
    line = rated({"compute.cpu": Fraction(1500)}, catalog=graduated).lines[0]
    assert line.amount == units("23")
    assert [t.quantity for t in line.tiers] == [100, 900, 500]
    volume = with_row("compute.cpu", Volume(tiers=tiers))
    # 1000 falls in the second tier (<= is inclusive): 1000 × 0.02 = 20; 1001 × 0.01 = 10.01
    assert rated({"compute.cpu": Fraction(1000)}, catalog=volume).lines[0].amount == units("20")
    assert rated({"compute.cpu": Fraction(1001)}, catalog=volume).lines[0].amount == units("10.01")
    package = with_row(
        "compute.serverless",
        Package(package_size=Decimal(5), package_price=Decimal(1), minimum=Decimal(3)),
    )
    # 11 → 3 packages = 3; 1 → 1 package = 1, raised to the minimum 3; 16 → 4 packages
    assert rated({"compute.serverless": Fraction(11)}, catalog=package).lines[0].amount == units(
        "3"
    )
    small = rated({"compute.serverless": Fraction(1)}, catalog=package).lines[0]
    assert (small.amount, small.minimum_applied) == (units("3"), True)
    assert rated({"compute.serverless": Fraction(16)}, catalog=package).lines[0].packages == 4


def test_usd_rows_convert_at_the_rate_and_need_one() -> None:
    catalog = with_row(
        "hosting.custom_domain", PerUnit(unit_price=Decimal(1), currency=Currency.USD)
    )
    # 1 USD at 3 USD per SYNOR = 0.333… SYNOR → 333333333333333333 base units
    line = rated({"hosting.custom_domain": Fraction(1)}, catalog=catalog, rate=Fraction(3)).lines[0]
    assert line.amount == 333333333333333333
    with pytest.raises(MoneyError, match="oracle rate"):
        rated({"hosting.custom_domain": Fraction(1)}, catalog=catalog)


def test_net_negative_quantities() -> None:
    # per_unit: a credit line; graduated: amount 0, the quantity still shown
    assert rated({"compute.cpu": Fraction(-50)}).lines[0].amount == -units("1")
    tiers = (Tier(Decimal(10), Decimal(0)), Tier(None, Decimal(1)))
    line = rated(
        {"compute.cpu": Fraction(-5)}, catalog=with_row("compute.cpu", Graduated(tiers=tiers))
    ).lines[0]
    assert line.quantity == Fraction(-5)
    assert line.amount == 0


def test_percent_discounts_stack_by_priority_on_what_is_left() -> None:
    terms = Terms(
        discounts=(
            percent("b", "50", Scope(service="compute"), priority=2),
            percent("a", "10", Scope(resource="compute.cpu"), priority=1),
        )
    )
    # cpu 100 core-hours = 2; storage 100 GB-month = 2 (out of scope)
    # a: 10% of 2 = 0.2; b: 50% of 1.8 = 0.9 → discounts 1.1; subtotal 4 − 1.1 = 2.9
    invoice = rated({"compute.cpu": Fraction(100), "storage.storage": Fraction(100)}, terms)
    assert [(a.source, a.amount) for a in invoice.adjustments] == [
        ("a", -units("0.2")),
        ("b", -units("0.9")),
    ]
    assert invoice.subtotal == units("2.9")


def test_discount_windows() -> None:
    after = Discount(
        "late", DiscountKind.PERCENT, percent=Decimal(10),
        start=datetime(2026, 12, 1, tzinfo=UTC),
    )  # fmt: skip
    overlapping = Discount(
        "part", DiscountKind.PERCENT, percent=Decimal(10),
        end=datetime(2026, 11, 2, tzinfo=UTC),
    )  # fmt: skip
    invoice = rated({"compute.cpu": Fraction(100)}, Terms(discounts=(after, overlapping)))
    assert [a.source for a in invoice.adjustments] == ["part"]


def test_sla_schedule_and_credit() -> None:
    assert sla_percent(Decimal("99.95")) == 0
    assert sla_percent(Decimal("99.9")) == 0
    assert sla_percent(Decimal("99.5")) == 10
    assert sla_percent(Decimal("98")) == 25
    assert sla_percent(Decimal("94.99")) == 100
    # compute 2 SYNOR, 10% discount → 1.8; 25% SLA of 1.8 = 0.45
    terms = Terms(discounts=(percent("d", "10"),), uptime={"compute": Decimal(98)})
    invoice = rated({"compute.cpu": Fraction(100)}, terms)
    assert invoice.sla_credits == -units("0.45")
    assert invoice.subtotal == units("1.35")


def test_fixed_discounts_never_take_the_subtotal_below_zero() -> None:
    terms = Terms(discounts=(fixed("big", "5", priority=1), fixed("more", "1", priority=2)))
    invoice = rated({"compute.cpu": Fraction(100)}, terms)  # 2 SYNOR
    assert [a.amount for a in invoice.adjustments] == [-units("2"), 0]
    assert invoice.subtotal == 0
    assert invoice.total_due == 0


def test_grants_in_order_with_scopes_and_expiry() -> None:
    dec1 = datetime(2026, 12, 1, tzinfo=UTC)
    grants = (
        grant("compute", "1.5", scope=Scope(service="compute"), priority=0),
        grant("cpu", "5", scope=Scope(resource="compute.cpu"), priority=1),
        grant("expired", "9", expires_at=datetime(2026, 11, 30, tzinfo=UTC)),
        grant("any-late", "9", priority=5),
        grant("any-soon", "0.25", priority=5, expires_at=dec1),
    )
    # cpu 2 + storage 2 = 4. compute grant pays 1.5 (of compute's 2); the cpu grant may pay only
    # what compute's part has left: 0.5; expired grant: not usable; any-soon (expiring first)
    # 0.25; any-late pays the rest 1.75. Prepaid 1 pays nothing (nothing left).
    invoice = rated(
        {"compute.cpu": Fraction(100), "storage.storage": Fraction(100)},
        Terms(grants=grants, prepaid=units("1")),
    )
    assert [(c.grant, c.amount) for c in invoice.credits] == [
        ("compute", units("1.5")),
        ("cpu", units("0.5")),
        ("any-soon", units("0.25")),
        ("any-late", units("1.75")),
    ]
    assert (invoice.prepaid_applied, invoice.total_due) == (0, 0)


def test_prepaid_then_due() -> None:
    invoice = rated({"compute.cpu": Fraction(100)}, Terms(prepaid=units("0.5")))
    assert (invoice.prepaid_applied, invoice.total_due) == (units("0.5"), units("1.5"))


def test_commitments_bill_whether_used_and_overage_at_on_demand() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    commitment = Commitment("r", "compute.cpu", Decimal(100), Decimal("0.015"), 3, start)
    terms = Terms(commitments=(commitment,))
    # under: 100 × 0.015 = 1.5 only
    assert [
        (line.kind, line.amount) for line in rated({"compute.cpu": Fraction(40)}, terms).lines
    ] == [(LineKind.COMMITMENT, units("1.5"))]
    # none used: still 1.5; over by 50: + 50 × 0.02 = 1
    assert rated({}, terms).subtotal == units("1.5")
    over = rated({"compute.cpu": Fraction(150)}, terms)
    assert [(line.kind, line.amount) for line in over.lines] == [
        (LineKind.COMMITMENT, units("1.5")),
        (LineKind.OVERAGE, units("1")),
    ]
    # a 3-month term from 1 Oct covers Oct, Nov, Dec; not January
    assert commitment.active_in(Period.month(2026, 12))
    assert not commitment.active_in(Period.month(2027, 1))
    with pytest.raises(TermsError):
        Commitment("r", "compute.cpu", Decimal(1), Decimal(1), 5, start)


def test_terms_refuse_nonsense() -> None:
    with pytest.raises(TermsError):
        percent("p", "101")
    with pytest.raises(TermsError):
        Scope(service="compute", resource="compute.cpu")
    with pytest.raises(TermsError):
        CreditGrant("g", 1, 2)


QUANTITIES = st.dictionaries(
    st.sampled_from(sorted(BOOK.resources)),
    st.fractions(min_value=0, max_value=10**6, max_denominator=10**6),
    max_size=6,
)


@st.composite
def terms(draw: st.DrawFn) -> Terms:
    services = list(BOOK.services())
    scope = st.one_of(
        st.none(),
        st.builds(Scope, service=st.sampled_from(services)),
        st.builds(Scope, resource=st.sampled_from(sorted(BOOK.resources))),
    )
    discounts = draw(
        st.lists(
            st.one_of(
                st.builds(
                    percent,
                    st.text("abcdef", min_size=1, max_size=3),
                    st.integers(0, 100).map(str),
                    scope,
                    st.integers(0, 3),
                ),
                st.builds(
                    fixed,
                    st.text("ghijk", min_size=1, max_size=3),
                    st.integers(0, 50).map(str),
                    st.integers(0, 3),
                    scope,
                ),
            ),
            max_size=4,
            unique_by=lambda d: d.id,
        )
    )
    grants = draw(
        st.lists(
            st.builds(
                grant,
                st.text("lmnop", min_size=1, max_size=3),
                st.integers(0, 100).map(str),
                scope=scope,
                priority=st.integers(0, 2),
            ),
            max_size=4,
            unique_by=lambda g: g.id,
        )
    )
    uptime = draw(
        st.dictionaries(
            st.sampled_from(services), st.decimals(90, 100, places=2, allow_nan=False), max_size=3
        )
    )
    prepaid = draw(st.integers(0, 100 * SYNOR))
    return Terms(discounts=tuple(discounts), grants=tuple(grants), uptime=uptime, prepaid=prepaid)


@settings(max_examples=300, deadline=None)
@given(QUANTITIES, terms())
def test_an_invoice_always_adds_up(quantities: dict[str, Fraction], chosen: Terms) -> None:
    invoice = rate(BOOK, NOV, quantities, chosen)
    lines = sum(line.amount for line in invoice.lines)
    adjustments = sum(a.amount for a in invoice.adjustments)
    assert invoice.subtotal == max(0, lines + adjustments)
    assert invoice.charges + invoice.discounts + invoice.sla_credits == lines + adjustments
    assert all(a.amount <= 0 for a in invoice.adjustments)
    assert invoice.subtotal - invoice.credits_applied - invoice.prepaid_applied == invoice.total_due
    assert invoice.total_due >= 0
    assert invoice.prepaid_applied <= chosen.prepaid
    by_id = {g.id: g for g in chosen.grants}
    for use in invoice.credits:
        assert 0 < use.amount <= by_id[use.grant].remaining
    # a percent discount never takes more than its line; one rounding per line
    for adjustment in invoice.adjustments:
        if adjustment.kind is AdjustmentKind.PERCENT_DISCOUNT:
            line = next(x for x in invoice.lines if x.key == adjustment.line)
            assert -adjustment.amount <= line.amount


@settings(max_examples=200, deadline=None)
@given(QUANTITIES, terms())
def test_an_invoice_transfer_always_balances(
    quantities: dict[str, Fraction], chosen: Terms
) -> None:
    """Whatever the invoice, its ledger transfer balances, and its legs say what the invoice
    says: the receivable is what is due, the credits and prepaid what they paid."""
    invoice = rate(BOOK, NOV, quantities, chosen)
    transfer = invoice_transfer("SYN-2026-000001", "acct", invoice)
    if transfer is None:
        assert invoice.charges == 0
        assert all(a.amount == 0 for a in invoice.adjustments)
        return
    debits = sum(e.amount for e in transfer.entries if e.side is Side.DEBIT)
    credits = sum(e.amount for e in transfer.entries if e.side is Side.CREDIT)
    assert debits == credits
    legs = {e.account: (e.side, e.amount) for e in transfer.entries}
    for account, amount in (
        (receivable("acct"), invoice.total_due),
        (credits_account("acct"), invoice.credits_applied),
        (prepaid("acct"), invoice.prepaid_applied),
    ):
        assert legs.get(account, (Side.DEBIT, 0)) == (Side.DEBIT, amount)
