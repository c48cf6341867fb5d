"""The SYNOR/USD oracle (SPEC §8): read the sources, average each over time, aggregate, publish.

A round reads every source once and stores the reading. Each source's quote is its TWAP over the
window, from two readings of its accumulator (a DEX pair) or from the quotes stored for it (a
feed): never a spot price. The quotes are aggregated (``domain/price_aggregate``: floors, the
liquidity-weighted median, outliers, quorum, the confidence interval) and the round is stored,
with or without a price. A round with a price is submitted on chain by the configured reporters.

**Stale.** Without a quorum the last good price stands and is marked stale; a price older than
the maximum age is never used for billing (``lock_rate`` refuses it).

**Precision.** Quotes and the aggregate are exact rationals; the round's price is rounded once,
HALF_EVEN, to 18 decimals: what goes on chain (18-decimal fixed point) and what invoices lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from synor_economics.domain.errors import SynorError
from synor_economics.domain.money import decimal_text, round_ratio
from synor_economics.domain.price_aggregate import Aggregate, Policy, SourceQuote, aggregate
from synor_economics.domain.twap import arithmetic_twap, geometric_twap
from synor_economics.ports import (
    Clock,
    OracleRepository,
    OracleRound,
    OracleUnitOfWork,
    PriceReading,
    PriceSource,
)

log = logging.getLogger(__name__)

SCALE = 10**18
"""Prices are kept to 18 decimals: the on-chain oracle's fixed point."""


class OracleStaleError(SynorError):
    """No oracle price fit to use: none yet, or older than its maximum age."""


class PricePublisher(Protocol):
    """Where a round's price goes on chain (the PriceOracle contract, as our reporters)."""

    def submit(self, price_e18: int) -> Mapping[str, object]:
        """Submit the price; what was done (transactions, the contract's round), as JSON."""
        ...


@dataclass(frozen=True, slots=True)
class OracleConfig:
    """How the oracle averages, aggregates and ages prices."""

    window: int = 1800
    """Seconds each source's TWAP covers (SPEC §8: 30 minutes by default)."""
    max_age: int = 3600
    """Seconds after which a price is never used for billing."""
    policy: Policy = field(default_factory=Policy)
    retention: int = 7 * 86_400
    """Seconds of source readings kept (rounds are kept for good)."""


@dataclass(frozen=True, slots=True)
class OraclePrice:
    """The oracle's price as readers see it."""

    price: Fraction
    low: Fraction
    high: Fraction
    at: int
    age: int
    round: int
    stale: bool
    reason: str | None
    """Why it is stale, if it is."""


@dataclass(frozen=True, slots=True)
class Twap:
    """A time-weighted average of the published prices over a window."""

    arithmetic: Fraction
    geometric: Decimal
    start: int
    """Where the average begins: the window's start, or the first price if that came later."""
    end: int
    points: int


def rounded(value: Fraction) -> Fraction:
    """To 18 decimals, HALF_EVEN: the grain of prices on chain and on invoices."""
    return Fraction(round_ratio(value.numerator * SCALE, value.denominator), SCALE)


class OracleService:
    def __init__(
        self,
        uow: OracleUnitOfWork,
        clock: Clock,
        config: OracleConfig | None = None,
        *,
        sources: Callable[[], Sequence[PriceSource]] = tuple,
        publisher: Callable[[], PricePublisher | None] = lambda: None,
    ) -> None:
        """``sources`` and ``publisher`` are factories: the chain behind them is only reached
        when a round runs, never to read a price that is already stored."""
        self.uow = uow
        self.clock = clock
        self.config = config or OracleConfig()
        self._sources_factory = sources
        self._publisher_factory = publisher
        self._sources: Sequence[PriceSource] | None = None
        self._publisher: PricePublisher | None = None

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def sources(self) -> Sequence[PriceSource]:
        if self._sources is None:
            self._sources = self._sources_factory()
        return self._sources

    # -- a round -----------------------------------------------------------------------------

    def run_round(self) -> OracleRound:
        """Read every source, aggregate, store the round and submit its price on chain."""
        now = self._now()
        readings: list[PriceReading] = []
        unreadable: dict[str, str] = {}
        for source in self.sources():
            try:
                readings.append(source.read())
            except SynorError as error:
                unreadable[source.name] = f"unreadable: {error}"
        with self.uow.write() as tx:
            repo = tx.oracle
            quotes = [self._quote(repo, reading) for reading in readings]
            repo.add_readings(readings)
            repo.prune_readings(now - max(self.config.retention, 2 * self.config.window))
            result = aggregate(quotes, self.config.policy)
            row = self._round(repo.next_round(), now, result, quotes, unreadable)
            repo.add_round(row)
        if row.price is not None:
            publisher = self._publisher_now()
            if publisher is not None:
                submitted = json.dumps(self._submit(publisher, row.price))
                with self.uow.write() as tx:
                    tx.oracle.set_submitted(row.round, submitted)
                row = row._replace(submitted=submitted)
        return row

    @staticmethod
    def _submit(publisher: PricePublisher, price: Fraction) -> dict[str, object]:
        """Submit on chain; a chain that refuses is recorded with the round (which stands: the
        next round submits again), not raised."""
        scaled = price * SCALE  # an integer: the price was rounded to 18 decimals
        try:
            return dict(publisher.submit(round_ratio(scaled.numerator, scaled.denominator)))
        except SynorError as error:
            log.warning("submitting the oracle's price failed: %s", error)
            return {"error": str(error)}

    def run(self, stop: threading.Event, interval_s: float = 60.0) -> None:
        """A round every ``interval_s`` until ``stop`` is set (``synor serve``); a failing round
        is logged, and the next one tries again."""
        while not stop.is_set():
            try:
                self.run_round()
            except Exception:  # a source or the chain down for a while must not end the oracle
                log.exception("oracle round failed")
            stop.wait(interval_s)

    def _publisher_now(self) -> PricePublisher | None:
        if self._publisher is None:
            self._publisher = self._publisher_factory()
        return self._publisher

    def _quote(self, repo: OracleRepository, reading: PriceReading) -> SourceQuote:
        """The source's TWAP over the window ending at this reading, from what is stored."""
        start = reading.timestamp - self.config.window
        if reading.twap is not None:
            return SourceQuote(reading.source, reading.twap, reading.liquidity, reading.history)
        if reading.cumulative is not None:
            base = repo.reading_at_or_before(reading.source, start) or repo.oldest_reading(
                reading.source
            )
            if base is None or base.cumulative is None or base.timestamp >= reading.timestamp:
                # no history yet: a quote the minimum-history rule leaves out (its price unused)
                return SourceQuote(reading.source, Fraction(1), reading.liquidity, 0)
            span = reading.timestamp - base.timestamp
            delta = (reading.cumulative - base.cumulative) % 2**256
            return SourceQuote(reading.source, delta * reading.unit / span, reading.liquidity, span)
        assert reading.spot is not None
        points = repo.spots(reading.source, start, reading.timestamp - 1)
        points.append((reading.timestamp, reading.spot))
        begin = max(start, points[0][0])
        if begin >= reading.timestamp:
            return SourceQuote(reading.source, reading.spot, reading.liquidity, 0)
        price = arithmetic_twap(points, begin, reading.timestamp)
        return SourceQuote(reading.source, price, reading.liquidity, reading.timestamp - begin)

    @staticmethod
    def _round(
        number: int,
        now: int,
        result: Aggregate,
        quotes: Sequence[SourceQuote],
        unreadable: Mapping[str, str],
    ) -> OracleRound:
        reasons = dict(result.rejected) | dict(unreadable)
        detail = {
            q.source: {
                "twap": decimal_text(q.price) if q.history else None,
                "liquidity": decimal_text(q.liquidity),
                "history": q.history,
                "used": q.source in result.used and result.quorum_met,
                "reason": reasons.get(q.source),
            }
            for q in quotes
        } | {name: {"used": False, "reason": reason} for name, reason in unreadable.items()}
        price = None if result.price is None else rounded(result.price)
        return OracleRound(
            round=number,
            at=now,
            price=price,
            low=None if result.low is None else rounded(result.low),
            high=None if result.high is None else rounded(result.high),
            quorum_met=result.quorum_met and price is not None,
            detail=json.dumps(detail, sort_keys=True),
            submitted=None,
        )

    # -- reading -----------------------------------------------------------------------------

    def price(self) -> OraclePrice:
        """The last good price, with its age and whether it is stale."""
        now = self._now()
        with self.uow.read() as tx:
            good = tx.oracle.last_round(good=True)
            last = tx.oracle.last_round()
        if good is None or good.price is None or good.low is None or good.high is None:
            raise OracleStaleError("the oracle has no price yet: run `synor oracle run`")
        age = now - good.at
        reason = None
        if last is not None and not last.quorum_met:
            reason = f"round {last.round} had no quorum; the last good price stands"
        if age > self.config.max_age:
            reason = f"the price is {age} s old (at most {self.config.max_age})"
        return OraclePrice(
            price=good.price,
            low=good.low,
            high=good.high,
            at=good.at,
            age=age,
            round=good.round,
            stale=reason is not None,
            reason=reason,
        )

    def history(self, window: int) -> list[OracleRound]:
        now = self._now()
        with self.uow.read() as tx:
            return tx.oracle.rounds(now - window, now)

    def twap(self, window: int | None = None) -> Twap:
        """Arithmetic and geometric averages of the published prices over ``window`` seconds
        (the configured window by default) ending now."""
        window = self.config.window if window is None else window
        if window <= 0:
            raise OracleStaleError("the window must be at least one second")
        now = self._now()
        start = now - window
        with self.uow.read() as tx:
            points = tx.oracle.good_points(start, now)
        if not points:
            raise OracleStaleError("the oracle has no price in that window")
        begin = max(start, points[0][0])
        if begin >= now:
            _, only = points[-1]
            return Twap(only, Decimal(only.numerator) / only.denominator, begin, now, 1)
        return Twap(
            arithmetic=arithmetic_twap(points, begin, now),
            geometric=geometric_twap(points, begin, now),
            start=begin,
            end=now,
            points=len(points),
        )

    def display_rate(self) -> Fraction | None:
        """The rate drafts show: the last good price, stale or not; None without one."""
        try:
            return self.price().price
        except OracleStaleError:
            return None

    def lock_rate(self) -> Fraction:
        """The rate a period close locks on its invoices: the TWAP over the window, rounded to
        18 decimals; refused when the latest good price is older than the maximum age."""
        current = self.price()
        if current.age > self.config.max_age:
            raise OracleStaleError(
                f"the oracle's price is {current.age} s old (at most {self.config.max_age}): "
                "invoices are not finalised with it"
            )
        return rounded(self.twap().arithmetic)
