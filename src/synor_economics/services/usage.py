"""Metering use cases: ingest usage events exactly once, and read period-to-date usage.

Every face (HTTP, stream worker, file backfill) hands its batches to :meth:`UsageService.ingest`
or to :meth:`~UsageService.screen_batch` and :meth:`~UsageService.store` (or
:meth:`~UsageService.submit`, which stores side-by-side requests together), so validation, dedup
and rollups are the same however an event arrives. Events still as JSON texts (NDJSON files and
bodies, JSON arrays, stream entries: ``Lines``) are validated a column at a time where they are
plain (``usage_columns``), the rest one by one. Dedup is a lookup of the batch's
``(account, id)`` keys inside the write transaction that stores the new events and adds them to
the rollups: an event is counted if and only if its row is committed, and the unique constraint
(PostgreSQL) or the key index's check (SQLite) backs the lookup up. There is no "claim first,
write later" window.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import repeat
from typing import TypeVar, cast

import numpy as np

from synor_economics.domain.catalog import Catalog, Resource
from synor_economics.domain.meters import (
    EXACT,
    HOUR_US,
    GaugeChange,
    Level,
    gauge_insert,
    hour_of,
    open_segment,
)
from synor_economics.domain.money import decimal_text
from synor_economics.domain.usage import (
    DeadLetter,
    EventColumns,
    EventError,
    EventOutcome,
    EventStatus,
    UsageEvent,
    parse_event,
    raw_text,
)
from synor_economics.ports import (
    Clock,
    ConcurrentWriteError,
    GaugeKey,
    HourKey,
    HourlyDeltas,
    UsageRepository,
    UsageUnitOfWork,
)
from synor_economics.services.time import to_us
from synor_economics.services.usage_columns import PlainRows, ndjson_table, plain_rows
from synor_economics.services.usage_commit import GroupCommitter
from synor_economics.services.usage_input import Lines

SOURCES = ("http", "stream", "file", "client")
"""Where events come from; recorded with each event and dead letter."""

_RACE_RETRIES = 5
"""Tries of a batch that raced a writer side by side on the same event (PostgreSQL)."""

_MAX_BODY = 65_536
"""Longest dead-letter body kept, in characters (a rejected event is kept whole up to this)."""

_B = TypeVar("_B")
_M = TypeVar("_M")

_ACCEPTED, _DUPLICATE = EventStatus.ACCEPTED, EventStatus.DUPLICATE

_CONFLICT = "this id was used before with a different body; the first copy stands"

_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")


class PeriodError(ValueError):
    """A billing period that is not ``YYYY-MM``."""


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """One resource's usage in a period so far: the raw quantity (event units for a counter,
    event-unit·seconds for a gauge) and what it comes to in price units."""

    resource: Resource
    raw: Decimal
    billable: Fraction
    events: int
    """Events counted in the period (a gauge's level carried in from before is not one)."""


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    account: str
    period: str
    start: datetime
    end: datetime
    as_of: datetime
    """Usage counted up to this moment (the end of the period once it is over)."""
    resources: tuple[ResourceUsage, ...]

    def billable_text(self, usage: ResourceUsage, places: int = 9) -> str:
        """A billable quantity for reading (HALF_EVEN to ``places``); the raw one stays exact."""
        return decimal_text(usage.billable, places)


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as its half-open UTC interval ``[start, end)``."""
    found = _PERIOD.fullmatch(period)
    if found is None or not 1 <= int(found[2]) <= 12:
        raise PeriodError(f"period must be a month like 2026-11, got {period!r}")
    year, month = int(found[1]), int(found[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


SCREENED_AHEAD = 2
"""Batches of a file read and validated ahead of the one being stored. One was not enough:
storing a batch that folds the rollup log (every other batch of a backfill) takes about twice
as long as one that does not, and validation, steady, then waited after the long ones for the
short ones; a second batch ahead evens that out (1M-event backfill: the storing thread waited
0.72 s → 0.35 s for batches, 262k → 275k–294k events/s). A third gained nothing measurable."""


class UsageService:
    def __init__(self, uow: UsageUnitOfWork, clock: Clock, catalog: Catalog) -> None:
        self.uow = uow
        self.clock = clock
        self.catalog = catalog
        self._committer: GroupCommitter | None = None
        self._committer_lock = threading.Lock()

    def ingest(self, raws: Sequence[object], *, source: str) -> Outcomes:
        """Validate, deduplicate and count a batch; one outcome per event, in order. Good
        events are kept even when others in the batch are bad."""
        return self.store(self.screen_batch(raws, source))

    def ingest_all(
        self, batches: Iterable[_B], *, source: str, events: Callable[[_B], Sequence[object]]
    ) -> Iterator[tuple[_B, Outcomes]]:
        """Ingest batch after batch (a file's chunks), each in its own transaction, yielding
        each with its outcomes once it is durable.

        The next batches (``SCREENED_AHEAD``) are read and validated on a helper thread
        while the current one is stored: storing is largely the database's work, done with the
        interpreter released, so the two overlap on two cores. ``events`` gives a batch's raw
        events, or its NDJSON lines (validated a column at a time). Reading or validation
        errors surface here, after the batches before them are stored."""
        source_batches = iter(batches)

        def screen_next() -> tuple[_B, Screened] | None:
            batch = next(source_batches, None)
            return None if batch is None else (batch, self.screen_batch(events(batch), source))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synor-screen") as helper:
            upcoming = deque(helper.submit(screen_next) for _ in range(SCREENED_AHEAD))
            while (ready := upcoming.popleft().result()) is not None:
                upcoming.append(helper.submit(screen_next))
                batch, screened = ready
                yield batch, self.store(screened)

    def screen_batch(self, raws: Sequence[object], source: str) -> Screened:
        """:meth:`screen_lines` for events still as JSON texts, :meth:`screen` for the rest."""
        return (
            self.screen_lines(raws, source)
            if isinstance(raws, Lines)
            else self.screen(raws, source)
        )

    def screen(self, raws: Sequence[object], source: str) -> Screened:
        """Validation, which needs no database: the valid events and the rejections. With
        :meth:`store`, what :meth:`ingest` does, in two steps that may run on two threads."""
        intake = self._intake(source)
        return Screened(intake, self._parsed(raws, range(len(raws)), intake), len(raws))

    def screen_lines(self, lines: Lines, source: str) -> Screened:
        """:meth:`screen` for NDJSON lines: the plain counter events are validated a column at
        a time (``usage_columns``), the rest one by one as in :meth:`screen`."""
        intake = self._intake(source)
        table = ndjson_table(lines.lines)
        if table is None:  # not one object per line: one by one, which says where it breaks
            return self.screen(lines, source)
        plain, rest = plain_rows(table, self.catalog.counter_ids, intake.now_us)
        valid = self._parsed(lines, rest, intake)
        screened = Screened(intake, valid, len(lines), plain, lines)
        return screened if plain.independent_of(valid) else screened.one_by_one()

    def _intake(self, source: str) -> Intake:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        return Intake(source, to_us(self.clock.now()))

    def _parsed(
        self, raws: Sequence[object], positions: Iterable[int], intake: Intake
    ) -> list[tuple[int, UsageEvent, object]]:
        """The events at ``positions`` that validate, with their positions; the rest refused."""
        valid: list[tuple[int, UsageEvent, object]] = []
        resources, now_us = self.catalog.resources, intake.now_us
        for index in positions:
            raw = raws[index]
            try:
                valid.append((index, parse_event(raw, resources, now_us), raw))
            except EventError as error:
                intake.refuse(index, raw, EventStatus.REJECTED, error.field, error.reason)
        return valid

    def store(self, screened: Screened) -> Outcomes:
        """Dedup and count in one write transaction (tried again if it raced another writer);
        one outcome per event, in order."""
        return self.store_group([screened])[0]

    def store_group(self, batches: Sequence[Screened]) -> list[Outcomes]:
        """:meth:`store` for several batches in one transaction, one after the other: each
        batch's outcomes are what storing it alone, after the ones before it, would give."""
        statuses: list[list[EventStatus | None]] = []
        for attempt in range(_RACE_RETRIES):
            try:
                # The last try runs alone: side-by-side writers that keep storing the same keys
                # first could otherwise keep a batch losing the race.
                with self.uow.write(exclusive=attempt == _RACE_RETRIES - 1) as tx:
                    statuses = [self._store_in(tx.usage, screened) for screened in batches]
                break
            except ConcurrentWriteError:
                if attempt == _RACE_RETRIES - 1:
                    raise
                for screened in batches:  # the next try looks the keys up again
                    screened.intake.forget_dedup()
        return [
            Outcomes(screened.size, screened.intake.outcomes, screened.plain, plain)
            for screened, plain in zip(batches, statuses, strict=True)
        ]

    def _store_in(self, repo: UsageRepository, screened: Screened) -> list[EventStatus | None]:
        """One batch's part of a write transaction: the plain rows' statuses."""
        intake = screened.intake
        plain = _store_plain(repo, screened) if screened.plain is not None else []
        fresh = dedup(repo, screened.valid, intake)
        _count(repo, fresh, self.catalog, received_us=intake.now_us, source=intake.source)
        repo.add_rejections(intake.letters)
        return plain

    def submit(self, screened: Screened) -> Future[Outcomes]:
        """Store a screened batch with whatever other batches are waiting, in one transaction
        (group commit: ``usage_commit``); for callers side by side, such as HTTP requests.
        The future holds the batch's outcomes once they are durable."""
        with self._committer_lock:
            if self._committer is None:
                self._committer = GroupCommitter(self)
            return self._committer.submit(screened)

    def close(self) -> None:
        """Finish what was submitted and stop the committer thread, if it started."""
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.close()

    def period_usage(self, account: str, period: str) -> PeriodUsage:
        """An account's usage in a month, counted up to now (or to the month's end)."""
        start, end = month_bounds(period)
        now = self.clock.now()
        start_us, end_us = to_us(start), to_us(end)
        as_of_us = max(start_us, min(to_us(now), end_us))
        with self.uow.read() as tx:
            totals = tx.usage.period_totals(account, start_us, end_us)
            gauges = tx.usage.account_open_gauges(account)
        for (_, resource_id, _), latest in gauges.items():
            extra = open_segment(latest, start_us, as_of_us)
            if extra:
                quantity, events = totals.get(resource_id, (Decimal(0), 0))
                totals[resource_id] = (EXACT.add(quantity, extra), events)
        seconds = (end_us - start_us) // 1_000_000
        rows = []
        for resource_id in sorted(totals):
            resource = self.catalog.resources.get(resource_id)
            if resource is None:
                continue  # a resource since removed from the price book: not billable here
            raw, events = totals[resource_id]
            billable = resource.billable_quantity(Fraction(raw), seconds)
            rows.append(ResourceUsage(resource, raw, billable, events))
        return PeriodUsage(
            account=account,
            period=period,
            start=start,
            end=end,
            as_of=min(max(now, start), end),
            resources=tuple(rows),
        )

    def dead_letters(self, *, limit: int = 100, before: int | None = None) -> list[DeadLetter]:
        with self.uow.read() as tx:
            return tx.usage.dead_letters(limit=limit, before=before)


def _count(
    repo: UsageRepository,
    events: list[UsageEvent],
    catalog: Catalog,
    *,
    received_us: int,
    source: str,
) -> None:
    """Store new events and add them to the hourly rollups and gauge levels."""
    deltas: dict[HourKey, tuple[Decimal, int]] = {}
    gauge_ids = catalog.gauge_ids
    counters = [e for e in events if e.resource not in gauge_ids]
    gauges = [e for e in events if e.resource in gauge_ids] if len(counters) < len(events) else []
    repo.add_events(counters, received_us=received_us, source=source)
    for event in counters:  # add_to, inlined: once per event of every batch
        key = (event.account, event.resource, event.ts_us - event.ts_us % HOUR_US)
        found = deltas.get(key)
        deltas[key] = (
            (event.quantity, 1)
            if found is None
            else (EXACT.add(found[0], event.quantity), found[1] + 1)
        )
    gauge_keys = {(e.account, e.resource, e.subject) for e in gauges}
    repo.lock_gauges(gauge_keys)
    opened = repo.open_gauges(gauge_keys)
    changed: dict[GaugeKey, Level] = {}
    for event in gauges:
        gauge = (event.account, event.resource, event.subject)
        previous, next_ts = repo.gauge_neighbours(gauge, event.ts_us)
        change: GaugeChange = gauge_insert(
            Level(event.ts_us, event.quantity), previous, next_ts, opened.get(gauge)
        )
        repo.add_events([event], received_us=received_us, source=source)
        for bucket, delta in change.hourly.items():
            add_to(deltas, (event.account, event.resource, bucket), delta, 0)
        add_to(deltas, (event.account, event.resource, hour_of(event.ts_us)), Decimal(0), 1)
        if change.open is not None:
            opened[gauge] = changed[gauge] = change.open
    repo.add_hourly(deltas)
    repo.save_open_gauges(changed)


def _store_plain(repo: UsageRepository, screened: Screened) -> list[EventStatus | None]:
    """Dedup and count a batch's plain rows (columns; their keys are unique in the batch and
    apart from its other events'): each row's status, None for a conflict (refused here)."""
    plain, intake = screened.plain, screened.intake
    assert plain is not None
    events = plain.events
    seen = repo.add_new_events(events, received_us=intake.now_us, source=intake.source)
    statuses: list[EventStatus | None] = [_ACCEPTED] * len(events)
    fresh = events
    if seen:
        fingerprints = events.fingerprints
        for row, first in seen.items():
            if first == fingerprints[row]:
                statuses[row] = _DUPLICATE
            else:
                statuses[row] = None
                index = plain.positions[row]
                intake.refuse(index, screened.raw[index], EventStatus.CONFLICT, "id", _CONFLICT)
        fresh = events.without(seen.keys())
    # Summed where the batch was screened, for every row; a batch with rows stored already
    # has its fresh rows' deltas summed again.
    deltas = plain.deltas if fresh is events else HourlyDeltas.of(_hourly_deltas(fresh))
    repo.add_hourly_columns(deltas)
    return statuses


def _hourly_deltas(events: EventColumns) -> dict[HourKey, tuple[Decimal | str, int]]:
    """The events' sums by (account, resource, hour), with their counts, quantities as text.

    Most hours of a batch have one event, whose quantity is the sum as it is (canonical text,
    stored as given): those are taken in C, with no Python step per event (a loop over the
    batch cost most of a microsecond an event, on the thread every batch waits for). Only the
    hours with several events are added up, exactly."""
    stamps = np.asarray(events.ts_us, dtype=np.int64)
    hours = (stamps - stamps % HOUR_US).tolist()
    keys = list(zip(events.accounts, events.resources, hours, strict=True))
    deltas: dict[HourKey, tuple[Decimal | str, int]]
    deltas = dict(zip(keys, zip(events.quantities, repeat(1)), strict=True))
    if len(deltas) == len(keys):
        return deltas
    repeated = {key for key, n in Counter(keys).items() if n > 1}
    sums: dict[HourKey, tuple[Decimal, int]] = {}
    for key, quantity in zip(keys, events.quantities, strict=True):
        if key in repeated:
            add_to(sums, key, Decimal(quantity), 1)
    for key, (total, n) in sums.items():
        deltas[key] = (format(total, "f"), n)
    return deltas


def add_to(
    totals: dict[HourKey, tuple[Decimal, int]], key: HourKey, quantity: Decimal, n: int
) -> None:
    quantity_before, count_before = totals.get(key, (Decimal(0), 0))
    totals[key] = (EXACT.add(quantity_before, quantity), count_before + n)


@dataclass(frozen=True, slots=True)
class Screened:
    """A batch after validation, before storage: events validated one by one (``valid``) and,
    from NDJSON lines, the plain ones validated as columns (``plain``); ``raw`` gives any
    event's body as received."""

    intake: Intake
    valid: list[tuple[int, UsageEvent, object]]
    size: int
    plain: PlainRows | None = None
    raw: Sequence[object] = ()

    def one_by_one(self) -> Screened:
        """The same batch with its plain rows as events, for the per-event path (a batch whose
        plain rows repeat a key, or share one with its other events: dedup then needs them in
        arrival order)."""
        if self.plain is None:
            return self
        events = self.plain.events.events()
        plain = [
            (at, event, self.raw[at])
            for at, event in zip(self.plain.positions, events, strict=True)
        ]
        valid = sorted([*self.valid, *plain], key=lambda item: item[0])
        return Screened(self.intake, valid, self.size)


def _as_it_is(outcome: EventOutcome) -> EventOutcome:
    return outcome


class Outcomes(Sequence[EventOutcome]):
    """A batch's outcomes, one per event in order, kept as statuses for the rows taken as
    columns: counting them and listing the problems makes no object per event."""

    def __init__(
        self,
        size: int,
        decided: dict[int, EventOutcome],
        plain: PlainRows | None,
        statuses: list[EventStatus | None],
    ) -> None:
        self._size = size
        self._decided = decided
        self._plain = plain
        self._statuses = statuses
        self._all: list[EventOutcome] | None = None

    def counts(self) -> Counter[EventStatus]:
        """How many events ended in each status."""
        counted: Counter[EventStatus | None] = Counter(self._statuses)  # in C, not a step each
        del counted[None]
        counted.update(outcome.status for outcome in self._decided.values())
        return cast(Counter[EventStatus], counted)

    def problems(self) -> list[EventOutcome]:
        """The rejected and conflicting events' outcomes, in order."""
        return [self._decided[i] for i in sorted(self._decided) if self._decided[i].reason]

    def mapped(
        self,
        plain: Callable[[int, str, EventStatus], _M],
        decided: Callable[[EventOutcome], _M],
    ) -> list[_M]:
        """Each event's outcome made into something, in order: the plain rows' by ``plain``
        from their columns (index, id, status), without an outcome object each, which cost
        more than the rest of an answer; the others' by ``decided``."""
        taken, statuses = self._plain, self._statuses
        if taken is not None and len(taken.positions) == self._size and None not in statuses:
            # every event plain, so positions 0, 1, ...: all made in C
            made_all = map(plain, taken.positions, taken.events.ids, statuses)  # type: ignore[arg-type]
            return list(made_all)
        made: list[_M | None] = [None] * self._size
        for index, outcome in self._decided.items():
            made[index] = decided(outcome)
        if taken is not None:
            for index, event_id, status in zip(
                taken.positions, taken.events.ids, statuses, strict=True
            ):
                if status is not None:
                    made[index] = plain(index, event_id, status)
        return made  # type: ignore[return-value]  # every index is one or the other

    def _listed(self) -> list[EventOutcome]:
        if self._all is None:
            self._all = self.mapped(EventOutcome, _as_it_is)
        return self._all

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> EventOutcome:  # type: ignore[override]
        return self._listed()[index]

    def __iter__(self) -> Iterator[EventOutcome]:
        return iter(self._listed())


@dataclass
class Intake:
    """One batch's outcomes and dead letters as they are decided."""

    source: str
    now_us: int
    outcomes: dict[int, EventOutcome] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)

    def forget_dedup(self) -> None:
        """Drop what dedup decided (outcomes and conflict letters), keeping the rejections made
        before any lookup, for a batch that is tried again."""
        self.outcomes = {i: o for i, o in self.outcomes.items() if o.status is EventStatus.REJECTED}
        self.letters = [letter for letter in self.letters if letter.status is EventStatus.REJECTED]

    def refuse(self, index: int, raw: object, status: EventStatus, field: str, reason: str) -> None:
        """Report a rejected or conflicting event and keep it as a dead letter, body and all."""
        event_id = raw_text(raw, "id")
        self.outcomes[index] = EventOutcome(index, event_id, status, field, reason)
        try:
            body = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            body = repr(raw)
        self.letters.append(
            DeadLetter(
                status=status,
                account=raw_text(raw, "account"),
                event_id=event_id,
                field=field,
                reason=reason,
                body=body[:_MAX_BODY],
                source=self.source,
                received_us=self.now_us,
            )
        )


def dedup(
    repo: UsageRepository | None, valid: list[tuple[int, UsageEvent, object]], intake: Intake
) -> list[UsageEvent]:
    """Sort a batch's valid events into new ones, duplicates and conflicts: against storage
    (unless ``repo`` is None: a replacement's events are a generation of their own) and against
    earlier events of the same batch."""
    keys = [event[:2] for _, event, _ in valid]  # (account, id): UsageEvent.key, unrolled
    seen = repo.fingerprints(set(keys)) if repo is not None else {}
    fresh: list[UsageEvent] = []
    outcomes = intake.outcomes  # filled here directly: this loop runs once per event
    for (index, event, raw), key in zip(valid, keys, strict=True):
        digest = event.fingerprint
        first = seen.get(key)
        if first is None:
            seen[key] = digest
            fresh.append(event)
            outcomes[index] = EventOutcome(index, key[1], _ACCEPTED)
        elif first == digest:
            outcomes[index] = EventOutcome(index, key[1], _DUPLICATE)
        else:
            intake.refuse(index, raw, EventStatus.CONFLICT, "id", _CONFLICT)
    return fresh
