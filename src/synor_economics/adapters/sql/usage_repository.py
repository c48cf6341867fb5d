"""The usage repository over SQLAlchemy Core (``ports.UsageRepository``), SQLite and PostgreSQL.

Lookups by key are row-value ``IN`` lists in chunks; rollups are read, added to in
Python (exact decimals) and written back, which is safe because writers are serialised.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, delete, insert, select, tuple_

from synor_economics.adapters.sql.tables import (
    usage_events,
    usage_gauges,
    usage_hourly,
    usage_rejections,
)
from synor_economics.domain.meters import EXACT, Level
from synor_economics.domain.usage import DeadLetter, EventStatus, UsageEvent
from synor_economics.ports import EventKey, GaugeKey, HourKey

_T = TypeVar("_T")
_CHUNK = 500
"""Composite keys per ``IN`` list: two or three parameters each, under every driver's limit."""


def _chunks(items: Collection[_T]) -> Iterator[list[_T]]:
    listed = list(items)
    for start in range(0, len(listed), _CHUNK):
        yield listed[start : start + _CHUNK]


class SqlUsageRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def fingerprints(self, keys: Collection[EventKey]) -> dict[EventKey, str]:
        found: dict[EventKey, str] = {}
        c = usage_events.c
        for chunk in _chunks(keys):
            condition = tuple_(c.account, c.event_id).in_(chunk)
            query = select(c.account, c.event_id, c.fingerprint).where(condition)
            for row in self.conn.execute(query):
                found[(row.account, row.event_id)] = row.fingerprint
        return found

    def add_events(self, events: Sequence[UsageEvent], *, received_us: int, source: str) -> None:
        if not events:
            return
        rows = [
            {
                "account": e.account,
                "event_id": e.id,
                "resource": e.resource,
                "quantity": e.quantity,
                "ts_us": e.ts_us,
                "subject": e.subject,
                "operator": e.operator,
                "meta": e.meta,
                "fingerprint": e.fingerprint,
                "received_us": received_us,
                "source": source,
            }
            for e in events
        ]
        self.conn.execute(insert(usage_events), rows)

    def gauge_neighbours(self, key: GaugeKey, ts_us: int) -> tuple[Level | None, int | None]:
        c = usage_events.c
        account, resource, subject = key
        same = and_(c.account == account, c.resource == resource, c.subject == subject)
        before = self.conn.execute(
            select(c.ts_us, c.quantity)
            .where(same, c.ts_us <= ts_us)
            .order_by(c.ts_us.desc(), c.seq.desc())
            .limit(1)
        ).first()
        after = self.conn.execute(
            select(c.ts_us).where(same, c.ts_us > ts_us).order_by(c.ts_us).limit(1)
        ).scalar()
        previous = None if before is None else Level(before.ts_us, before.quantity)
        return previous, after

    def hourly(self, keys: Collection[HourKey]) -> dict[HourKey, tuple[Decimal, int]]:
        found: dict[HourKey, tuple[Decimal, int]] = {}
        c = usage_hourly.c
        for chunk in _chunks(keys):
            condition = tuple_(c.account, c.resource, c.hour_us).in_(chunk)
            for row in self.conn.execute(select(usage_hourly).where(condition)):
                found[(row.account, row.resource, row.hour_us)] = (row.quantity, row.events)
        return found

    def save_hourly(self, rows: Mapping[HourKey, tuple[Decimal, int]]) -> None:
        if not rows:
            return
        self._replace(
            usage_hourly,
            ("account", "resource", "hour_us"),
            [
                {"account": a, "resource": r, "hour_us": h, "quantity": q, "events": n}
                for (a, r, h), (q, n) in rows.items()
            ],
        )

    def open_gauges(self, keys: Collection[GaugeKey]) -> dict[GaugeKey, Level]:
        found: dict[GaugeKey, Level] = {}
        c = usage_gauges.c
        for chunk in _chunks(keys):
            condition = tuple_(c.account, c.resource, c.subject).in_(chunk)
            for row in self.conn.execute(select(usage_gauges).where(condition)):
                found[(row.account, row.resource, row.subject)] = Level(row.since_us, row.level)
        return found

    def save_open_gauges(self, rows: Mapping[GaugeKey, Level]) -> None:
        if not rows:
            return
        self._replace(
            usage_gauges,
            ("account", "resource", "subject"),
            [
                {"account": a, "resource": r, "subject": s, "level": v.level, "since_us": v.ts_us}
                for (a, r, s), v in rows.items()
            ],
        )

    def _replace(self, table: Any, key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        """Insert-or-replace by primary key: delete the old rows, insert the new (portable, and
        writers are serialised, so nothing slips in between)."""
        columns = [table.c[name] for name in key]
        for chunk in _chunks(rows):
            condition = tuple_(*columns).in_([tuple(row[n] for n in key) for row in chunk])
            self.conn.execute(delete(table).where(condition))
            self.conn.execute(insert(table), chunk)

    def add_rejections(self, rows: Sequence[DeadLetter]) -> None:
        if not rows:
            return
        self.conn.execute(
            insert(usage_rejections),
            [
                {
                    "received_us": r.received_us,
                    "source": r.source,
                    "status": r.status.value,
                    "account": r.account,
                    "event_id": r.event_id,
                    "field": r.field,
                    "reason": r.reason,
                    "body": r.body,
                }
                for r in rows
            ],
        )

    def period_totals(
        self, account: str, start_us: int, end_us: int
    ) -> dict[str, tuple[Decimal, int]]:
        c = usage_hourly.c
        query = select(c.resource, c.quantity, c.events).where(
            c.account == account, c.hour_us >= start_us, c.hour_us < end_us
        )
        totals: dict[str, tuple[Decimal, int]] = {}
        for row in self.conn.execute(query):
            quantity, events = totals.get(row.resource, (Decimal(0), 0))
            totals[row.resource] = (EXACT.add(quantity, row.quantity), events + row.events)
        return totals

    def account_open_gauges(self, account: str) -> dict[GaugeKey, Level]:
        query = select(usage_gauges).where(usage_gauges.c.account == account)
        return {
            (row.account, row.resource, row.subject): Level(row.since_us, row.level)
            for row in self.conn.execute(query)
        }

    def dead_letters(self, *, limit: int, before: int | None) -> list[DeadLetter]:
        c = usage_rejections.c
        query = select(usage_rejections).order_by(c.seq.desc()).limit(limit)
        if before is not None:
            query = query.where(c.seq < before)
        return [
            DeadLetter(
                status=EventStatus(row.status),
                account=row.account,
                event_id=row.event_id,
                field=row.field,
                reason=row.reason,
                body=row.body,
                source=row.source,
                received_us=row.received_us,
                seq=row.seq,
            )
            for row in self.conn.execute(query)
        ]
