"""Meters: hour buckets, and the incremental gauge rollup checked against a direct integral
for every arrival order Hypothesis can think of."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from synor_economics.domain.meters import (
    EXACT,
    HOUR_US,
    Level,
    add_into,
    gauge_insert,
    hours,
    level_seconds,
    open_segment,
    spread,
)

DAY_US = 24 * HOUR_US


def test_hours_split_an_interval_at_hour_boundaries() -> None:
    start = 2 * HOUR_US + 15 * 60 * 1_000_000
    assert list(hours(start, 4 * HOUR_US + 1)) == [
        (2 * HOUR_US, 45 * 60 * 1_000_000),
        (3 * HOUR_US, HOUR_US),
        (4 * HOUR_US, 1),
    ]
    assert list(hours(5, 5)) == []


def test_level_seconds_is_exact_to_the_microsecond() -> None:
    assert level_seconds(Decimal(3), 1) == Decimal("0.000003")
    assert level_seconds(Decimal("0.1"), 3 * 1_000_000) == Decimal("0.3")
    assert spread(Decimal(0), 0, DAY_US) == {}


class Store:
    """The smallest faithful stand-in for storage: events by arrival, the hourly totals and the
    open segment, updated only through ``gauge_insert`` as the service does."""

    def __init__(self) -> None:
        self.events: list[Level] = []
        self.hourly: dict[int, Decimal] = {}
        self.latest: Level | None = None

    def insert(self, new: Level) -> None:
        previous = [e for e in self.events if e.ts_us <= new.ts_us]
        after = [e.ts_us for e in self.events if e.ts_us > new.ts_us]
        before = max(previous, key=lambda e: e.ts_us) if previous else None
        if previous:  # equal times: the latest arrival is the level in force
            before = [e for e in previous if e.ts_us == before.ts_us][-1]  # type: ignore[union-attr]
        change = gauge_insert(new, before, min(after) if after else None, self.latest)
        add_into(self.hourly, change.hourly)
        if change.open is not None:
            self.latest = change.open
        self.events.append(new)

    def integral(self, start: int, end: int) -> Decimal:
        # exact sums: the default 28-digit context would round ~10^20 unit-seconds
        closed = Decimal(0)
        for hour, quantity in self.hourly.items():
            if start <= hour < end:
                closed = EXACT.add(closed, quantity)
        assert self.latest is not None
        return EXACT.add(closed, open_segment(self.latest, start, end))


def direct(events: list[Level], start: int, end: int) -> Decimal:
    """∫ level dt over [start, end) from the final history (stable order: arrival breaks ties)."""
    ordered = sorted(enumerate(events), key=lambda pair: (pair[1].ts_us, pair[0]))
    levels = [e for _, e in ordered]
    total = Decimal(0)
    for k, event in enumerate(levels):
        stop = levels[k + 1].ts_us if k + 1 < len(levels) else end
        begin, finish = max(event.ts_us, start), min(stop, end)
        if finish > begin:
            total = EXACT.add(total, level_seconds(event.level, finish - begin))
    return total


levels = st.builds(
    Level,
    ts_us=st.integers(0, 3 * DAY_US).map(lambda t: t - t % 1_000_000) | st.integers(0, 3 * DAY_US),
    level=st.decimals(0, 10**15, places=3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(levels, min_size=1, max_size=25), st.integers(0, 4 * DAY_US))
def test_incremental_rollups_equal_the_direct_integral(events: list[Level], cut: int) -> None:
    store = Store()
    for event in events:
        store.insert(event)
    end = 4 * DAY_US
    start = cut - cut % HOUR_US
    assert store.integral(start, end) == direct(events, start, end)
    assert store.integral(0, end) == direct(events, 0, end)


def test_a_late_event_changes_only_its_own_stretch() -> None:
    store = Store()
    store.insert(Level(0, Decimal(100)))
    store.insert(Level(10 * HOUR_US, Decimal(0)))
    store.insert(Level(2 * HOUR_US, Decimal(40)))
    assert store.integral(0, 20 * HOUR_US) == Decimal(100 * 2 * 3600 + 40 * 8 * 3600)
