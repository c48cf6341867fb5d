"""Billing periods: calendar months in UTC, anchor days, and what a period is long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from synor_economics.domain.period import Period, PeriodError, add_months


def utc(year: int, month: int, day: int, *time: int) -> datetime:
    hour, minute, second = (*time, 0, 0, 0)[:3]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_calendar_months_and_their_length() -> None:
    november = Period.parse_month("2026-11")
    assert (november.start, november.end) == (utc(2026, 11, 1), utc(2026, 12, 1))
    assert november.seconds == 30 * 86_400
    assert Period.month(2026, 12).seconds == 31 * 86_400
    assert Period.month(2028, 2).seconds == 29 * 86_400
    assert november.label == "2026-11"
    assert november.next() == Period.month(2026, 12)
    assert Period.month(2026, 12).next() == Period.month(2027, 1)


def test_anchor_days_clamp_to_short_months() -> None:
    period = Period.month(2027, 1, anchor_day=31)
    assert (period.start, period.end) == (utc(2027, 1, 31), utc(2027, 2, 28))
    assert Period.containing(utc(2027, 2, 10), anchor_day=15) == Period(
        utc(2027, 1, 15), utc(2027, 2, 15)
    )
    assert Period.containing(utc(2027, 2, 15), anchor_day=15).start == utc(2027, 2, 15)
    assert add_months(utc(2026, 11, 30), 3) == utc(2027, 2, 28)


def test_bad_periods_are_refused() -> None:
    with pytest.raises(PeriodError):
        Period(utc(2026, 12, 1), utc(2026, 11, 1))
    with pytest.raises(PeriodError):
        Period(datetime(2026, 11, 1), utc(2026, 12, 1))
    with pytest.raises(PeriodError):
        Period(datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=2))), utc(2026, 12, 1))
    with pytest.raises(PeriodError):
        Period.parse_month("November")
    with pytest.raises(PeriodError):
        Period.month(2026, 13)


def test_overlap_is_half_open() -> None:
    november = Period.month(2026, 11)
    assert november.overlaps(None, None)
    assert not november.overlaps(utc(2026, 12, 1), None)
    assert not november.overlaps(None, utc(2026, 11, 1))
    assert november.overlaps(None, utc(2026, 11, 1, 0, 0, 1))
