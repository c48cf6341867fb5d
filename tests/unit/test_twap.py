"""Time-weighted averages (SPEC §8): accumulators read as their contracts write them, and series.

Hand-worked examples carry their arithmetic in comments; properties cross-check the accumulator
readers against the series integrators, and the series integrators against AM–GM.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synor_economics.domain.errors import SynorError
from synor_economics.domain.twap import (
    MAX_TICK,
    MIN_TICK,
    Q112,
    UINT32,
    UINT224,
    Cumulative,
    OracleError,
    accumulator_twap,
    arithmetic_twap,
    geometric_twap,
    scale_decimals,
    tick_price,
    v2_counterfactual,
    v2_twap,
    v3_mean_tick,
)

D = Decimal
F = Fraction
UINT256 = 2**256
INT55 = 2**55


def rounded60(value: Fraction) -> Decimal:
    """The correctly rounded 60-digit HALF_EVEN value of an exact fraction (Decimal division of
    exact integers rounds once)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return D(value.numerator) / D(value.denominator)


def test_constants() -> None:
    assert Q112 == 2**112
    assert UINT224 == 2**224
    assert UINT32 == 2**32


def test_oracle_error_is_a_synor_value_error() -> None:
    assert issubclass(OracleError, SynorError)
    assert issubclass(OracleError, ValueError)


# --- v2 -----------------------------------------------------------------------------------------


def test_v2_accumulator_from_known_reserves_gives_back_the_known_average() -> None:
    # reserves (in 2, out 6) for 100 s: price 3 → 3·2^112 per second
    # reserves (in 4, out 4) for 300 s: price 1 → 1·2^112 per second
    # average = (3·100 + 1·300) / 400 = 600 / 400 = 3/2
    start = Cumulative(1_000, 0)
    after_first = v2_counterfactual(0, 2, 6, 1_000, 1_100)
    assert after_first == 300 * Q112
    after_second = v2_counterfactual(after_first, 4, 4, 1_100, 1_400)
    assert after_second == 600 * Q112
    assert v2_twap(start, Cumulative(1_400, after_second)) == F(3, 2)


def test_v2_counterfactual_floors_the_encoded_price_like_uqdiv() -> None:
    # reserves (in 3, out 1): UQ112x112 price = floor(2^112 / 3), held 10 s
    value = v2_counterfactual(0, 3, 1, 0, 10)
    assert value == (Q112 // 3) * 10
    assert v2_twap(Cumulative(0, 0), Cumulative(10, value)) == F(Q112 // 3, Q112)


def test_v2_counterfactual_same_block_adds_nothing() -> None:
    assert v2_counterfactual(12345, 7, 9, 500, 500) == 12345


def test_v2_counterfactual_across_a_uint32_timestamp_wrap() -> None:
    # the pair stored 2^32 − 10; 30 s later its uint32 clock reads 20 (and the real clock 2^32 + 20)
    last = UINT32 - 10
    expected = 5 * Q112 * 30  # reserves (in 1, out 5): price 5
    assert v2_counterfactual(0, 1, 5, last, UINT32 + 20) == expected
    assert v2_counterfactual(0, 1, 5, last, 20) == expected  # now already reduced to uint32


def test_v2_counterfactual_wraps_mod_2_256() -> None:
    # cumulative 2^256 − 2^112, plus price 3 for 1 s = 3·2^112 → wraps to 2·2^112
    near_top = UINT256 - Q112
    wrapped = v2_counterfactual(near_top, 1, 3, 0, 1)
    assert wrapped == 2 * Q112
    # the twap across the overflow is still the price: ((2·2^112 − (2^256 − 2^112)) mod 2^256) / 1
    assert v2_twap(Cumulative(0, near_top), Cumulative(1, wrapped)) == 3


@pytest.mark.parametrize(
    ("reserve_in", "reserve_out"), [(0, 5), (5, 0), (-1, 5), (5, -1), (2**112, 1), (1, 2**112)]
)
def test_v2_counterfactual_refuses_reserves_out_of_range(reserve_in: int, reserve_out: int) -> None:
    with pytest.raises(OracleError, match="reserve"):
        v2_counterfactual(0, reserve_in, reserve_out, 0, 10)


def test_v2_counterfactual_refuses_bad_inputs() -> None:
    with pytest.raises(OracleError, match="uint256"):
        v2_counterfactual(UINT256, 1, 1, 0, 1)
    with pytest.raises(OracleError, match="uint256"):
        v2_counterfactual(-1, 1, 1, 0, 1)
    with pytest.raises(OracleError, match="uint32"):
        v2_counterfactual(0, 1, 1, UINT32, UINT32 + 1)
    with pytest.raises(OracleError, match="negative"):
        v2_counterfactual(0, 1, 1, 0, -1)
    with pytest.raises(OracleError, match="must be an int"):
        v2_counterfactual(0, 1.0, 1, 0, 1)  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="must be an int"):
        v2_counterfactual(0, True, 1, 0, 1)


@pytest.mark.parametrize("newer_time", [100, 99])
def test_v2_twap_refuses_time_that_does_not_move_forward(newer_time: int) -> None:
    with pytest.raises(OracleError, match="later than the older"):
        v2_twap(Cumulative(100, 0), Cumulative(newer_time, Q112))


def test_v2_twap_refuses_an_accumulator_that_did_not_move() -> None:
    with pytest.raises(OracleError, match="did not move"):
        v2_twap(Cumulative(100, 5), Cumulative(200, 5))


def test_cumulative_refuses_non_integers_and_negative_time() -> None:
    with pytest.raises(OracleError, match="must be an int"):
        Cumulative(1.5, 0)  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="must be an int"):
        Cumulative(1, F(1))  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="negative"):
        Cumulative(-1, 0)


reserves = st.integers(min_value=1, max_value=2**112 - 1)


@given(
    st.lists(st.tuples(reserves, reserves, st.integers(1, 10**6)), min_size=1, max_size=8),
    st.integers(0, UINT256 - 1),
    st.integers(0, UINT32 - 1),
)
def test_v2_twap_equals_the_arithmetic_twap_of_the_encoded_prices(
    segments: list[tuple[int, int, int]], initial: int, start: int
) -> None:
    # whatever the starting value (overflow) and time (uint32 wrap), the accumulator's average is
    # the time-weighted mean of the prices the pair encoded, over 2^112
    value, now = initial, start
    points: list[tuple[int, Fraction]] = []
    for reserve_in, reserve_out, seconds in segments:
        points.append((now, F(reserve_out * Q112 // reserve_in, Q112)))
        value = v2_counterfactual(value, reserve_in, reserve_out, now % UINT32, now + seconds)
        now += seconds
    twap = v2_twap(Cumulative(start, initial), Cumulative(now, value))
    assert twap == arithmetic_twap(points, start, now)


# --- v3 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "dt", "mean"),
    [
        (-7, 2, -4),  # −3.5 rounds toward −∞ (consult subtracts one from the truncated −3)
        (7, 2, 3),  # +3.5 rounds down too
        (-8, 2, -4),  # exact: no adjustment
        (-1, 1800, -1),
        (0, 60, 0),
        (1799, 1800, 0),
    ],
)
def test_v3_mean_tick_rounds_toward_negative_infinity(delta: int, dt: int, mean: int) -> None:
    assert v3_mean_tick(Cumulative(1_000, 500), Cumulative(1_000 + dt, 500 + delta)) == mean


def test_v3_mean_tick_across_an_int56_wrap() -> None:
    # older near the top of int56; 60 s at tick 1 later the pool's cumulative wrapped to the bottom
    older = INT55 - 10
    newer = older + 60 - 2**56  # = −2^55 + 50
    assert v3_mean_tick(Cumulative(0, older), Cumulative(60, newer)) == 1


def test_v3_mean_tick_refuses_bad_inputs() -> None:
    with pytest.raises(OracleError, match="int56"):
        v3_mean_tick(Cumulative(0, INT55), Cumulative(1, 0))
    with pytest.raises(OracleError, match="later than the older"):
        v3_mean_tick(Cumulative(5, 0), Cumulative(5, 0))
    with pytest.raises(OracleError, match="tick range"):
        v3_mean_tick(Cumulative(0, 0), Cumulative(1, MAX_TICK + 1))


@given(
    st.integers(MIN_TICK, MAX_TICK),
    st.integers(1, 100_000),
    st.integers(-INT55, INT55 - 1),
)
def test_v3_mean_tick_of_a_constant_tick_is_the_tick_from_any_start(
    tick: int, dt: int, start: int
) -> None:
    newer = (start + tick * dt + INT55) % 2**56 - INT55  # the pool's wrapping int56 arithmetic
    assert v3_mean_tick(Cumulative(0, start), Cumulative(dt, newer)) == tick


@given(st.integers(-(10**9), 10**9), st.integers(1, 10**5))
def test_v3_mean_tick_is_the_floor_of_the_exact_mean(delta: int, dt: int) -> None:
    exact = F(delta, dt)
    if MIN_TICK <= math.floor(exact) <= MAX_TICK:
        mean = v3_mean_tick(Cumulative(0, 0), Cumulative(dt, delta))
        assert mean <= exact < mean + 1


# --- tick_price ----------------------------------------------------------------------------------


def test_tick_price_examples() -> None:
    assert tick_price(0) == 1
    assert tick_price(1) == D("1.0001")
    assert tick_price(2) == D("1.00020001")
    assert tick_price(-1) == rounded60(F(10_000, 10_001))
    assert isinstance(tick_price(5), Decimal)


def test_tick_price_has_60_significant_digits() -> None:
    assert len(tick_price(-1).as_tuple().digits) == 60
    assert len(tick_price(MAX_TICK).as_tuple().digits) == 60
    # 1.0001^887272 ≈ 3.4026e38, about 2^128
    assert D("3.4025e38") < tick_price(MAX_TICK) < D("3.4026e38")


def test_tick_price_refuses_ticks_out_of_range_and_non_integers() -> None:
    with pytest.raises(OracleError, match="tick range"):
        tick_price(MAX_TICK + 1)
    with pytest.raises(OracleError, match="tick range"):
        tick_price(MIN_TICK - 1)
    with pytest.raises(OracleError, match="must be an int"):
        tick_price(1.0)  # type: ignore[arg-type]


@given(st.integers(-300, 300))
def test_tick_price_is_the_correctly_rounded_exact_power(tick: int) -> None:
    assert tick_price(tick) == rounded60(F(10_001, 10_000) ** tick)


@given(st.integers(MIN_TICK, MAX_TICK - 1))
def test_tick_price_is_increasing_and_reciprocal(tick: int) -> None:
    assert tick_price(tick) < tick_price(tick + 1)
    product = F(tick_price(tick)) * F(tick_price(-tick))
    assert abs(product - 1) < F(1, 10**58)


# --- scale_decimals -----------------------------------------------------------------------------


def test_scale_decimals_wei_in_micro_dollars_to_dollars_per_synor() -> None:
    # 1 SYNOR = 10^18 wei; $0.25 = 250_000 micro-USDC → a raw price of 250_000 / 10^18
    raw = F(250_000, 10**18)
    assert scale_decimals(raw, 18, 6) == F(1, 4)
    # and the other way: one micro-USDC buys 4·10^12 wei
    assert scale_decimals(F(4 * 10**12), 6, 18) == 4


def test_scale_decimals_refuses_floats_and_bad_decimals() -> None:
    with pytest.raises(OracleError, match="exact"):
        scale_decimals(0.5, 18, 6)  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="uint8"):
        scale_decimals(F(1), -1, 6)
    with pytest.raises(OracleError, match="uint8"):
        scale_decimals(F(1), 18, 256)


# --- series -------------------------------------------------------------------------------------


def test_arithmetic_twap_by_hand() -> None:
    # price 1 from t=0, 3 from t=10, 7 from t=40; window [5, 50):
    # 1 for 5 s + 3 for 30 s + 7 for 10 s = 5 + 90 + 70 = 165 over 45 s = 11/3
    points = [(0, F(1)), (10, F(3)), (40, F(7))]
    assert arithmetic_twap(points, 5, 50) == F(11, 3)
    # a window inside one step is that step's price; points after the end are ignored
    assert arithmetic_twap([*points, (60, F(1000))], 12, 39) == 3
    # a window starting exactly on an observation uses it
    assert arithmetic_twap(points, 10, 40) == 3


def test_geometric_twap_by_hand() -> None:
    # price 1 for 10 s and 4 for 10 s: exp((0·10 + ln 4·10) / 20) = √4 = 2; arithmetic 5/2
    points = [(0, F(1)), (10, F(4))]
    assert geometric_twap(points, 0, 20) == 2
    assert arithmetic_twap(points, 0, 20) == F(5, 2)
    # 1/2 for 10 s and 8 for 30 s: exp((ln(1/2)·10 + ln 8·30) / 40) = 2^((−10 + 90) / 40) = 4
    assert geometric_twap([(0, F(1, 2)), (10, F(8))], 0, 40) == 4


def test_geometric_twap_of_a_constant_non_terminating_price_never_rounds_above_it() -> None:
    # 2/3 is 0.666…667 rounded HALF_EVEN, which is above 2/3: the result keeps AM–GM instead
    result = geometric_twap([(0, F(2, 3))], 0, 10)
    assert result == D("0." + "6" * 60)
    assert F(result) <= F(2, 3)


@pytest.mark.parametrize("twap", [arithmetic_twap, geometric_twap])
def test_series_errors(twap: Callable[..., object]) -> None:
    with pytest.raises(OracleError, match="empty"):
        twap([], 0, 10)
    with pytest.raises(OracleError, match="no observation at or before the window's start"):
        twap([(5, F(1))], 0, 10)
    with pytest.raises(OracleError, match="non-increasing time"):
        twap([(0, F(1)), (5, F(2)), (5, F(3))], 0, 10)
    with pytest.raises(OracleError, match="non-increasing time"):
        twap([(0, F(1)), (5, F(2)), (4, F(3))], 0, 10)
    with pytest.raises(OracleError, match="non-positive price"):
        twap([(0, F(1)), (5, F(0))], 0, 10)
    with pytest.raises(OracleError, match="non-positive price"):
        twap([(0, F(-1))], 0, 10)
    with pytest.raises(OracleError, match="end after it starts"):
        twap([(0, F(1))], 10, 10)
    with pytest.raises(OracleError, match="exact"):
        twap([(0, 1.5)], 0, 10)


prices = st.builds(F, st.integers(1, 10**12), st.integers(1, 10**6))


@st.composite
def series_and_window(draw: st.DrawFn) -> tuple[list[tuple[int, Fraction]], int, int]:
    gaps = draw(st.lists(st.integers(1, 10_000), min_size=0, max_size=10))
    first = draw(st.integers(0, 10**9))
    times = [first]
    for gap in gaps:
        times.append(times[-1] + gap)
    points = [(t, draw(prices)) for t in times]
    start = draw(st.integers(first, times[-1] + 100))
    end = draw(st.integers(start + 1, times[-1] + 20_000))
    return points, start, end


@given(series_and_window())
def test_geometric_twap_is_never_above_arithmetic(
    case: tuple[list[tuple[int, Fraction]], int, int],
) -> None:
    points, start, end = case
    assert F(geometric_twap(points, start, end)) <= arithmetic_twap(points, start, end)


@given(series_and_window())
def test_arithmetic_twap_lies_between_the_prices_it_averages(
    case: tuple[list[tuple[int, Fraction]], int, int],
) -> None:
    points, start, end = case
    live = [
        p
        for i, (t, p) in enumerate(points)
        if t < end and (i + 1 == len(points) or points[i + 1][0] > start)
    ]
    twap = arithmetic_twap(points, start, end)
    assert min(live) <= twap <= max(live)
    assert min(live) * (1 - F(1, 10**58)) <= F(geometric_twap(points, start, end)) <= max(live)


@given(series_and_window(), st.data())
def test_arithmetic_twap_is_additive_over_adjacent_windows(
    case: tuple[list[tuple[int, Fraction]], int, int], data: st.DataObject
) -> None:
    points, start, end = case
    if end - start < 2:
        return
    middle = data.draw(st.integers(start + 1, end - 1))
    whole = arithmetic_twap(points, start, end) * (end - start)
    left = arithmetic_twap(points, start, middle) * (middle - start)
    right = arithmetic_twap(points, middle, end) * (end - middle)
    assert whole == left + right


@given(prices, st.lists(st.integers(1, 10_000), max_size=6), st.integers(1, 50_000))
def test_twap_of_a_constant_series_is_the_constant(
    price: Fraction, gaps: list[int], length: int
) -> None:
    times = [0]
    for gap in gaps:
        times.append(times[-1] + gap)
    points = [(t, price) for t in times]  # repeated observations of the same price
    assert arithmetic_twap(points, 0, length) == price
    geometric = geometric_twap(points, 0, length)
    assert geometric <= rounded60(price)  # the 60-digit value, never rounded above the constant
    assert price - F(geometric) < price * F(1, 10**59)


@given(st.integers(1, 10**30), st.integers(0, 20), st.integers(1, 10**6))
def test_geometric_twap_of_a_60_digit_constant_is_exactly_it(
    digits: int, places: int, length: int
) -> None:
    price = F(digits, 10**places)  # at most 31 significant digits: representable
    assert geometric_twap([(0, price)], 0, length) == D(
        f"{digits}E-{places}"
    )  # the constructor is exact


# --- our PriceOracle accumulator ----------------------------------------------------------------


def test_accumulator_twap_by_hand() -> None:
    # $0.25 (0.25·10^18) for 600 s then $0.40 for 1200 s:
    # Σ = 0.25e18·600 + 0.40e18·1200 = 150e18 + 480e18 = 630e18 over 1800 s → $0.35
    older = Cumulative(10_000, 7 * 10**18)  # whatever it held before
    newer = Cumulative(11_800, 7 * 10**18 + 630 * 10**18)
    assert accumulator_twap(older, newer) == F(35, 100)
    # a different fixed-point scale: 8 decimals (Chainlink style)
    assert accumulator_twap(Cumulative(0, 0), Cumulative(10, 10 * 25_000_000), scale=10**8) == F(
        1, 4
    )


def test_accumulator_twap_refuses_bad_inputs() -> None:
    with pytest.raises(OracleError, match="must grow"):
        accumulator_twap(Cumulative(0, 10), Cumulative(10, 10))
    with pytest.raises(OracleError, match="must grow"):
        accumulator_twap(Cumulative(0, 10), Cumulative(10, 5))
    with pytest.raises(OracleError, match="later than the older"):
        accumulator_twap(Cumulative(10, 0), Cumulative(10, 5))
    with pytest.raises(OracleError, match="scale must be positive"):
        accumulator_twap(Cumulative(0, 0), Cumulative(10, 5), scale=0)


@given(st.lists(st.tuples(st.integers(1, 10**24), st.integers(1, 10**5)), min_size=1, max_size=8))
def test_accumulator_twap_equals_the_arithmetic_twap_of_the_same_series(
    segments: list[tuple[int, int]],
) -> None:
    # build the contract's accumulator from fixed-point prices, and the same series as observations
    value, now = 0, 0
    points: list[tuple[int, Fraction]] = []
    for fixed_point_price, seconds in segments:
        points.append((now, F(fixed_point_price, 10**18)))
        value += fixed_point_price * seconds
        now += seconds
    assert accumulator_twap(Cumulative(0, 0), Cumulative(now, value)) == arithmetic_twap(
        points, 0, now
    )
