"""Exact money (SPEC §1): parsing, formatting, HALF_EVEN rounding and largest-remainder splits.

Hand-worked examples carry their arithmetic in comments; properties check the same rules against
brute-force references built on ``Fraction``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synor_economics.domain.errors import MoneyError
from synor_economics.domain.money import (
    BASE,
    DECIMALS,
    allocate,
    decimal_of,
    decimal_text,
    display_synor,
    exact,
    format_synor,
    format_usd,
    parse_base_units,
    parse_decimal,
    parse_synor,
    round_half_even,
    to_base_units,
)

D = Decimal
F = Fraction

# --- parse_synor: exact values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("1.5", 1_500_000_000_000_000_000),  # 1.5 × 10^18
        ("0.000000000000000001", 1),  # the smallest base unit: 10^-18 SYNOR
        ("-2", -2 * 10**18),
        ("+3", 3 * 10**18),
        ("0", 0),
        ("-0", 0),
        ("000.10", 10**17),  # leading zeros are harmless; 0.1 × 10^18
        ("1.000000000000000000", 10**18),  # exactly 18 decimals is allowed
        ("123456789.123456789123456789", 123456789_123456789123456789),
        ("99999999999999999999999999999999", (10**32 - 1) * 10**18),  # no size limit
    ],
)
def test_parse_synor_exact_values(text: str, units: int) -> None:
    assert parse_synor(text) == units
    assert type(parse_synor(text)) is int


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(1.5, id="float"),
        pytest.param("1e3", id="exponent"),
        pytest.param("1E3", id="exponent-upper"),
        pytest.param("1_000", id="underscores"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param("\t1", id="tab"),
        pytest.param("", id="empty"),
        pytest.param("1.", id="trailing-dot"),
        pytest.param(".5", id="leading-dot"),
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("inf", id="inf"),
        pytest.param("-", id="bare-sign"),
        pytest.param("--1", id="double-sign"),
        pytest.param("+-1", id="mixed-sign"),
        pytest.param("0x10", id="hex"),
        pytest.param("1,5", id="comma"),
        pytest.param("1.2.3", id="two-dots"),
        pytest.param("1.0000000000000000001", id="19-decimals"),
        pytest.param("1.0000000000000000000", id="19-decimals-all-zero"),
        pytest.param(1, id="int"),
        pytest.param(D("1.5"), id="Decimal"),
        pytest.param(F(3, 2), id="Fraction"),
        pytest.param(None, id="None"),
        pytest.param(b"1", id="bytes"),
    ],
)
def test_parse_synor_refuses_with_a_message_naming_what(bad: Any) -> None:
    with pytest.raises(MoneyError, match="deposit amount"):
        parse_synor(bad, what="deposit amount")


def test_parse_synor_says_why_a_float_is_refused() -> None:
    with pytest.raises(MoneyError, match=r"price must be a decimal string, not a float \(1\.5\)"):
        parse_synor(1.5, what="price")  # type: ignore[arg-type]


def test_parse_synor_says_how_many_decimals_were_too_many() -> None:
    with pytest.raises(MoneyError, match="has 19 decimals; SYNOR has at most 18"):
        parse_synor("0." + "1" * 19)


def test_money_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_synor("abc")


@pytest.mark.parametrize(
    "parse", [parse_synor, parse_base_units, parse_decimal], ids=lambda f: f.__name__
)
def test_a_trailing_newline_is_refused(parse: Callable[..., Any]) -> None:
    with pytest.raises(MoneyError):
        parse("1\n")


@pytest.mark.parametrize("text", ["\u0661", "\uff11", "1.\u0665"])
def test_non_ascii_digits_are_refused(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_synor(text)


# --- parse_base_units and parse_decimal -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "units"),
    [("123", 123), ("-5", -5), ("+7", 7), (42, 42), ("0", 0), (str(10**40), 10**40)],
)
def test_parse_base_units_accepts_integer_strings_and_ints(value: str | int, units: int) -> None:
    assert parse_base_units(value) == units


@pytest.mark.parametrize("bad", [1.5, 2.0, True, None, "1.5", "1e3", "", " 1", D(1), "1_0"])
def test_parse_base_units_refuses_anything_else(bad: Any) -> None:
    with pytest.raises(MoneyError, match="fee"):
        parse_base_units(bad, what="fee")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.01", D("0.01")), ("-3.50", D("-3.50")), (7, D(7)), (D("0.125"), D("0.125"))],
)
def test_parse_decimal_is_exact(value: Any, expected: Decimal) -> None:
    parsed = parse_decimal(value)
    assert isinstance(parsed, Decimal)
    assert parsed == expected
    assert str(parsed) == str(expected)  # no rounding, no lost trailing digits


@pytest.mark.parametrize(
    "bad", [D("NaN"), D("Infinity"), D("-Infinity"), "1e3", "NaN", True, 0.5, None, F(1, 2)]
)
def test_parse_decimal_refuses_non_plain_or_non_finite(bad: Any) -> None:
    with pytest.raises(MoneyError, match="unit price"):
        parse_decimal(bad, what="unit price")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, F(3)), (D("0.1"), F(1, 10)), (F(5, 18), F(5, 18)), (D("-2.5"), F(-5, 2))],
)
def test_exact_converts_to_fraction(value: Any, expected: Fraction) -> None:
    assert exact(value) == expected
    assert isinstance(exact(value), Fraction)


@pytest.mark.parametrize("bad", [True, False, 0.1, D("NaN"), D("sNaN"), D("Infinity"), "1", None])
def test_exact_refuses(bad: Any) -> None:
    with pytest.raises(MoneyError, match="rate"):
        exact(bad, what="rate")


# --- format_synor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (1_500_000_000_000_000_000, "1.5"),
        (0, "0"),
        (1, "0.000000000000000001"),
        (-1, "-0.000000000000000001"),
        (10**18, "1"),
        (-25 * 10**17, "-2.5"),
        (10**17, "0.1"),
        (123 * 10**18 + 10**16, "123.01"),
        (10**40, "1" + "0" * 22),  # 10^40 base units = 10^22 SYNOR
    ],
)
def test_format_synor_examples(units: int, text: str) -> None:
    assert format_synor(units) == text


@pytest.mark.parametrize("bad", [1.5, True, D(1), F(1), "1", None])
def test_format_synor_refuses_non_ints(bad: Any) -> None:
    with pytest.raises(MoneyError, match="base units must be an int"):
        format_synor(bad)


@given(st.integers() | st.integers(min_value=-(10**80), max_value=10**80))
def test_parse_format_round_trip(units: int) -> None:
    assert parse_synor(format_synor(units)) == units


@given(st.integers(min_value=-(10**60), max_value=10**60))
def test_format_synor_has_no_trailing_zeros_or_dot(units: int) -> None:
    text = format_synor(units)
    assert not text.endswith(".")
    if "." in text:
        fraction_part = text.split(".", 1)[1]
        assert not fraction_part.endswith("0")
        assert 1 <= len(fraction_part) <= DECIMALS
    assert text != "-0"
    whole = text.lstrip("-").split(".")[0]
    assert whole == "0" or not whole.startswith("0")  # no leading zeros


# --- round_half_even and to_base_units ---------------------------------------------------------


def reference_half_even(value: Fraction) -> int:
    """Brute force: the nearer of the two neighbouring integers; on a tie, the even one."""
    low = math.floor(value)
    high = low + 1
    below, above = value - low, high - value
    if below < above:
        return low
    if above < below:
        return high
    return low if low % 2 == 0 else high


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (F(1, 2), 0),  # tie → even 0
        (F(3, 2), 2),  # tie → even 2
        (F(5, 2), 2),  # tie → even 2
        (F(7, 2), 4),
        (F(-1, 2), 0),  # tie → even 0 (not −1)
        (F(-3, 2), -2),  # tie → even −2
        (F(-5, 2), -2),
        (F(1, 3), 0),
        (F(2, 3), 1),
        (F(-2, 3), -1),
        (F(0), 0),
        (F(7), 7),
        (F(-7), -7),
        (F(10**30 + 1, 2), 10**30 // 2),  # (10^30 + 1)/2 = 5·10^29 + 0.5, tie → even 5·10^29
    ],
)
def test_round_half_even_examples(value: Fraction, rounded: int) -> None:
    assert round_half_even(value) == rounded
    assert reference_half_even(value) == rounded  # the reference agrees with the hand arithmetic


@given(st.fractions())
def test_round_half_even_matches_brute_force(value: Fraction) -> None:
    assert round_half_even(value) == reference_half_even(value)


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_round_half_even_of_exact_halves_is_always_even(n: int) -> None:
    # n + 1/2 sits exactly between n and n + 1: the result is whichever of them is even
    rounded = round_half_even(F(2 * n + 1, 2))
    assert rounded in (n, n + 1)
    assert rounded % 2 == 0


@pytest.mark.parametrize(
    ("synor", "units"),
    [
        (F(1, 2 * 10**18), 0),  # 0.5 base units → even 0
        (F(3, 2 * 10**18), 2),  # 1.5 base units → even 2
        (F(5, 2 * 10**18), 2),  # 2.5 base units → even 2
        (-F(3, 2 * 10**18), -2),  # −1.5 → even −2
        (D("0.0000000000000000025"), 2),  # 2.5 base units → 2
        (D("0.0000000000000000035"), 4),  # 3.5 base units → 4
        # Rounded once: 1.49 base units → 1. Rounding twice (first to 1.5, then to an integer)
        # would give 2.
        (D("0.00000000000000000149"), 1),
        (F(1, 3), 333_333_333_333_333_333),  # 0.333…3|33… → down
        (F(2, 3), 666_666_666_666_666_667),  # 0.666…6|66… → up
        (2, 2 * 10**18),
        (D("1.5"), 15 * 10**17),
    ],
)
def test_to_base_units_rounds_once_half_even(synor: Any, units: int) -> None:
    assert to_base_units(synor) == units


@given(st.fractions())
def test_to_base_units_is_within_half_a_base_unit(synor: Fraction) -> None:
    units = to_base_units(synor)
    assert abs(units - synor * BASE) <= F(1, 2)
    assert units == reference_half_even(synor * BASE)


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=0, max_value=18))
def test_to_base_units_of_a_short_decimal_equals_parsing_its_text(digits: int, places: int) -> None:
    value = D(f"{digits}E-{places}")  # the constructor is exact: no context rounding
    text = format(value, "f")  # plain notation, at most 18 decimals
    assert "E" not in text
    assert to_base_units(value) == parse_synor(text)
    assert to_base_units(value) == digits * 10 ** (DECIMALS - places)


# --- allocate ----------------------------------------------------------------------------------


def test_allocate_exact_split() -> None:
    # 100 × 70/100 = 70, 100 × 20/100 = 20, 100 × 10/100 = 10: no remainders
    assert allocate(100, {"op": 70, "treasury": 20, "burn": 10}) == {
        "op": 70,
        "treasury": 20,
        "burn": 10,
    }


def test_allocate_thirds_gives_the_leftover_to_the_smallest_id() -> None:
    # 10/3 = 3.33… each; floors 3 + 3 + 3 = 9; 1 left over; equal remainders → "a" first
    assert allocate(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert allocate(10, {"c": 1, "b": 1, "a": 1}) == {"a": 4, "b": 3, "c": 3}


def test_allocate_ties_go_by_party_id_not_by_insertion_order() -> None:
    # 1/2 each, floors 0 + 0, 1 left over, equal remainders → "a"
    assert allocate(1, {"b": 1, "a": 1}) == {"a": 1, "b": 0}
    # 2/3 each, floors 0, 2 left over → "a" and "b"
    assert allocate(2, {"c": 1, "b": 1, "a": 1}) == {"a": 1, "b": 1, "c": 0}


def test_allocate_largest_remainder_beats_party_id() -> None:
    # 10 × 1/3 = 3.33…, 10 × 2/3 = 6.66…; floors 3 + 6 = 9; the larger remainder (b: 0.66…) wins
    assert allocate(10, {"a": 1, "b": 2}) == {"a": 3, "b": 7}
    # 7 × 0.5 = 3.5, 7 × 0.3 = 2.1, 7 × 0.2 = 1.4; floors 3 + 2 + 1 = 6; "op" (0.5) gets the 1
    assert allocate(7, {"burn": D("0.2"), "op": D("0.5"), "treasury": D("0.3")}) == {
        "burn": 1,
        "op": 4,
        "treasury": 2,
    }


def test_allocate_negative_total_mirrors_the_positive_split() -> None:
    # a refund of a split undoes the split exactly
    assert allocate(-10, {"a": 1, "b": 1, "c": 1}) == {"a": -4, "b": -3, "c": -3}
    assert allocate(-1, {"b": 1, "a": 1}) == {"a": -1, "b": 0}


def test_allocate_zero_total_and_zero_weights() -> None:
    assert allocate(0, {"a": 1, "b": 2}) == {"a": 0, "b": 0}
    # 9 × 1/3 = 3, 9 × 2/3 = 6; the zero-weight party gets nothing
    assert allocate(9, {"a": 1, "b": 2, "z": 0}) == {"a": 3, "b": 6, "z": 0}


def test_allocate_mixes_exact_weight_types() -> None:
    # weights 1, 0.5, 1/2 → 2 : 1 : 1 of 8 = 4, 2, 2
    assert allocate(8, {"a": 1, "b": D("0.5"), "c": F(1, 2)}) == {"a": 4, "b": 2, "c": 2}


def test_allocate_huge_total() -> None:
    total = 10**30 + 1
    # 10^30 + 1 = 3q + 2 with q = (10^30 − 1)/3. x's ideal is (3q + 2)/3 = q + 2/3, y's is
    # 2(3q + 2)/3 = 2q + 1 + 1/3. Floors q + (2q + 1) = 3q + 1 leave 1 unit: x has the larger
    # remainder (2/3), so x = q + 1 = (10^30 + 2)/3 and y = 2q + 1 = (2·10^30 + 1)/3.
    parts = allocate(total, {"x": F(1, 3), "y": F(2, 3)})
    assert parts == {"x": (10**30 + 2) // 3, "y": (2 * 10**30 + 1) // 3}
    assert (10**30 + 2) % 3 == 0  # the divisions above are exact
    assert (2 * 10**30 + 1) % 3 == 0
    assert sum(parts.values()) == total


@pytest.mark.parametrize(
    ("total", "weights", "message"),
    [
        (10, {}, "at least one party"),
        (10, {"a": -1, "b": 2}, "must not be negative"),
        (10, {"a": 0, "b": 0}, "sum to zero"),
        (10, {"a": D("NaN")}, "weight of 'a'"),
        (10, {"a": "1"}, "weight of 'a'"),
        (10, {"a": True}, "weight of 'a'"),
        (True, {"a": 1}, "base units must be an int"),
        (D(10), {"a": 1}, "base units must be an int"),
    ],
)
def test_allocate_refuses(total: Any, weights: Any, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        allocate(total, weights)


party_ids = st.text(alphabet="abcdefxyz_", min_size=1, max_size=5)
exact_weights = st.one_of(
    st.integers(min_value=0, max_value=1000),
    st.fractions(min_value=0, max_value=1000, max_denominator=1000),
    st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300)
@given(
    total=st.integers(min_value=0, max_value=10**30),
    weights=st.dictionaries(party_ids, exact_weights, min_size=1, max_size=8).filter(
        lambda w: sum(exact(v) for v in w.values()) > 0
    ),
)
def test_allocate_largest_remainder_properties(total: int, weights: dict[str, Any]) -> None:
    parts = allocate(total, weights)
    assert set(parts) == set(weights)
    assert all(type(p) is int for p in parts.values())
    assert sum(parts.values()) == total

    weight_sum = sum(exact(w) for w in weights.values())
    ideal = {party: total * exact(w) / weight_sum for party, w in weights.items()}
    extra = {party: parts[party] - math.floor(ideal[party]) for party in parts}
    assert set(extra.values()) <= {0, 1}  # every part is floor(ideal) or floor(ideal) + 1
    for party, w in weights.items():
        if exact(w) == 0:
            assert parts[party] == 0

    # the extra units went to the largest remainders, ties by party id ascending
    def rank(party: str) -> tuple[Fraction, str]:
        return (-(ideal[party] - math.floor(ideal[party])), party)

    winners = [p for p in parts if extra[p] == 1]
    losers = [p for p in parts if extra[p] == 0]
    for winner in winners:
        for loser in losers:
            assert rank(winner) < rank(loser)

    assert allocate(-total, weights) == {party: -part for party, part in parts.items()}


# --- no float accepted anywhere ----------------------------------------------------------------

FLOAT_CALLS: list[Any] = [
    pytest.param(parse_synor, id="parse_synor"),
    pytest.param(parse_base_units, id="parse_base_units"),
    pytest.param(parse_decimal, id="parse_decimal"),
    pytest.param(exact, id="exact"),
    pytest.param(to_base_units, id="to_base_units"),
    pytest.param(format_usd, id="format_usd"),
    pytest.param(decimal_text, id="decimal_text"),
    pytest.param(lambda x: allocate(10, {"a": 1, "b": x}), id="allocate-weight"),
    pytest.param(lambda x: allocate(x, {"a": 1}), id="allocate-total"),
    pytest.param(lambda x: allocate(-10, {"a": x}), id="allocate-weight-negative-total"),
    pytest.param(format_synor, id="format_synor"),
    pytest.param(display_synor, id="display_synor"),
    pytest.param(
        round_half_even,
        id="round_half_even",
    ),
    pytest.param(
        decimal_of,
        id="decimal_of",
    ),
]


@pytest.mark.parametrize("call", FLOAT_CALLS)
@pytest.mark.parametrize("value", [1.5, 0.0, 100.0, -2.25])
def test_no_float_is_accepted_anywhere(call: Callable[[Any], object], value: float) -> None:
    with pytest.raises(MoneyError):
        call(value)


# --- display_synor, format_usd, decimal_text ---------------------------------------------------


@pytest.mark.parametrize(
    ("units", "places", "text"),
    [
        (12_345_678_900_000_000_000_000, 4, "12,345.6789"),  # 12345.6789 SYNOR
        # −12345.67895 × 10^4 = −123456789.5, tie → even −123456790
        (-12_345_678_950_000_000_000_000, 4, "-12,345.6790"),
        (15 * 10**17, 0, "2"),  # 1.5 → even 2
        (25 * 10**17, 0, "2"),  # 2.5 → even 2
        (0, 4, "0.0000"),
        (1, 4, "0.0000"),  # 10^-18 rounds away
        (-1, 4, "0.0000"),  # no "-0.0000"
        (10**24, 2, "1,000,000.00"),
        (5 * 10**13, 4, "0.0000"),  # 0.00005 → 0.5 at 4 places → even 0
        (15 * 10**13, 4, "0.0002"),  # 0.00015 → 1.5 → even 2
    ],
)
def test_display_synor(units: int, places: int, text: str) -> None:
    assert display_synor(units, places) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("2.345"), "2.34"),  # 234.5 cents → even 234
        (D("2.355"), "2.36"),  # 235.5 cents → even 236
        (D("-2.345"), "-2.34"),
        (D("0.005"), "0.00"),  # 0.5 cents → even 0
        (D("0.015"), "0.02"),  # 1.5 cents → even 2
        (D("-0.004"), "0.00"),  # no "-0.00"
        (F(1, 3), "0.33"),
        (1000, "1000.00"),
        (D("1234567.891"), "1234567.89"),
    ],
)
def test_format_usd(value: Any, text: str) -> None:
    assert format_usd(value) == text


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (F(1, 3), 18, "0.333333333333333333"),
        # 5/18 = 0.2777…; the 19th digit is 7, so the 18th rounds up
        (F(5, 18), 18, "0.277777777777777778"),
        (F(-1, 3), 18, "-0.333333333333333333"),
        (D("200"), 18, "200"),
        (D("0.50"), 18, "0.5"),
        (D("1.000"), 18, "1"),
        (F(1, 2 * 10**18), 18, "0"),  # 0.5 × 10^-18, tie → even 0
        (F(3, 2 * 10**18), 18, "0.000000000000000002"),  # 1.5 × 10^-18 → 2 × 10^-18
        (F(1, 8), 2, "0.12"),  # 12.5 hundredths → even 12
        (F(3, 8), 2, "0.38"),  # 37.5 hundredths → even 38
        (7, 0, "7"),
    ],
)
def test_decimal_text(value: Any, places: int, text: str) -> None:
    assert decimal_text(value, places) == text


def test_decimal_of_is_exact_for_terminating_fractions() -> None:
    assert decimal_of(F(5, 8)) == D("0.625")
    assert decimal_of(F(1, 10**40)) == D("1E-40")
