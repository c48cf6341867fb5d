"""Time-weighted average prices from cumulative accumulators and observation series (SPEC §8).

The oracle never trusts a spot price: one large trade moves a pool's spot price for the length of
a block, and a billing rate read at that instant is a rate an attacker chose. A time-weighted
average over a window (30 minutes by default) costs an attacker the whole window.

Three accumulator shapes are read here, each exactly as its contract writes it:

- Uniswap-v2-style pairs keep ``priceXCumulativeLast``: the sum of a UQ112.112 fixed-point price
  times the seconds it held, in a uint256 that is meant to overflow (:func:`v2_counterfactual`,
  :func:`v2_twap`);
- Uniswap-v3-style pools keep an int56 tick cumulative; the mean tick is a price exponent
  (:func:`v3_mean_tick`, :func:`tick_price`);
- our own PriceOracle contract keeps Σ price × dt with an 18-decimal fixed-point price
  (:func:`accumulator_twap`).

Off-chain feeds arrive as series of observations; :func:`arithmetic_twap` and
:func:`geometric_twap` integrate them as step functions.

Everything is exact: integers and ``Fraction`` for the averages, ``Decimal`` with 60 significant
digits (computed with 20 guard digits) where a power, a logarithm or an exponential is
unavoidable. A float never appears.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext
from fractions import Fraction

from synor_economics.domain.errors import MoneyError, SynorError
from synor_economics.domain.money import exact

Q112 = 2**112
"""The scale of Uniswap v2's UQ112.112 fixed-point prices: 1.0 is ``2**112``."""

UINT224 = 2**224
"""The range of a UQ112.112 price (a uint224 on chain)."""

UINT32 = 2**32
"""The range of an on-chain block timestamp as a pair stores it (uint32: it wraps in 2106)."""

UINT256 = 2**256
"""The range of a v2 cumulative price: a uint256 whose overflow is intended."""

UINT112 = 2**112
"""The range of a v2 reserve (uint112)."""

INT56 = 2**56
"""The range of a v3 tick cumulative (int56, two's complement: ``[-2**55, 2**55)``)."""

MIN_TICK = -887272
MAX_TICK = 887272
"""The tick range of a Uniswap v3 pool: prices from about 2**-128 to 2**128."""

DIGITS = 60
"""Significant digits of every ``Decimal`` result (SPEC §1: a context of at least 60 digits)."""

_GUARD = 20
"""Extra working digits, so that the one final rounding to :data:`DIGITS` is the only one that
shows."""


class OracleError(SynorError, ValueError):
    """Oracle input that cannot give a trustworthy price: time that does not move forward, an empty
    series, a non-positive price or reserve, a value out of its on-chain range."""


@dataclass(frozen=True, slots=True)
class Cumulative:
    """One reading of a cumulative-price accumulator: when (``timestamp``, seconds) and the raw
    integer ``value`` the contract returned. Two readings make an average."""

    timestamp: int
    value: int

    def __post_init__(self) -> None:
        _require_int(self.timestamp, "accumulator timestamp")
        _require_int(self.value, "accumulator value")
        if self.timestamp < 0:
            raise OracleError(f"accumulator timestamp must not be negative: {self.timestamp}")


# --- Uniswap v2 ---------------------------------------------------------------------------------


def v2_counterfactual(
    cumulative_last: int, reserve_in: int, reserve_out: int, timestamp_last: int, now: int
) -> int:
    """Bring a v2 pair's cumulative price up to ``now`` exactly as the pair itself would.

    A pair only adds to ``priceXCumulativeLast`` on the first trade of a block, so a reading taken
    in a quiet block is stale. The reserves have not changed since ``timestamp_last`` (they only
    change on a trade, which would also have updated the accumulator), so the missing term is known
    exactly: ``(reserve_out * 2**112 // reserve_in) * elapsed``. ``elapsed`` is computed modulo
    2**32 because the pair stores uint32 timestamps, and the sum wraps modulo 2**256 because the
    accumulator is a uint256 whose overflow is intended: only differences are ever meaningful.

    ``reserve_in`` is the reserve of the token being priced (``reserve0`` for
    ``price0CumulativeLast``). ``now`` may be a full timestamp or already reduced to uint32.
    """
    _require_int(cumulative_last, "cumulative price")
    _require_uint256(cumulative_last, "cumulative price")
    _require_reserve(reserve_in, "reserve_in")
    _require_reserve(reserve_out, "reserve_out")
    _require_int(timestamp_last, "timestamp_last")
    _require_int(now, "now")
    if not 0 <= timestamp_last < UINT32:
        raise OracleError(f"timestamp_last is a uint32 on chain; got {timestamp_last}")
    if now < 0:
        raise OracleError(f"now must not be negative: {now}")
    elapsed = (now - timestamp_last) % UINT32
    encoded = reserve_out * Q112 // reserve_in  # UQ112x112.encode(reserve_out).uqdiv(reserve_in)
    return (cumulative_last + encoded * elapsed) % UINT256


def v2_twap(older: Cumulative, newer: Cumulative) -> Fraction:
    """The average price between two readings of a v2 cumulative price, in raw units.

    ``((newer − older) mod 2**256) / Δt / 2**112``: the modulus undoes an accumulator overflow
    between the readings (a difference modulo 2**256 is right as long as the true difference is
    below 2**256, which it always is over any window an oracle uses). The timestamps are full
    timestamps (our readings, not the pair's uint32), so Δt is a plain difference.

    The result is the price of one raw unit of the priced token in raw units of the other; see
    :func:`scale_decimals` to get whole tokens.
    """
    _require_uint256(older.value, "older cumulative price")
    _require_uint256(newer.value, "newer cumulative price")
    dt = _elapsed(older, newer)
    delta = (newer.value - older.value) % UINT256
    if delta == 0:
        raise OracleError("the cumulative price did not move: a v2 average price is never zero")
    return Fraction(delta, dt * Q112)


# --- Uniswap v3 ---------------------------------------------------------------------------------


def v3_mean_tick(older: Cumulative, newer: Cumulative) -> int:
    """The arithmetic mean tick between two readings of a v3 tick cumulative.

    As Uniswap's ``OracleLibrary.consult``: Δ / Δt rounded toward negative infinity (Solidity
    division truncates toward zero; ``consult`` then subtracts one for a negative inexact
    quotient, which is the floor). The difference is taken in int56 two's complement, as the pool's
    own unchecked arithmetic wraps; the mean must be a valid tick.
    """
    for reading, what in ((older, "older"), (newer, "newer")):
        if not -(INT56 // 2) <= reading.value < INT56 // 2:
            raise OracleError(f"{what} tick cumulative is out of the int56 range: {reading.value}")
    dt = _elapsed(older, newer)
    delta = (newer.value - older.value + INT56 // 2) % INT56 - INT56 // 2
    mean = delta // dt  # Python's // is the floor
    _require_tick(mean, "mean tick")
    return mean


def tick_price(tick: int) -> Decimal:
    """``1.0001 ** tick``: the price a v3 tick stands for, to 60 significant digits.

    The power is taken with 20 guard digits and rounded once, HALF_EVEN, to 60 digits, so the
    result is the correctly rounded value except in the astronomically unlikely case that the
    exact power lies within 10**-20 of an ulp from a rounding tie.
    """
    _require_int(tick, "tick")
    _require_tick(tick, "tick")
    with localcontext(_context(DIGITS + _GUARD)):
        power = Decimal(10001).scaleb(-4) ** tick
    return _round(power)


def scale_decimals(raw_price: Fraction, base_decimals: int, quote_decimals: int) -> Fraction:
    """Turn a price of one raw base unit in raw quote units into whole quote per whole base.

    A pool prices wei in micro-dollars (USDC has 6 decimals, SYNOR 18): one whole base token is
    ``10**base_decimals`` raw units and fetches ``raw × 10**base_decimals`` raw quote units, which
    is that over ``10**quote_decimals`` whole ones.
    """
    price = exact_input(raw_price, "raw price")
    for decimals, what in ((base_decimals, "base_decimals"), (quote_decimals, "quote_decimals")):
        _require_int(decimals, what)
        if not 0 <= decimals <= 255:
            raise OracleError(f"{what} is a uint8 token property; got {decimals}")
    base_unit: int = 10**base_decimals
    quote_unit: int = 10**quote_decimals
    return price * base_unit / quote_unit


# --- observation series -------------------------------------------------------------------------


def arithmetic_twap(points: Sequence[tuple[int, Fraction]], start: int, end: int) -> Fraction:
    """The time-weighted arithmetic mean of a step-function series over ``[start, end)``.

    Each observation ``(timestamp, price)`` holds until the next one: that is how a feed is read
    (the last value is the current value), and it is what an on-chain accumulator integrates. The
    price at ``start`` is therefore the last observation at or before it; without one the window
    cannot be priced honestly, so it is an error rather than a guess. Observations after ``end``
    are ignored. The result is ``∫ price dt / (end − start)``, exact.
    """
    steps = _steps(points, start, end)
    return _mean(steps, end - start)


def geometric_twap(points: Sequence[tuple[int, Fraction]], start: int, end: int) -> Decimal:
    """The time-weighted geometric mean ``exp(∫ ln(price) dt / (end − start))``, 60 digits.

    The geometric mean is what a v3 tick cumulative averages, and it weighs a spike up and a spike
    down symmetrically (a price doubled for a minute moves it as much as a price halved). It is
    never above the arithmetic mean (AM–GM): the result is clamped so that rounding cannot break
    that, and a constant series gives the constant (rounded to 60 digits, never upward past it).
    The series is read as in :func:`arithmetic_twap`.
    """
    steps = _steps(points, start, end)
    arithmetic = _mean(steps, end - start)
    prices = {price for price, _ in steps}
    if len(prices) == 1:
        mean = _decimal(prices.pop())
    else:
        with localcontext(_context(DIGITS + _GUARD)):
            log_sum = sum(
                (_ln(price) * duration for price, duration in steps), Decimal(0)
            ) / Decimal(end - start)
            mean = _round(log_sum.exp())
    if Fraction(mean) > arithmetic:
        mean = _decimal(arithmetic, rounding=ROUND_FLOOR)
    return mean


# --- our own PriceOracle contract ---------------------------------------------------------------


def accumulator_twap(older: Cumulative, newer: Cumulative, scale: int = 10**18) -> Fraction:
    """The average price between two readings of our PriceOracle's accumulator.

    The contract accumulates Σ price × dt with ``price`` a fixed-point integer (``scale`` = 10**18
    by default, 18 decimals), in checked arithmetic: it never wraps, so a decrease is corrupt
    input, not an overflow. The result is ``Δvalue / Δt / scale``.
    """
    _require_int(scale, "scale")
    if scale <= 0:
        raise OracleError(f"the fixed-point scale must be positive: {scale}")
    dt = _elapsed(older, newer)
    delta = newer.value - older.value
    if delta <= 0:
        raise OracleError(
            f"the accumulator must grow between readings (a price is positive); it moved by {delta}"
        )
    return Fraction(delta, dt * scale)


# --- helpers ------------------------------------------------------------------------------------


def _steps(
    points: Sequence[tuple[int, Fraction]], start: int, end: int
) -> list[tuple[Fraction, int]]:
    """The ``(price, seconds)`` pieces of the step function over ``[start, end)``, all seconds > 0.

    The whole series is validated, not only the window: a series with time running backwards or a
    non-positive price somewhere is bad data, and reading around it would hide that.
    """
    _require_int(start, "window start")
    _require_int(end, "window end")
    if end <= start:
        raise OracleError(f"the window must end after it starts: start={start}, end={end}")
    series = _validated_series(points)
    times = [timestamp for timestamp, _ in series]
    first = bisect_right(times, start) - 1
    if first < 0:
        raise OracleError(
            f"no observation at or before the window's start ({start}); the first is at {times[0]}"
        )
    steps: list[tuple[Fraction, int]] = []
    for index in range(first, len(series)):
        timestamp, price = series[index]
        if timestamp >= end:
            break
        until = times[index + 1] if index + 1 < len(series) else end
        steps.append((price, min(until, end) - max(timestamp, start)))
    return steps


def _mean(steps: Sequence[tuple[Fraction, int]], length: int) -> Fraction:
    """``∫ price dt / length`` over the pieces of a step function, exact."""
    return Fraction(sum((price * seconds for price, seconds in steps), Fraction(0)), length)


def _validated_series(points: Sequence[tuple[int, Fraction]]) -> list[tuple[int, Fraction]]:
    if len(points) == 0:
        raise OracleError("the observation series is empty")
    series: list[tuple[int, Fraction]] = []
    for index, (timestamp, raw_price) in enumerate(points):
        _require_int(timestamp, f"timestamp of observation {index}")
        price = exact_input(raw_price, f"price of observation {index}")
        if price <= 0:
            raise OracleError(f"observation {index} has a non-positive price: {price}")
        if series and timestamp <= series[-1][0]:
            raise OracleError(
                f"non-increasing time: observation {index} at {timestamp} "
                f"does not follow observation {index - 1} at {series[-1][0]}"
            )
        series.append((timestamp, price))
    return series


def _elapsed(older: Cumulative, newer: Cumulative) -> int:
    dt = newer.timestamp - older.timestamp
    if dt <= 0:
        raise OracleError(
            f"the newer reading must be later than the older: {older.timestamp} → {newer.timestamp}"
        )
    return dt


def _context(digits: int) -> Context:
    """A context with ``digits`` of precision and HALF_EVEN, independent of the caller's."""
    return Context(prec=digits, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _decimal(value: Fraction, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` rounded once to :data:`DIGITS` significant digits (a Decimal division of exact
    integers is correctly rounded)."""
    with localcontext(_context(DIGITS)) as ctx:
        ctx.rounding = rounding
        return Decimal(value.numerator) / Decimal(value.denominator)


def _round(value: Decimal) -> Decimal:
    """The one final rounding of a guarded result to :data:`DIGITS` significant digits."""
    with localcontext(_context(DIGITS)):
        return +value


def _ln(price: Fraction) -> Decimal:
    """``ln(price)`` in the current (guarded) context; price > 0."""
    return (Decimal(price.numerator) / Decimal(price.denominator)).ln()


def exact_input(value: object, what: str) -> Fraction:
    """An exact number as a ``Fraction`` (``money.exact``: a float, a bool or a non-finite
    Decimal is refused), refused with the oracle's error."""
    try:
        return exact(value, what=what)  # type: ignore[arg-type]  # checked there
    except MoneyError as error:
        raise OracleError(str(error)) from None


def _require_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OracleError(f"{what} must be an int, not {type(value).__name__}")


def _require_uint256(value: int, what: str) -> None:
    if not 0 <= value < UINT256:
        raise OracleError(f"{what} is a uint256 on chain; got {value}")


def _require_reserve(value: int, what: str) -> None:
    _require_int(value, what)
    if value <= 0:
        raise OracleError(f"{what} must be positive: an empty pool has no price (got {value})")
    if value >= UINT112:
        raise OracleError(f"{what} is a uint112 on chain; got {value}")


def _require_tick(tick: int, what: str) -> None:
    if not MIN_TICK <= tick <= MAX_TICK:
        raise OracleError(f"{what} {tick} is outside the v3 tick range [{MIN_TICK}, {MAX_TICK}]")
