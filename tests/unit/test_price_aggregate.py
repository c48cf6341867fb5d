"""Cross-source aggregation (SPEC §8): eligibility, weighted median, outliers, quorum, interval.

Hand-worked examples carry their arithmetic in comments; properties check the weighted median
against its defining property (it minimises Σ wᵢ|pᵢ − x|) and the aggregate against manipulation.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synor_economics.domain.price_aggregate import (
    Aggregate,
    Policy,
    SourceQuote,
    aggregate,
    weighted_median,
)
from synor_economics.domain.twap import OracleError

F = Fraction
POLICY = Policy()


def quote(
    source: str, price: Fraction | str, liquidity: int = 100_000, history: int = 3600
) -> SourceQuote:
    return SourceQuote(source, F(price), F(liquidity), history)


# --- weighted_median ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "median"),
    [
        ([(F(1), F(1)), (F(2), F(1)), (F(3), F(1))], F(2)),  # plain odd median
        ([(F(1), F(1)), (F(2), F(1))], F(3, 2)),  # exactly half at 1: mean of 1 and 2
        ([(F(1), F(3)), (F(2), F(1))], F(1)),  # 3 of 4 at price 1
        ([(F(1), F(1)), (F(2), F(1)), (F(3), F(2))], F(5, 2)),  # cum 2 of 4 at price 2 → (2+3)/2
        ([(F(3), F(2)), (F(1), F(1)), (F(2), F(1))], F(5, 2)),  # the order does not matter
        ([(F(5), F(7))], F(5)),  # one value
        ([(F(2), F(1)), (F(2), F(1)), (F(9), F(1))], F(2)),  # equal prices are merged: 2 has 2/3
        ([(F(1), F(1)), (F(1), F(1)), (F(4), F(2))], F(5, 2)),  # merged 1 has exactly half
    ],
)
def test_weighted_median_examples(
    values: list[tuple[Fraction, Fraction]], median: Fraction
) -> None:
    assert weighted_median(values) == median


def test_weighted_median_refuses_empty_and_non_positive_weights() -> None:
    with pytest.raises(OracleError, match="nothing"):
        weighted_median([])
    with pytest.raises(OracleError, match="weight 1 must be positive"):
        weighted_median([(F(1), F(1)), (F(2), F(0))])
    with pytest.raises(OracleError, match="weight 0 must be positive"):
        weighted_median([(F(1), F(-1))])
    with pytest.raises(OracleError, match="exact"):
        weighted_median([(1.5, F(1))])  # type: ignore[list-item]


positive = st.builds(F, st.integers(1, 10**9), st.integers(1, 10**4))
pairs = st.lists(st.tuples(positive, positive), min_size=1, max_size=12)


def weighted_distance(values: list[tuple[Fraction, Fraction]], x: Fraction) -> Fraction:
    return sum((w * abs(p - x) for p, w in values), F(0))


@given(pairs)
def test_weighted_median_minimises_the_weighted_absolute_deviation(
    values: list[tuple[Fraction, Fraction]],
) -> None:
    # the defining property of a weighted median; the minimum of a piecewise-linear convex
    # function is reached at one of the prices
    median = weighted_median(values)
    best = min(weighted_distance(values, p) for p, _ in values)
    assert weighted_distance(values, median) == best


@given(pairs)
def test_weighted_median_lies_between_min_and_max(values: list[tuple[Fraction, Fraction]]) -> None:
    median = weighted_median(values)
    assert min(p for p, _ in values) <= median <= max(p for p, _ in values)


@given(pairs, st.randoms(use_true_random=False))
def test_weighted_median_is_invariant_to_permutation(
    values: list[tuple[Fraction, Fraction]], rng: Random
) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert weighted_median(shuffled) == weighted_median(values)


@given(pairs, positive)
def test_scaling_all_weights_leaves_the_weighted_median_unchanged(
    values: list[tuple[Fraction, Fraction]], factor: Fraction
) -> None:
    assert weighted_median([(p, w * factor) for p, w in values]) == weighted_median(values)


@given(pairs, positive, positive)
def test_a_weight_greater_than_all_others_combined_is_the_median(
    values: list[tuple[Fraction, Fraction]], price: Fraction, extra: Fraction
) -> None:
    heavy = sum((w for _, w in values), F(0)) + extra
    assert weighted_median([*values, (price, heavy)]) == price


# --- aggregate: hand examples -------------------------------------------------------------------


def test_aggregate_by_hand() -> None:
    quotes = [
        quote("uni-v2", "0.50", liquidity=200_000),
        quote("uni-v3", "0.51", liquidity=100_000),
        quote("sushi", "0.49", liquidity=100_000),
        quote("young", "0.50", history=600),  # excluded: 600 s of history
        quote("thin", "0.50", liquidity=5_000),  # excluded: below the $10k floor
        quote("pumped", "0.60", liquidity=50_000),  # 20% above the median: outlier
    ]
    result = aggregate(quotes, POLICY)
    # eligible, sorted: 0.49 (100k), 0.50 (200k), 0.51 (100k), 0.60 (50k); total 450k, half 225k
    # cumulative: 100k, 300k ≥ 225k → median 0.50; 0.60 is 20% away; the others at most 2%
    assert result.quorum_met
    assert result.used == ("uni-v2", "uni-v3", "sushi")
    assert result.rejected == (
        ("young", "too little history: 600 s < 1800 s"),
        ("thin", "liquidity below the floor: 5000 < 10000 USD"),
        ("pumped", "outlier: 20% from the median (0.6 vs 0.5), above the 5% bound"),
    )
    # survivors: median 0.50 again; MAD = (200k·0 + 100k·0.01 + 100k·0.01) / 400k = 0.005
    assert result.price == F(1, 2)
    assert result.low == F(495, 1000)
    assert result.high == F(505, 1000)
    assert result.confidence == F(5, 1000)


def test_aggregate_without_quorum_gives_no_price() -> None:
    quotes = [
        quote("a", "1.00"),
        quote("b", "1.01"),
        quote("c", "2.00", liquidity=1_000),  # below the floor
    ]
    result = aggregate(quotes, POLICY)
    assert result == Aggregate(
        price=None,
        low=None,
        high=None,
        used=("a", "b"),
        rejected=(("c", "liquidity below the floor: 1000 < 10000 USD"),),
        quorum_met=False,
    )
    assert result.confidence is None


def test_aggregate_of_nothing_and_of_only_excluded_sources() -> None:
    assert aggregate([], POLICY) == Aggregate(None, None, None, (), (), quorum_met=False)
    result = aggregate([quote("a", "0"), quote("b", "-1")], POLICY)
    assert result.rejected == (("a", "non-positive price: 0"), ("b", "non-positive price: -1"))
    assert not result.quorum_met


def test_aggregate_with_a_zero_floor_still_refuses_a_zero_weight() -> None:
    policy = Policy(liquidity_floor=F(0), quorum=1)
    result = aggregate([quote("a", "1", liquidity=0), quote("b", "2")], policy)
    assert result.rejected == (("a", "no liquidity: a weight must be positive (got 0)"),)
    assert result.price == 2


def test_aggregate_refuses_duplicate_sources() -> None:
    with pytest.raises(OracleError, match="duplicate source 'a'"):
        aggregate([quote("a", "1"), quote("b", "1"), quote("a", "1")], POLICY)


def test_aggregate_low_end_is_floored_at_zero_under_a_loose_policy() -> None:
    # max_deviation 100×: 1 (w 1) and 100 (w 0.9) both survive; median 1;
    # MAD = 0.9·99 / 1.9 ≈ 46.9 > 1, so the raw low end would be negative
    policy = Policy(quorum=2, liquidity_floor=F(0), max_deviation=F(100))
    result = aggregate([quote("a", "1", liquidity=10), quote("b", "100", liquidity=9)], policy)
    assert result.price == 1
    assert result.low == 0
    assert result.high == 1 + F(9 * 99, 19)


def test_source_quote_and_policy_validation() -> None:
    with pytest.raises(OracleError, match="non-empty name"):
        SourceQuote("", F(1), F(1), 1)
    with pytest.raises(OracleError, match="exact"):
        SourceQuote("a", 0.5, F(1), 1)  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="history must be an int"):
        SourceQuote("a", F(1), F(1), 1.0)  # type: ignore[arg-type]
    normalised = SourceQuote("a", Decimal("0.5"), 7, 1)  # type: ignore[arg-type]
    assert normalised.price == F(1, 2)
    assert type(normalised.liquidity) is Fraction
    with pytest.raises(OracleError, match="quorum must be at least 1"):
        Policy(quorum=0)
    with pytest.raises(OracleError, match="min_history"):
        Policy(min_history=-1)
    with pytest.raises(OracleError, match="floor must not be negative"):
        Policy(liquidity_floor=F(-1))
    with pytest.raises(OracleError, match="max_deviation must not be negative"):
        Policy(max_deviation=F(-1, 100))
    assert Policy() == Policy(3, 1800, F(10_000), F(5, 100))


# --- aggregate: properties ----------------------------------------------------------------------

liquidity = st.integers(10_000, 10**9).map(F)
base_price = st.builds(F, st.integers(1, 10**6), st.integers(1, 10**6))


@st.composite
def honest_quotes(draw: st.DrawFn) -> list[SourceQuote]:
    """3–8 honest sources within 2% of each other: none of them is an outlier of the others."""
    base = draw(base_price)
    count = draw(st.integers(3, 8))
    return [
        SourceQuote(
            f"honest-{i}",
            base * (1 + F(draw(st.integers(0, 200)), 10_000)),
            draw(liquidity),
            draw(st.integers(1800, 10**6)),
        )
        for i in range(count)
    ]


@given(honest_quotes(), st.integers(1, 999), st.sampled_from([F(10), F(1, 10)]))
def test_a_minority_outlier_ten_times_off_never_moves_the_aggregate(
    honest: list[SourceQuote], share: int, factor: Fraction
) -> None:
    # the attacker holds less liquidity than all honest sources together (share/1000 of it), but
    # enough to pass the floor (three honest sources hold at least 3× the floor)
    total = sum((q.liquidity for q in honest), F(0))
    depth = max(total * F(share, 1000), POLICY.liquidity_floor)
    reference = max(q.price for q in honest) if factor > 1 else min(q.price for q in honest)
    attacker = SourceQuote("attacker", reference * factor, depth, 10**6)
    clean = aggregate(honest, POLICY)
    attacked = aggregate([*honest, attacker], POLICY)
    assert clean.quorum_met
    assert attacked.quorum_met
    assert (attacked.price, attacked.low, attacked.high) == (clean.price, clean.low, clean.high)
    assert attacked.used == clean.used
    assert [source for source, _ in attacked.rejected] == ["attacker"]
    assert attacked.rejected[0][1].startswith("outlier: ")


@given(base_price, liquidity, st.integers(3, 8))
def test_aggregate_of_identical_quotes_has_a_zero_width_interval(
    price: Fraction, depth: Fraction, count: int
) -> None:
    result = aggregate([SourceQuote(f"s{i}", price, depth, 3600) for i in range(count)], POLICY)
    assert result.price == price
    assert result.low == result.high == price
    assert result.confidence == 0


@given(honest_quotes(), st.randoms(use_true_random=False))
def test_aggregate_does_not_depend_on_quote_order(honest: list[SourceQuote], rng: Random) -> None:
    shuffled = list(honest)
    rng.shuffle(shuffled)
    first, second = aggregate(honest, POLICY), aggregate(shuffled, POLICY)
    assert (first.price, first.low, first.high) == (second.price, second.low, second.high)
    assert sorted(first.used) == sorted(second.used)


@given(honest_quotes())
def test_aggregate_price_lies_within_its_interval_and_the_survivors(
    honest: list[SourceQuote],
) -> None:
    result = aggregate(honest, POLICY)
    assert result.price is not None
    assert result.low is not None
    assert result.high is not None
    assert result.low <= result.price <= result.high
    assert min(q.price for q in honest) <= result.price <= max(q.price for q in honest)
    assert result.high - result.price == result.price - result.low
