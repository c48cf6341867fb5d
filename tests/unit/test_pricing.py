"""Pricing models (SPEC §4): hand-worked examples with their arithmetic, and properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synor_economics.domain.errors import CatalogError, MoneyError
from synor_economics.domain.pricing import (
    MODEL_NAMES,
    Currency,
    Graduated,
    Package,
    PerUnit,
    PricingModel,
    Tier,
    TierPart,
    Volume,
)

D = Decimal
F = Fraction


def tiers(*bounds: tuple[str | None, str]) -> tuple[Tier, ...]:
    return tuple(Tier(None if up_to is None else D(up_to), D(price)) for up_to, price in bounds)


FREE_100_THEN_2C = tiers(("100", "0"), (None, "0.02"))
THREE_STEPS = tiers(("10", "1"), ("100", "0.5"), (None, "0.25"))


# --- per_unit ---------------------------------------------------------------------------------


def test_per_unit_is_quantity_times_price() -> None:
    # 200 core-hours × 0.02 = 4
    assert PerUnit(unit_price=D("0.02")).exact_amount(F(200)) == 4


def test_per_unit_stays_exact_for_non_terminating_quantities() -> None:
    # 1000 core-seconds = 1000/3600 = 5/18 core-hours; × 0.02 = 5/18 × 1/50 = 1/180
    assert PerUnit(unit_price=D("0.02")).exact_amount(F(1000, 3600)) == F(1, 180)


def test_per_unit_prices_a_negative_quantity_linearly() -> None:
    # a net correction of −50 GB at 0.05 is a credit of −2.5
    assert PerUnit(unit_price=D("0.05")).exact_amount(F(-50)) == F(-5, 2)


def test_free_resource_costs_zero() -> None:
    assert PerUnit(unit_price=D("0")).exact_amount(F(10**12)) == 0


def test_currency_defaults_to_synor_and_may_be_usd() -> None:
    assert PerUnit(unit_price=D("1")).currency is Currency.SYNOR
    assert PerUnit(unit_price=D("1"), currency=Currency.USD).currency == "USD"


# --- minimum ------------------------------------------------------------------------------------


def test_minimum_raises_a_small_charge() -> None:
    # 10 × 0.02 = 0.2, below the minimum 1 → 1
    assert PerUnit(unit_price=D("0.02"), minimum=D("1")).exact_amount(F(10)) == 1


def test_minimum_does_not_lower_a_larger_charge() -> None:
    # 100 × 0.02 = 2 > 1 → 2
    assert PerUnit(unit_price=D("0.02"), minimum=D("1")).exact_amount(F(100)) == 2


def test_minimum_needs_usage() -> None:
    model = PerUnit(unit_price=D("0.02"), minimum=D("1"))
    assert model.exact_amount(F(0)) == 0
    # a credit is never inflated to the minimum: −10 × 0.02 = −0.2
    assert model.exact_amount(F(-10)) == F(-1, 5)


@pytest.mark.parametrize(
    "model",
    [
        Graduated(tiers=FREE_100_THEN_2C, minimum=D("5")),
        Volume(tiers=THREE_STEPS, minimum=D("5")),
        Package(package_size=D("10"), package_price=D("1"), minimum=D("5")),
    ],
    ids=["graduated", "volume", "package"],
)
def test_minimum_applies_to_every_model(model: PricingModel) -> None:
    # each of these charges less than 5 for one unit (0, 1 and 1), so the line is raised to 5
    assert model.exact_amount(F(1)) == 5
    assert model.exact_amount(F(0)) == 0


# --- graduated ----------------------------------------------------------------------------------


def test_graduated_free_allowance_then_price() -> None:
    # SPEC §10 example: 200 core-hours, first 100 free, next 100 at 0.02 → 0 + 2 = 2
    assert Graduated(tiers=FREE_100_THEN_2C).exact_amount(F(200)) == 2


def test_graduated_inside_the_free_tier_is_free() -> None:
    assert Graduated(tiers=FREE_100_THEN_2C).exact_amount(F(100)) == 0


def test_graduated_three_tiers_breakdown() -> None:
    # 150 units: 10 × 1 = 10; 90 × 0.5 = 45; 50 × 0.25 = 12.5; total 67.5
    model = Graduated(tiers=THREE_STEPS)
    assert model.tier_parts(F(150)) == [
        TierPart(THREE_STEPS[0], F(10), F(10)),
        TierPart(THREE_STEPS[1], F(90), F(45)),
        TierPart(THREE_STEPS[2], F(50), F(25, 2)),
    ]
    assert model.exact_amount(F(150)) == F(135, 2)


def test_graduated_breakdown_stops_at_the_quantity() -> None:
    # 5 units touch only the first tier: 5 × 1 = 5
    assert Graduated(tiers=THREE_STEPS).tier_parts(F(5)) == [TierPart(THREE_STEPS[0], F(5), F(5))]
    assert Graduated(tiers=THREE_STEPS).tier_parts(F(0)) == []


def test_graduated_fractional_quantity_splits_exactly() -> None:
    # 100.5 units: 10 × 1 + 90 × 0.5 + 0.5 × 0.25 = 10 + 45 + 0.125 = 55.125
    assert Graduated(tiers=THREE_STEPS).exact_amount(F(201, 2)) == F(441, 8)


# --- volume -------------------------------------------------------------------------------------


def test_volume_prices_the_whole_quantity_at_one_tier() -> None:
    # 50 falls in the second tier (10 < 50 <= 100): 50 × 0.5 = 25
    assert Volume(tiers=THREE_STEPS).exact_amount(F(50)) == 25


@pytest.mark.parametrize(
    ("quantity", "price", "amount"),
    [
        (F(10), "1", F(10)),  # exactly up_to 10: still the first tier, 10 × 1
        (F(101, 10), "0.5", F(101, 20)),  # 10.1 > 10: second tier, 10.1 × 0.5 = 5.05
        (F(100), "0.5", F(50)),  # exactly up_to 100: second tier, 100 × 0.5
        (F(1001, 10), "0.25", F(1001, 40)),  # 100.1: open tier, 100.1 × 0.25 = 25.025
    ],
)
def test_volume_boundary_belongs_to_the_lower_tier(
    quantity: Fraction, price: str, amount: Fraction
) -> None:
    model = Volume(tiers=THREE_STEPS)
    assert model.tier_for(quantity).unit_price == D(price)
    assert model.exact_amount(quantity) == amount


def test_volume_zero_is_free() -> None:
    assert Volume(tiers=THREE_STEPS).exact_amount(F(0)) == 0


# --- package ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "packages", "amount"),
    [
        (F(0), 0, F(0)),
        (F(1, 1000), 1, F(3)),  # a started package is a whole package: ceil(0.0001) = 1 → 3
        (F(10), 1, F(3)),  # exactly one package
        (F(21), 3, F(9)),  # ceil(21 / 10) = 3 packages × 3 = 9
        (F(30), 3, F(9)),
    ],
)
def test_package_rounds_up_to_whole_packages(
    quantity: Fraction, packages: int, amount: Fraction
) -> None:
    model = Package(package_size=D("10"), package_price=D("3"))
    assert model.packages(quantity) == packages
    assert model.exact_amount(quantity) == amount


def test_package_with_fractional_size() -> None:
    # packages of 0.5 at 0.2: 1.2 units → ceil(2.4) = 3 packages × 0.2 = 0.6
    model = Package(package_size=D("0.5"), package_price=D("0.2"))
    assert model.exact_amount(F(6, 5)) == F(3, 5)


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        Graduated(tiers=FREE_100_THEN_2C),
        Volume(tiers=FREE_100_THEN_2C),
        Package(package_size=D("1"), package_price=D("1")),
    ],
    ids=["graduated", "volume", "package"],
)
def test_tiered_and_package_models_refuse_negative_quantities(model: PricingModel) -> None:
    with pytest.raises(MoneyError, match=f"a {model.name} price cannot rate a negative quantity"):
        model.exact_amount(F(-1))


@pytest.mark.parametrize(
    "model",
    [
        PerUnit(unit_price=D("1")),
        Graduated(tiers=FREE_100_THEN_2C),
        Volume(tiers=FREE_100_THEN_2C),
        Package(package_size=D("1"), package_price=D("1")),
    ],
    ids=MODEL_NAMES,
)
def test_every_model_refuses_a_float_quantity(model: PricingModel) -> None:
    with pytest.raises(MoneyError, match="not float"):
        model.exact_amount(cast(Any, 1.5))


def make_per_unit(value: Any) -> object:
    return PerUnit(unit_price=value)


def make_minimum(value: Any) -> object:
    return PerUnit(unit_price=D("1"), minimum=value)


def make_tier_price(value: Any) -> object:
    return Tier(None, value)


def make_tier_bound(value: Any) -> object:
    return Tier(value, D("1"))


def make_package_size(value: Any) -> object:
    return Package(package_size=value, package_price=D("1"))


def make_package_price(value: Any) -> object:
    return Package(package_size=D("1"), package_price=value)


PRICE_FIELDS = [
    (make_per_unit, "unit_price"),
    (make_minimum, "minimum"),
    (make_tier_price, "unit_price"),
    (make_tier_bound, "up_to"),
    (make_package_size, "package_size"),
    (make_package_price, "package_price"),
]


@pytest.mark.parametrize(("make", "where"), PRICE_FIELDS)
def test_no_float_is_accepted_as_a_price_or_bound(make: Any, where: str) -> None:
    with pytest.raises(CatalogError, match="not a float") as caught:
        make(0.5)
    assert caught.value.where == where


@pytest.mark.parametrize(("make", "where"), PRICE_FIELDS)
def test_negative_prices_and_bounds_are_refused(make: Any, where: str) -> None:
    with pytest.raises(CatalogError) as caught:
        make(D("-1"))
    assert caught.value.where == where


@pytest.mark.parametrize(("make", "where"), PRICE_FIELDS)
def test_non_finite_and_non_decimal_prices_are_refused(make: Any, where: str) -> None:
    for bad in (D("NaN"), D("Infinity"), "1", 1):
        with pytest.raises(CatalogError) as caught:
            make(bad)
        assert caught.value.where == where


@pytest.mark.parametrize(
    "where_maker",
    [(make_tier_bound, "up_to"), (make_package_size, "package_size")],
)
def test_bounds_and_package_sizes_must_be_positive(where_maker: tuple[Any, str]) -> None:
    make, where = where_maker
    with pytest.raises(CatalogError, match="greater than zero") as caught:
        make(D("0"))
    assert caught.value.where == where


@pytest.mark.parametrize(
    ("bad_tiers", "where", "problem"),
    [
        ((), "tiers", "at least one tier"),
        (tiers(("10", "1")), "tiers[0].up_to", "last tier must be open-ended"),
        (tiers((None, "1"), (None, "2")), "tiers[0].up_to", "only the last tier"),
        (tiers(("10", "1"), ("10", "2"), (None, "3")), "tiers[1].up_to", "greater than"),
        (tiers(("10", "1"), ("5", "2"), (None, "3")), "tiers[1].up_to", "greater than"),
    ],
)
@pytest.mark.parametrize("model", [Graduated, Volume])
def test_tiers_must_be_increasing_and_open_ended(
    model: type[Graduated | Volume], bad_tiers: tuple[Tier, ...], where: str, problem: str
) -> None:
    with pytest.raises(CatalogError, match=problem) as caught:
        model(tiers=bad_tiers)
    assert caught.value.where == where


def test_tiers_given_as_a_list_are_stored_as_a_tuple() -> None:
    model = Graduated(tiers=cast(Any, list(FREE_100_THEN_2C)))
    assert model.tiers == FREE_100_THEN_2C
    assert hash(model) == hash(Graduated(tiers=FREE_100_THEN_2C))


def test_currency_must_be_a_currency() -> None:
    with pytest.raises(CatalogError) as caught:
        PerUnit(unit_price=D("1"), currency=cast(Any, "EUR"))
    assert caught.value.where == "currency"


def test_models_are_frozen() -> None:
    model = PerUnit(unit_price=D("1"))
    with pytest.raises(AttributeError):
        cast(Any, model).unit_price = D("2")


# --- properties ---------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
quantities = st.fractions(min_value=0, max_value=10_000, max_denominator=3600)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = draw(
        st.lists(
            st.decimals(min_value="0.001", max_value=5000, places=3),
            unique=True,
            max_size=5,
        )
    )
    ups: list[Decimal | None] = [*sorted(bounds), None]
    return tuple(Tier(up_to, draw(prices)) for up_to in ups)


@given(tier_lists(), quantities)
def test_graduated_amount_is_the_sum_of_its_tier_parts(
    tier_list: tuple[Tier, ...], q: Fraction
) -> None:
    model = Graduated(tiers=tier_list)
    parts = model.tier_parts(q)
    assert sum(part.quantity for part in parts) == q
    assert all(part.amount == part.quantity * F(part.tier.unit_price) for part in parts)
    assert model.exact_amount(q) == sum((part.amount for part in parts), F(0))


@given(tier_lists(), quantities, quantities)
def test_graduated_never_decreases_with_more_usage(
    tier_list: tuple[Tier, ...], a: Fraction, b: Fraction
) -> None:
    model = Graduated(tiers=tier_list)
    low, high = sorted((a, b))
    assert model.exact_amount(low) <= model.exact_amount(high)


@given(prices, quantities)
def test_a_single_open_tier_is_per_unit(price: Decimal, q: Fraction) -> None:
    single = (Tier(None, price),)
    expected = PerUnit(unit_price=price).exact_amount(q)
    assert Graduated(tiers=single).exact_amount(q) == expected
    assert Volume(tiers=single).exact_amount(q) == expected


@given(tier_lists(), quantities)
def test_volume_uses_the_first_tier_that_holds_the_quantity(
    tier_list: tuple[Tier, ...], q: Fraction
) -> None:
    model = Volume(tiers=tier_list)
    tier = model.tier_for(q)
    index = tier_list.index(tier)
    assert tier.contains(q)
    assert not any(earlier.contains(q) for earlier in tier_list[:index])
    assert model.exact_amount(q) == q * F(tier.unit_price)


@given(prices, st.fractions(min_value=-1000, max_value=1000), st.fractions(-1000, 1000))
def test_per_unit_is_linear(price: Decimal, a: Fraction, b: Fraction) -> None:
    model = PerUnit(unit_price=price)
    assert model.exact_amount(a + b) == model.exact_amount(a) + model.exact_amount(b)


@given(
    st.decimals(min_value="0.001", max_value=1000, places=3),
    prices,
    quantities,
)
def test_package_buys_the_fewest_whole_packages_that_cover_the_quantity(
    size: Decimal, price: Decimal, q: Fraction
) -> None:
    model = Package(package_size=size, package_price=price)
    packages = model.packages(q)
    assert packages * F(size) >= q
    assert (packages - 1) * F(size) < q or packages == 0
    assert model.exact_amount(q) == packages * F(price)


@given(tier_lists(), quantities, prices)
def test_minimum_is_a_floor_for_positive_usage(
    tier_list: tuple[Tier, ...], q: Fraction, minimum: Decimal
) -> None:
    plain = Graduated(tiers=tier_list).exact_amount(q)
    floored = Graduated(tiers=tier_list, minimum=minimum).exact_amount(q)
    assert floored == (max(plain, F(minimum)) if q > 0 else plain)
