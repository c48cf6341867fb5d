"""Replacement backfills: swap one account's events in a time window for a corrected file, and
undo the swap. Nothing is deleted: the replaced events stay stored, marked as superseded, and a
revert withdraws the replacement's events and puts the originals back in the count.

The window must start and end on whole hours, so the hourly rollups of counters inside it can be
rebuilt from the events alone. Gauges carry their level across any boundary, so the account's
gauge rollups are rebuilt from its whole gauge history (gauge events are sparse: levels sampled
every few minutes or hours). Replacements of one account stack; only the newest one that
overlaps a window may be reverted, so the count never holds two versions of the same stretch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from synor_economics.domain.catalog import Catalog, MeterKind
from synor_economics.domain.meters import HOUR_US, Level, gauge_history, hour_of
from synor_economics.domain.usage import (
    MAX_EARLY_US,
    MAX_LATE_US,
    EventError,
    EventOutcome,
    EventStatus,
    Replacement,
    parse_event,
)
from synor_economics.ports import Clock, GaugeKey, HourKey, UsageRepository, UsageUnitOfWork
from synor_economics.services.time import to_us
from synor_economics.services.usage import Intake, add_to, dedup


class ReplacementError(ValueError):
    """A replacement that cannot be made or reverted, with the reason. ``code`` is stable:
    ``not_found``, ``already_reverted``, ``newer_overlaps`` or ``invalid_window``."""

    def __init__(self, message: str, code: str = "invalid_window") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ReplacementReport:
    replacement: Replacement
    outcomes: list[EventOutcome]


class ReplacementService:
    def __init__(self, uow: UsageUnitOfWork, clock: Clock, catalog: Catalog) -> None:
        self.uow = uow
        self.clock = clock
        self.catalog = catalog

    def replace(
        self, account: str, start: datetime, end: datetime, raws: list[object], *, note: str = ""
    ) -> ReplacementReport:
        """Take ``account``'s events in ``[start, end)`` out of the count and count ``raws``
        instead, in one transaction. Every event must belong to the account and the window."""
        now_us = to_us(self.clock.now())
        start_us, end_us = to_us(start), to_us(end)
        _check_window(start_us, end_us, now_us)
        intake = Intake("file", now_us)
        valid = []
        for index, raw in enumerate(raws):
            try:
                event = parse_event(raw, self.catalog.resources, now_us)
                if event.account != account:
                    raise EventError("account", f"must be {account}: the replacement's account")
                if not start_us <= event.ts_us < end_us:
                    raise EventError("ts", "is outside the replacement's window")
            except EventError as error:
                intake.refuse(index, raw, EventStatus.REJECTED, error.field, error.reason)
                continue
            valid.append((index, event, raw))
        with self.uow.write() as tx:
            repo = tx.usage
            seq = repo.add_replacement(Replacement(account, start_us, end_us, now_us, note))
            superseded = repo.supersede(account, start_us, end_us, by=seq)
            fresh = dedup(None, valid, intake)
            repo.add_events(fresh, received_us=now_us, source="file", generation=seq)
            rebuild(repo, self.catalog, account, start_us, end_us)
            done = Replacement(
                account, start_us, end_us, now_us, note, superseded, len(fresh), None, seq
            )
            repo.update_replacement(done)
            repo.add_rejections(intake.letters)
        return ReplacementReport(done, [intake.outcomes[i] for i in range(len(raws))])

    def revert(self, seq: int) -> Replacement:
        """Withdraw a replacement's events and put back the events it superseded."""
        now_us = to_us(self.clock.now())
        with self.uow.write() as tx:
            repo = tx.usage
            found = {r.seq: r for r in repo.replacements(None)}
            target = found.get(seq)
            if target is None:
                raise ReplacementError(f"replacement {seq} does not exist", "not_found")
            if not target.active:
                raise ReplacementError(f"replacement {seq} is already reverted", "already_reverted")
            newer = sorted(
                r.seq
                for r in found.values()
                if r.seq > seq
                and r.active
                and r.account == target.account
                and r.overlaps(target.start_us, target.end_us)
            )
            if newer:
                raise ReplacementError(
                    f"replacement {newer[-1]} overlaps {seq} and is newer: revert it first",
                    "newer_overlaps",
                )
            repo.withdraw(seq)
            reverted = replace(target, reverted_us=now_us)
            repo.update_replacement(reverted)
            rebuild(repo, self.catalog, target.account, target.start_us, target.end_us)
        return reverted

    def replacements(self, account: str | None = None) -> list[Replacement]:
        with self.uow.read() as tx:
            return tx.usage.replacements(account)


def _check_window(start_us: int, end_us: int, now_us: int) -> None:
    if start_us % HOUR_US or end_us % HOUR_US:
        raise ReplacementError("the window must start and end on whole hours (UTC)")
    if end_us <= start_us:
        raise ReplacementError("the window must end after it starts")
    if start_us < now_us - MAX_LATE_US or end_us > now_us + MAX_EARLY_US + HOUR_US:
        raise ReplacementError("the window must lie within the last 35 days")


def rebuild(
    repo: UsageRepository, catalog: Catalog, account: str, start_us: int, end_us: int
) -> None:
    """Rebuild the account's rollups from the events in the count: counters in the window,
    gauges over their whole history."""
    counters = [r.id for r in catalog if r.meter is MeterKind.COUNTER]
    gauges = [r.id for r in catalog if r.meter is MeterKind.GAUGE]
    rows: dict[HourKey, tuple[Decimal, int]] = {}
    repo.clear_rollups(account, counters, start_us, end_us)
    for event in repo.active_events(account, counters, start_us, end_us):
        add_to(rows, (account, event.resource, hour_of(event.ts_us)), event.quantity, 1)
    repo.clear_rollups(account, gauges, 0, None)
    history: dict[GaugeKey, list[Level]] = defaultdict(list)
    for event in repo.active_events(account, gauges, 0, None):
        history[(account, event.resource, event.subject)].append(Level(event.ts_us, event.quantity))
        add_to(rows, (account, event.resource, hour_of(event.ts_us)), Decimal(0), 1)
    opened: dict[GaugeKey, Level] = {}
    for key, levels in history.items():
        hourly, last = gauge_history(levels)
        for bucket, quantity in hourly.items():
            add_to(rows, (account, key[1], bucket), quantity, 0)
        if last is not None:
            opened[key] = last
    repo.add_hourly(rows)  # onto rollups just cleared: the rebuilt totals themselves
    repo.save_open_gauges(opened)
