"""Billing periods: half-open UTC intervals ``[start, end)`` (SPEC §3, §7).

The default period is the calendar month in UTC. An account may anchor its periods on another day
of the month (the 15th: 15 Nov – 15 Dec); a day past the end of a short month falls on that
month's last day (anchor 31 in February is the 28th or 29th), as card billing does.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from synor_economics.domain.errors import SynorError

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


class PeriodError(SynorError, ValueError):
    """A period that cannot exist (end before start, not UTC, a bad month label)."""


def require_utc(when: object, what: str) -> datetime:
    """``when`` itself, if it is an aware UTC datetime; every instant in billing is UTC."""
    if not isinstance(when, datetime):
        raise PeriodError(f"{what} must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() != timedelta(0):
        raise PeriodError(f"{what} must be a UTC datetime, got {when.isoformat()}")
    return when


def add_months(when: datetime, months: int, *, day: int | None = None) -> datetime:
    """``when`` moved by whole months, on ``day`` of the month (default: its own day), clamped
    to the target month's last day."""
    index = when.year * 12 + when.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return when.replace(year=year, month=month + 1, day=min(day or when.day, last))


@dataclass(frozen=True, slots=True)
class Period:
    """A billing period ``[start, end)`` in UTC, a whole number of seconds long."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_utc(self.start, "period start")
        require_utc(self.end, "period end")
        if self.end <= self.start:
            raise PeriodError(
                f"period end {self.end.isoformat()} must be after its start "
                f"{self.start.isoformat()}"
            )
        if (self.end - self.start).microseconds:
            raise PeriodError("a period must be a whole number of seconds long")

    @property
    def seconds(self) -> int:
        """Its length in seconds: what a gauge's integral is divided by (SPEC §3)."""
        span = self.end - self.start
        return span.days * 86_400 + span.seconds

    @property
    def label(self) -> str:
        """``2026-11`` for a calendar month, else ``start/end`` in ISO form."""
        if self == Period.month(self.start.year, self.start.month):
            return f"{self.start.year:04d}-{self.start.month:02d}"
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    def overlaps(self, start: datetime | None, end: datetime | None) -> bool:
        """Whether ``[start, end)`` (either side open when None) shares any instant with it."""
        return (start is None or start < self.end) and (end is None or end > self.start)

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end

    @staticmethod
    def month(year: int, month: int, *, anchor_day: int = 1) -> Period:
        """The period starting on ``anchor_day`` of the given month, ending a month later."""
        if not 1 <= anchor_day <= 31:
            raise PeriodError(f"anchor day must be 1-31, got {anchor_day}")
        if not 1 <= month <= 12:
            raise PeriodError(f"month must be 1-12, got {month}")
        first = datetime(year, month, 1, tzinfo=UTC)
        start = add_months(first, 0, day=anchor_day)
        return Period(start, add_months(first, 1, day=anchor_day))

    @staticmethod
    def parse_month(text: str, *, anchor_day: int = 1) -> Period:
        """``2026-11`` → the period that month (from its anchor day)."""
        match = _MONTH.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise PeriodError(f"period must look like 2026-11, got {text!r}")
        return Period.month(int(match[1]), int(match[2]), anchor_day=anchor_day)

    @staticmethod
    def containing(when: datetime, *, anchor_day: int = 1) -> Period:
        """The period (for this anchor day) that ``when`` falls in."""
        require_utc(when, "instant")
        candidate = Period.month(when.year, when.month, anchor_day=anchor_day)
        if when < candidate.start:
            previous = add_months(candidate.start.replace(day=1), -1)
            return Period.month(previous.year, previous.month, anchor_day=anchor_day)
        return candidate

    def next(self, *, anchor_day: int = 1) -> Period:
        """The period after this one, for the same anchor day."""
        return Period.containing(self.end, anchor_day=anchor_day)

    def earlier(self, months: int = 1) -> Period:
        """The period ``months`` before this one, on the same anchor day (its start's day)."""
        return Period.containing(add_months(self.start, -months), anchor_day=self.start.day)
