"""Durations in alert texts, silence times and instants (tcgjobs.times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tcgjobs.times import human_duration, parse_instant, parse_until

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


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
