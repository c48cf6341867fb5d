"""Meters (SPEC §3): how events become a period's raw quantity, kept as hourly rollups.

* A **counter**'s hour holds the sum of its events' quantities with ``ts`` in that hour.
* A **gauge**'s hour holds the time integral of its level over the hour, in event-unit·seconds.
  Each event sets the level of ``(account, resource, subject)`` from its ``ts`` until the next
  event for that key; before the first event the level is 0.

Gauges are kept incrementally so that a late event in the middle of history is exact: inserting
an event at ``t`` with level ``L`` between a previous level ``P`` and the next event at ``n``
changes the level on ``[t, n)`` from ``P`` to ``L``, so ``(L − P) × overlap`` is added to every
hour that interval touches (:func:`gauge_insert`). The segment after a key's latest event has no
end yet: it is kept open (level and start) and closed into the hours when a later event arrives;
readers add the open part up to the moment they ask about (:func:`open_segment`).

All arithmetic is exact: :data:`EXACT` traps any rounding, and seconds are µs / 10^6, a finite
decimal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded

HOUR_US = 3_600_000_000
"""Microseconds in an hour: the rollup bucket."""

EXACT = Context(prec=120, traps=[Inexact, Rounded, InvalidOperation, Overflow])
"""Decimal context for meter arithmetic: wide enough for any sum we keep, and an error instead of
a silent rounding if that ever stops being true."""

_MICRO = Decimal(1_000_000)


def hour_of(ts_us: int) -> int:
    """The start of the hour bucket holding ``ts_us``."""
    return ts_us - ts_us % HOUR_US


def hours(start_us: int, end_us: int) -> Iterator[tuple[int, int]]:
    """The hour buckets ``[start_us, end_us)`` touches, with the µs it spends in each."""
    moment = start_us
    while moment < end_us:
        bucket = hour_of(moment)
        stop = min(bucket + HOUR_US, end_us)
        yield bucket, stop - moment
        moment = stop


def level_seconds(level: Decimal, duration_us: int) -> Decimal:
    """``level × duration`` in event-unit·seconds, exact."""
    return EXACT.divide(EXACT.multiply(level, Decimal(duration_us)), _MICRO)


def spread(level: Decimal, start_us: int, end_us: int) -> dict[int, Decimal]:
    """The integral of a constant ``level`` over ``[start_us, end_us)``, hour by hour."""
    if level == 0:
        return {}
    return {bucket: level_seconds(level, span) for bucket, span in hours(start_us, end_us)}


@dataclass(frozen=True, slots=True)
class Level:
    """A gauge level set at ``ts_us``."""

    ts_us: int
    level: Decimal


@dataclass(frozen=True, slots=True)
class GaugeChange:
    """What inserting one gauge event does: hour deltas of closed segments, and the key's open
    segment afterwards (``None`` if it is unchanged)."""

    hourly: dict[int, Decimal]
    open: Level | None


def gauge_insert(
    new: Level, previous: Level | None, next_ts_us: int | None, latest: Level | None
) -> GaugeChange:
    """The effect of a gauge event on its key's rollups.

    ``previous`` is the last event at or before ``new`` (in arrival order for equal times),
    ``next_ts_us`` the time of the first event after it, ``latest`` the key's open segment
    before this event. If there is a next event, only ``[new.ts, next)`` changes level. If not,
    this event becomes the latest: the old open segment is closed at ``new.ts`` and a new one
    opens.
    """
    before = previous.level if previous is not None else Decimal(0)
    if next_ts_us is not None:
        return GaugeChange(spread(new.level - before, new.ts_us, next_ts_us), None)
    closed: dict[int, Decimal] = {}
    if latest is not None:
        closed = spread(latest.level, latest.ts_us, new.ts_us)
    return GaugeChange(closed, new)


def open_segment(latest: Level, start_us: int, end_us: int) -> Decimal:
    """The open segment's integral inside ``[start_us, end_us)`` (event-unit·seconds)."""
    begin = max(latest.ts_us, start_us)
    if end_us <= begin:
        return Decimal(0)
    return level_seconds(latest.level, end_us - begin)


def add_into(totals: dict[int, Decimal], deltas: dict[int, Decimal]) -> None:
    """Add hour deltas into running totals, exactly."""
    for bucket, delta in deltas.items():
        totals[bucket] = EXACT.add(totals.get(bucket, Decimal(0)), delta)


def gauge_history(events: list[Level]) -> tuple[dict[int, Decimal], Level | None]:
    """One gauge key's whole history rebuilt from its events (in time order, later arrivals
    after earlier ones at equal times): the integral per hour of every closed segment, and the
    open segment after the last event. What a replacement's rebuild uses instead of replaying
    ``gauge_insert`` event by event."""
    hourly: dict[int, Decimal] = {}
    current: Level | None = None
    for event in events:
        if current is not None:
            add_into(hourly, spread(current.level, current.ts_us, event.ts_us))
        current = event
    return hourly, current


def gauge_integral(levels: list[Level], start_us: int, end_us: int) -> Decimal:
    """One gauge key's integral over ``[start_us, end_us)`` (event-unit·seconds), from its
    levels in time order: each holds until the next, the last until ``end_us``, and a level set
    before ``start_us`` carries into it (SPEC §3)."""
    total = Decimal(0)
    for index, current in enumerate(levels):
        until = levels[index + 1].ts_us if index + 1 < len(levels) else end_us
        begin, stop = max(current.ts_us, start_us), min(until, end_us)
        if stop > begin:
            total = EXACT.add(total, level_seconds(current.level, stop - begin))
    return total
