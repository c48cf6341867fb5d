"""One SYNOR/USD price from several sources' TWAPs (SPEC §8).

Each source (a v2 pair, a v3 pool, an off-chain feed) has already been reduced to a TWAP by
:mod:`synor_economics.domain.twap`. This module decides which of them to believe and combines them:

1. **Eligibility.** A source with too little accumulator history, liquidity below a floor or a
   non-positive price is excluded before anything else: a short history means the "average" is
   close to a spot price, and a thin pool is cheap to move.
2. **Liquidity-weighted median.** The median resists a minority of manipulated pools (moving it
   means owning more than half of the weight, not one pool), and weighting by liquidity means
   that "a majority" is counted in dollars of depth, which is what manipulation costs.
3. **Outliers.** A source further than ``max_deviation`` from that median is rejected: it is either
   being manipulated or broken, and either way it should not widen the interval.
4. **Quorum.** Fewer survivors than the quorum give no price at all; the caller keeps the last
   good price and marks it stale (SPEC §8), rather than publish what one or two pools say.
5. **Price and confidence.** The price is the liquidity-weighted median of the survivors; the
   interval is that price ∓ the survivors' liquidity-weighted mean absolute deviation from it.
   The MAD is exact in rationals and reads as "typical disagreement between sources".

All arithmetic is in ``Fraction``: no rounding happens here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from synor_economics.domain.money import decimal_text
from synor_economics.domain.twap import OracleError, exact_input


@dataclass(frozen=True, slots=True)
class SourceQuote:
    """One source's quote for one round: ``price`` in USD per SYNOR (already a TWAP),
    ``liquidity`` the source's depth in USD (its weight), ``history`` the seconds of accumulator
    history behind the TWAP. Numbers are normalised to ``Fraction``; floats are refused."""

    source: str
    price: Fraction
    liquidity: Fraction
    history: int

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise OracleError(f"a source needs a non-empty name, got {self.source!r}")
        object.__setattr__(self, "price", exact_input(self.price, f"{self.source}: price"))
        object.__setattr__(
            self, "liquidity", exact_input(self.liquidity, f"{self.source}: liquidity")
        )
        if isinstance(self.history, bool) or not isinstance(self.history, int):
            raise OracleError(f"{self.source}: history must be an int of seconds")


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules a round is judged by (defaults from SPEC §8).

    ``quorum``: sources that must survive; ``min_history``: seconds of accumulator history a
    source needs (the TWAP window); ``liquidity_floor``: USD depth below which a pool is too cheap
    to move to count; ``max_deviation``: the largest relative distance from the median a source
    may sit at before it is an outlier.
    """

    quorum: int = 3
    min_history: int = 1800
    liquidity_floor: Fraction = Fraction(10_000)
    max_deviation: Fraction = Fraction(5, 100)

    def __post_init__(self) -> None:
        for value, what in ((self.quorum, "quorum"), (self.min_history, "min_history")):
            if isinstance(value, bool) or not isinstance(value, int):
                raise OracleError(f"{what} must be an int, not {type(value).__name__}")
        if self.quorum < 1:
            raise OracleError(f"the quorum must be at least 1, got {self.quorum}")
        if self.min_history < 0:
            raise OracleError(f"min_history must not be negative, got {self.min_history}")
        floor = exact_input(self.liquidity_floor, "liquidity_floor")
        deviation = exact_input(self.max_deviation, "max_deviation")
        if floor < 0:
            raise OracleError(f"the liquidity floor must not be negative, got {floor}")
        if deviation < 0:
            raise OracleError(f"max_deviation must not be negative, got {deviation}")
        object.__setattr__(self, "liquidity_floor", floor)
        object.__setattr__(self, "max_deviation", deviation)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """The outcome of one round.

    ``price`` is ``None`` when the quorum was not met (``quorum_met`` is then False and ``used``
    lists the sources that did survive). ``rejected`` pairs each excluded source with the reason,
    in the order the quotes came in.
    """

    price: Fraction | None
    low: Fraction | None
    high: Fraction | None
    used: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    quorum_met: bool

    @property
    def confidence(self) -> Fraction | None:
        """The half-width of the interval, ``(high − low) / 2``; ``None`` without a price."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


def weighted_median(values: Sequence[tuple[Fraction, Fraction]]) -> Fraction:
    """The weighted median of ``(price, weight)`` pairs; weights must be positive.

    Sorted by price, the median is the first price at which the cumulative weight reaches at least
    half the total. If it reaches exactly half at some price, the median is the mean of that price
    and the next one: the weighted analogue of the even-count median, and the midpoint of the
    interval where Σ wᵢ|pᵢ − x| is smallest. Equal prices are merged first, so the order of the
    input never matters.
    """
    if len(values) == 0:
        raise OracleError("the weighted median of nothing is undefined")
    merged: dict[Fraction, Fraction] = {}
    for index, (raw_price, raw_weight) in enumerate(values):
        price = exact_input(raw_price, f"price {index}")
        weight = exact_input(raw_weight, f"weight {index}")
        if weight <= 0:
            raise OracleError(f"weight {index} must be positive, got {weight}")
        merged[price] = merged.get(price, Fraction(0)) + weight
    ladder = sorted(merged.items())
    total = sum(merged.values(), Fraction(0))
    cumulative = Fraction(0)
    for index, (price, weight) in enumerate(ladder):
        cumulative += weight
        if 2 * cumulative > total:
            return price
        if 2 * cumulative == total:
            # not the last rung: the weights above it make up the other half, and they are > 0
            return (price + ladder[index + 1][0]) / 2
    raise AssertionError("unreachable: the cumulative weight always reaches the total")


def aggregate(quotes: Sequence[SourceQuote], policy: Policy) -> Aggregate:
    """Combine one round of source quotes into a price with a confidence interval.

    The rules, in order (the module docstring says why each exists):

    1. exclude a source with ``history < min_history`` ("too little history: …"), with
       ``liquidity < liquidity_floor`` ("liquidity below the floor: …"), with no liquidity at all
       (possible only with a zero floor; a weight must be positive) or with a non-positive price;
    2. take the liquidity-weighted median of the rest;
    3. reject as an outlier each source whose ``|p − m| / m`` exceeds ``max_deviation`` (one pass:
       a second pass would let the survivors drift toward whoever is left);
    4. with fewer survivors than the quorum, return no price (``quorum_met`` False);
    5. otherwise the price is the liquidity-weighted median of the survivors and the interval is
       the price ∓ their liquidity-weighted mean absolute deviation from it. The low end is floored
       at zero: a price is positive, and a negative bound (possible only with a very loose
       ``max_deviation``) would say nothing true.

    Duplicate source names are an error: a source counted twice would double its weight.
    """
    _require_unique(quotes)
    reasons: dict[str, str] = {}
    eligible: list[SourceQuote] = []
    for quote in quotes:
        reason = _ineligibility(quote, policy)
        if reason is None:
            eligible.append(quote)
        else:
            reasons[quote.source] = reason
    survivors: list[SourceQuote] = []
    if eligible:
        median = weighted_median([(quote.price, quote.liquidity) for quote in eligible])
        for quote in eligible:
            deviation = abs(quote.price - median) / median
            if deviation > policy.max_deviation:
                reasons[quote.source] = (
                    f"outlier: {_percent(deviation)} from the median "
                    f"({_number(quote.price)} vs {_number(median)}), "
                    f"above the {_percent(policy.max_deviation)} bound"
                )
            else:
                survivors.append(quote)
    rejected = tuple(
        (quote.source, reasons[quote.source]) for quote in quotes if quote.source in reasons
    )
    used = tuple(quote.source for quote in survivors)
    if len(survivors) < policy.quorum:
        return Aggregate(None, None, None, used, rejected, quorum_met=False)
    price = weighted_median([(quote.price, quote.liquidity) for quote in survivors])
    weight = sum((quote.liquidity for quote in survivors), Fraction(0))
    spread = sum((q.liquidity * abs(q.price - price) for q in survivors), Fraction(0)) / weight
    return Aggregate(price, max(price - spread, Fraction(0)), price + spread, used, rejected, True)


def _ineligibility(quote: SourceQuote, policy: Policy) -> str | None:
    """Why rule 1 excludes ``quote``, or ``None`` when it is eligible."""
    if quote.history < policy.min_history:
        return f"too little history: {quote.history} s < {policy.min_history} s"
    if quote.liquidity < policy.liquidity_floor:
        return (
            f"liquidity below the floor: {_number(quote.liquidity)} "
            f"< {_number(policy.liquidity_floor)} USD"
        )
    if quote.liquidity <= 0:
        return f"no liquidity: a weight must be positive (got {_number(quote.liquidity)})"
    if quote.price <= 0:
        return f"non-positive price: {_number(quote.price)}"
    return None


def _require_unique(quotes: Sequence[SourceQuote]) -> None:
    seen: set[str] = set()
    for quote in quotes:
        if quote.source in seen:
            raise OracleError(f"duplicate source {quote.source!r}: each source may quote once")
        seen.add(quote.source)


def _percent(ratio: Fraction) -> str:
    return f"{decimal_text(ratio * 100, places=4)}%"


def _number(value: Fraction) -> str:
    return decimal_text(value, places=8)
