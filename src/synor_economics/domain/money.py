"""Exact money: SYNOR amounts as integer base units, exact decimals for rates (SPEC §1).

Every stored or posted amount is an ``int`` of base units; 1 SYNOR = 10**18 base units. Unit
prices, quantities and exchange rates are exact: ``Decimal`` parsed from strings, or ``Fraction``
when a division (core-seconds → core-hours) would not terminate. A float is refused everywhere in
this module, because a float near money is a bug waiting for a large enough number.

Rounding to base units happens in one place, :func:`to_base_units`, always HALF_EVEN. Splitting an
amount among parties happens in one place, :func:`allocate`, by largest remainder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, localcontext
from fractions import Fraction

from synor_economics.domain.errors import MoneyError

DECIMALS = 18
"""SYNOR has 18 decimals, like most ERC-20 tokens."""

BASE = 10**DECIMALS
"""Base units in one SYNOR."""

BaseUnits = int
"""An amount of SYNOR in base units. A plain ``int``: exact, unbounded, JSON-safe as a string."""

Exact = int | Decimal | Fraction
"""A number that is exact by construction: what rates, quantities and unrated amounts may be."""

_DECIMAL_TEXT = re.compile(r"(?P<sign>[+-]?)(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
# Matched with ``fullmatch`` and ASCII digits only: "1\n" and "１" (fullwidth) are not amounts.


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _match_decimal(text: object, what: str) -> re.Match[str]:
    """Match plain decimal notation only: no exponent, no underscores, no spaces, no NaN."""
    if isinstance(text, float):
        raise MoneyError(
            f"{what} must be a decimal string, not a float ({text!r}): floats are inexact"
        )
    if not isinstance(text, str):
        raise MoneyError(f"{what} must be a decimal string, got {type(text).__name__}")
    found = _DECIMAL_TEXT.fullmatch(text)
    if found is None:
        raise MoneyError(f"{what} is not a plain decimal number: {_describe(text)}")
    return found


def parse_synor(text: str, *, what: str = "amount") -> BaseUnits:
    """Parse a decimal SYNOR string ("1.5") into base units, exactly.

    Refuses floats, exponents, more than 18 decimals and anything that is not plain decimal
    notation, with a message that names ``what`` was being parsed.
    """
    found = _match_decimal(text, what)
    frac = found["frac"] or ""
    if len(frac) > DECIMALS:
        raise MoneyError(
            f"{what} has {len(frac)} decimals; SYNOR has at most {DECIMALS}: {_describe(text)}"
        )
    units: int = int(found["int"]) * BASE + int(frac.ljust(DECIMALS, "0") or "0")
    return -units if found["sign"] == "-" else units


def parse_base_units(text: str | int, *, what: str = "amount") -> BaseUnits:
    """Parse an amount already in base units: an integer string (JSON) or an ``int``."""
    if isinstance(text, bool | float):
        raise MoneyError(f"{what} must be an integer of base units, not {type(text).__name__}")
    if isinstance(text, int):
        return int(text)
    if not isinstance(text, str) or not _INTEGER_TEXT.fullmatch(text):
        raise MoneyError(f"{what} must be an integer string of base units: {_describe(text)}")
    return int(text)


def parse_decimal(text: str | int | Decimal, *, what: str = "value") -> Decimal:
    """Parse an exact decimal (a price, a quantity, a rate) from plain decimal notation."""
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise MoneyError(f"{what} must be a finite decimal: {text}")
        return text
    if isinstance(text, int) and not isinstance(text, bool):
        return Decimal(text)
    _match_decimal(text, what)
    assert isinstance(text, str)
    return Decimal(text)


def format_synor(units: BaseUnits) -> str:
    """Render base units as an exact SYNOR decimal string, without trailing zeros ("1.5")."""
    _require_int(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), BASE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(DECIMALS, '0').rstrip('0')}"


def display_synor(units: BaseUnits, places: int = 4) -> str:
    """Render base units for people: ``places`` decimals (HALF_EVEN), thousands separated.

    Display only: never parse this back. JSON carries the exact base-unit string beside it.
    """
    _require_int(units)
    rounded = round_half_even(Fraction(units, BASE) * 10**places)
    sign = "-" if rounded < 0 else ""
    whole, frac = divmod(abs(rounded), 10**places)
    text = f"{whole:,}"
    return f"{sign}{text}.{str(frac).rjust(places, '0')}" if places else f"{sign}{text}"


def format_usd(value: Exact) -> str:
    """Render a USD amount with 2 decimals, HALF_EVEN (SPEC §1: USD is informational)."""
    cents = round_half_even(exact(value, what="USD amount") * 100)
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}{dollars}.{rest:02d}"


def exact(value: Exact, *, what: str = "value") -> Fraction:
    """Convert an exact number to a ``Fraction``; refuse floats and booleans."""
    if type(value) is Fraction:
        return value  # immutable: no copy needed (the common case, on every rating path)
    if isinstance(value, bool | float):
        raise MoneyError(
            f"{what} must be exact (int, Decimal or Fraction), not {type(value).__name__}"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{what} must be finite: {value}")
        return Fraction(value)
    if isinstance(value, int | Fraction):
        return Fraction(value)
    raise MoneyError(f"{what} must be exact (int, Decimal or Fraction), not {type(value).__name__}")


def round_half_even(value: Fraction) -> int:
    """Round an exact fraction to the nearest integer, ties to even. The only rounding rule."""
    value = exact(value)
    return round_ratio(value.numerator, value.denominator)


def round_ratio(numerator: int, denominator: int) -> int:
    """``round_half_even(numerator / denominator)`` for a positive denominator, without making a
    Fraction (whose normalisation is most of the cost on the rating path)."""
    floor, rest = divmod(numerator, denominator)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and floor % 2 == 1):
        return floor + 1
    return floor


def to_base_units(synor: Exact) -> BaseUnits:
    """Round an exact SYNOR amount to base units, HALF_EVEN: the one rounding per invoice line."""
    return round_half_even(exact(synor, what="SYNOR amount") * BASE)


def decimal_text(value: Exact, places: int = DECIMALS) -> str:
    """Render an exact number as a decimal string: exact when it terminates within ``places``
    decimals, otherwise rounded HALF_EVEN to ``places`` (display of quantities, SPEC §10)."""
    frac = exact(value)
    scaled = round_ratio(frac.numerator * 10**places, frac.denominator)
    sign = "-" if scaled < 0 else ""
    whole, rest = divmod(abs(scaled), 10**places)
    if rest == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(rest).rjust(places, '0').rstrip('0')}"


def decimal_of(value: Fraction, *, digits: int = 80) -> Decimal:
    """A ``Decimal`` equal to ``value`` when it terminates (used for display and storage)."""
    value = exact(value)
    with localcontext() as ctx:
        ctx.prec = digits
        return Decimal(value.numerator) / Decimal(value.denominator)


def allocate(total: BaseUnits, weights: Mapping[str, Exact]) -> dict[str, BaseUnits]:
    """Split ``total`` among parties in proportion to ``weights``, by largest remainder (SPEC §1).

    Every share is floored, then the leftover base units go one each to the largest fractional
    remainders, ties broken by party id ascending. ``sum(result.values()) == total`` always. A
    negative total is split as the mirror image of its absolute value, so a refund of a split
    undoes the split exactly. Weights must be exact and non-negative with a positive sum.
    """
    _require_int(total)
    if total < 0:
        return {party: -share for party, share in allocate(-total, weights).items()}
    if not weights:
        raise MoneyError("allocate needs at least one party")
    exact_weights = {party: exact(w, what=f"weight of {party!r}") for party, w in weights.items()}
    if any(w < 0 for w in exact_weights.values()):
        raise MoneyError("allocation weights must not be negative")
    weight_sum = sum(exact_weights.values(), Fraction(0))
    if weight_sum == 0:
        raise MoneyError("allocation weights sum to zero: nobody to allocate to")
    shares: dict[str, int] = {}
    remainders: list[tuple[Fraction, str]] = []
    for party, weight in exact_weights.items():
        ideal = total * weight / weight_sum
        floor = ideal.numerator // ideal.denominator
        shares[party] = floor
        remainders.append((ideal - floor, party))
    leftover = total - sum(shares.values())
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, party in remainders[:leftover]:
        shares[party] += 1
    return shares


def _require_int(units: object) -> None:
    if not isinstance(units, int) or isinstance(units, bool):
        raise MoneyError(f"base units must be an int, not {type(units).__name__}")
