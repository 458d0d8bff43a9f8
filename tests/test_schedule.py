"""Schedule maths, table-driven: next due, previous due, lateness, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tcgjobs.schedule import describe, late_since, next_due, previous_due

UTC_ZONE = ZoneInfo("UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("expr", "now", "expected"), [
    ("0 2 * * *", "2026-11-28 01:59:59", "2026-11-28 02:00:00"),
    ("0 2 * * *", "2026-11-28 02:00:00", "2026-11-29 02:00:00"),
    ("*/15 * * * *", "2026-11-28 12:07:00", "2026-11-28 12:15:00"),
    ("0 5 * * 0", "2026-11-28 12:00:00", "2026-11-29 05:00:00"),  # 2026-11-29 is a Sunday
    ("0 0 * * *", "2026-12-31 23:59:00", "2027-01-01 00:00:00"),
])
def test_next_due(expr, now, expected):
    assert next_due(expr, UTC_ZONE, at(now)) == at(expected)


@pytest.mark.parametrize(("expr", "now", "expected"), [
    ("0 2 * * *", "2026-11-28 02:00:00", "2026-11-28 02:00:00"),
    ("0 2 * * *", "2026-11-28 01:59:00", "2026-11-27 02:00:00"),
    ("0 5 * * 0", "2026-11-28 12:00:00", "2026-11-22 05:00:00"),
    ("*/15 * * * *", "2026-11-28 12:14:59", "2026-11-28 12:00:00"),
])
def test_previous_due(expr, now, expected):
    assert previous_due(expr, UTC_ZONE, at(now)) == at(expected)


def test_schedules_follow_the_configured_time_zone():
    berlin = ZoneInfo("Europe/Berlin")  # UTC+1 in November
    assert next_due("0 2 * * *", berlin, at("2026-11-28 00:00:00")) == at("2026-11-28 01:00:00")


def test_daylight_saving_spring_forward_does_not_skip_the_day():
    new_york = ZoneInfo("America/New_York")  # 2027-03-14: 02:00 local does not exist
    due = next_due("30 2 * * *", new_york, at("2027-03-14 05:00:00"))
    assert due.date() in (datetime(2027, 3, 14).date(), datetime(2027, 3, 15).date())


@pytest.mark.parametrize(("now", "progress", "tracked", "late"), [
    # due 02:00, allowance 1h: at 02:30 today's run is not late yet, yesterday's ran
    ("2026-11-28 02:30", "2026-11-27 02:00:05", "2026-11-01 00:00", None),
    # ... but with no run yesterday either, it is late since yesterday's due time
    ("2026-11-28 02:30", None, "2026-11-01 00:00", "2026-11-27 02:00"),
    # past the allowance with no progress: late since 02:00
    ("2026-11-28 03:30", None, "2026-11-01 00:00", "2026-11-28 02:00"),
    # a run started after the due time counts as progress
    ("2026-11-28 03:30", "2026-11-28 02:00:05", "2026-11-01 00:00", None),
    # a success from yesterday does not
    ("2026-11-28 03:30", "2026-11-27 02:00:05", "2026-11-01 00:00", "2026-11-28 02:00"),
    # a deployment newer than the due time is not held late for it
    ("2026-11-28 03:30", None, "2026-11-28 02:30", None),
])
def test_late_since(now, progress, tracked, late):
    result = late_since("0 2 * * *", UTC_ZONE, at(now), timedelta(hours=1),
                        at(progress) if progress else None, at(tracked))
    assert result == (at(late) if late else None)


def test_describe_in_words():
    assert describe("0 5 * * 0") == "At 05:00, only on Sunday"
    assert describe("*/15 * * * *") == "Every 15 minutes"
