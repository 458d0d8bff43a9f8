"""Pure logic: grading against thresholds, durations in alert texts, silence times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tcgjobs.levels import Level, grade_above, grade_below
from tcgjobs.times import human_duration, parse_instant, parse_until

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "level"), [(0, Level.OK), (99.9, Level.OK), (100, Level.WARNING),
                                              (499, Level.WARNING), (500, Level.CRITICAL), (1e9, Level.CRITICAL)])
def test_grade_above_uses_warning_and_critical_thresholds_inclusively(value, level):
    assert grade_above(value, 100, 500) is level


@pytest.mark.parametrize(("free", "level"), [(10_000, Level.OK), (2048, Level.OK), (2047, Level.WARNING),
                                             (500, Level.WARNING), (499, Level.CRITICAL), (0, Level.CRITICAL)])
def test_grade_below_is_bad_when_low(free, level):
    assert grade_below(free, 2048, 500) is level


def test_worst_level_of_none_is_ok():
    assert Level.worst([]) is Level.OK
    assert Level.worst([Level.WARNING, Level.OK, Level.CRITICAL, Level.WARNING]) is Level.CRITICAL


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=0), "0s"), (timedelta(seconds=45), "45s"), (timedelta(minutes=3), "3m"),
    (timedelta(minutes=3, seconds=5), "3m 5s"), (timedelta(hours=2), "2h"), (timedelta(hours=2, minutes=5), "2h 5m"),
    (timedelta(days=3, hours=4, minutes=59), "3d 4h"), (timedelta(days=1), "1d"), (timedelta(seconds=-5), "0s")])
def test_human_duration(delta, text):
    assert human_duration(delta) == text


@pytest.mark.parametrize(("raw", "expected"), [
    ("90m", NOW + timedelta(minutes=90)), ("2h", NOW + timedelta(hours=2)), ("1d", NOW + timedelta(days=1)),
    ("1.5h", NOW + timedelta(minutes=90)), ("30s", NOW + timedelta(seconds=30)), ("1w", NOW + timedelta(weeks=1)),
    ("2026-11-28T18:00", datetime(2026, 11, 28, 18, 0, tzinfo=UTC)),
    ("2026-11-28T18:00Z", datetime(2026, 11, 28, 18, 0, tzinfo=UTC)),
    ("2026-11-28T19:00+01:00", datetime(2026, 11, 28, 18, 0, tzinfo=UTC)),
])
def test_parse_until_takes_a_duration_or_an_iso_time(raw, expected):
    assert parse_until(raw, NOW) == expected


def test_parse_until_reads_a_time_without_zone_in_the_given_zone():
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert parse_until("2026-07-01T12:00", NOW, berlin) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert parse_until("2026-07-01T12:00Z", NOW, berlin) == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert parse_until("2h", NOW, berlin) == NOW + timedelta(hours=2)


@pytest.mark.parametrize("raw", ["", "soon", "2h30", "5 parsecs", "28/11/2026"])
def test_parse_until_rejects_anything_else(raw):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_until(raw, NOW)


def test_parse_instant_treats_naive_times_as_utc():
    assert parse_instant("2026-01-02 03:04:05").tzinfo is not None
    assert parse_instant("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
