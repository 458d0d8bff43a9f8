"""Retention over calendars: exact kept sets for given settings (restic's OR semantics, UTC buckets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tcgjobs.backups.retention import Candidate, Policy, plan
from tcgjobs.errors import ConfigError


def at(text: str) -> datetime:
    """'2026-11-27' or '2026-11-27 13:05' as a UTC time."""
    if len(text) == 10:
        text += " 00:00"
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def daily(first: str, count: int, hour: int = 0) -> list[str]:
    start = date.fromisoformat(first)
    return [f"{start + timedelta(days=i)} {hour:02d}:00" for i in range(count)]


def kept(times: list[str], policy: Policy, now: str | None = None,
         status: dict[str, str] | None = None) -> list[str]:
    status = status or {}
    candidates = [Candidate(t, at(t), status.get(t, "verified")) for t in times]
    decisions = plan(candidates, policy, at(now) if now else max(c.created_at for c in candidates))
    return sorted(d.key for d in decisions if d.keep)


# 400 daily backups from 2025-10-26 to 2026-11-29 (a Sunday), one at midnight each day.
FOUR_HUNDRED = daily("2025-10-26", 400)

CASES = [
    pytest.param(
        FOUR_HUNDRED, Policy(daily=7, weekly=4, monthly=3, minimum=1),
        # 7 days; ISO weeks W48 (Sun 11-29, already daily), W47, W46, W45 -> their Sundays;
        # months 2026-11 (11-29), 2026-10 (10-31), 2026-09 (09-30).
        ["2026-09-30 00:00", "2026-10-31 00:00", "2026-11-08 00:00", "2026-11-15 00:00",
         "2026-11-22 00:00"] + daily("2026-11-23", 7),
        id="400-daily-7d-4w-3m"),
    pytest.param(
        FOUR_HUNDRED, Policy(daily=0, weekly=0, monthly=0, yearly=2, minimum=1),
        ["2025-12-31 00:00", "2026-11-29 00:00"], id="400-daily-yearly-only"),
    pytest.param(
        FOUR_HUNDRED, Policy(daily=2, weekly=0, monthly=14, minimum=1),
        # the oldest month with backups is 2025-10 (26th-31st): its newest is 10-31.
        ["2025-10-31 00:00", "2025-11-30 00:00", "2025-12-31 00:00", "2026-01-31 00:00",
         "2026-02-28 00:00", "2026-03-31 00:00", "2026-04-30 00:00", "2026-05-31 00:00",
         "2026-06-30 00:00", "2026-07-31 00:00", "2026-08-31 00:00", "2026-09-30 00:00",
         "2026-10-31 00:00", "2026-11-28 00:00", "2026-11-29 00:00"], id="400-daily-14-months"),
    pytest.param(
        ["2026-11-20 01:00", "2026-11-20 13:00", "2026-11-20 23:59", "2026-11-21 08:00",
         "2026-11-21 09:00", "2026-11-23 10:00"],
        Policy(daily=3, weekly=0, monthly=0, minimum=1),
        ["2026-11-20 23:59", "2026-11-21 09:00", "2026-11-23 10:00"], id="several-per-day-newest-wins"),
    pytest.param(
        # irregular gaps: days without backups do not use up daily slots
        ["2026-01-02 00:00", "2026-03-15 00:00", "2026-07-01 00:00", "2026-07-02 00:00",
         "2026-11-28 00:00"],
        Policy(daily=4, weekly=0, monthly=0, minimum=1),
        ["2026-03-15 00:00", "2026-07-01 00:00", "2026-07-02 00:00", "2026-11-28 00:00"],
        id="irregular-gaps"),
    pytest.param(
        # leap day and month boundary: Feb 2024 ends on the 29th
        ["2024-02-27 12:00", "2024-02-28 12:00", "2024-02-29 12:00", "2024-03-01 00:30",
         "2024-03-01 06:00"],
        Policy(daily=0, weekly=0, monthly=2, minimum=1),
        ["2024-02-29 12:00", "2024-03-01 06:00"], id="leap-day-month-boundary"),
    pytest.param(
        # ISO week boundary: Sunday 2026-11-22 belongs to W47, Monday 11-23 to W48
        ["2026-11-16 10:00", "2026-11-22 23:00", "2026-11-23 00:01", "2026-11-24 10:00"],
        Policy(daily=0, weekly=2, monthly=0, minimum=1),
        ["2026-11-22 23:00", "2026-11-24 10:00"], id="iso-week-boundary"),
    pytest.param(
        # ISO week 2020-W53 spans the new year (Mon 2020-12-28 .. Sun 2021-01-03)
        ["2020-12-27 10:00", "2020-12-29 10:00", "2021-01-03 10:00", "2021-01-04 10:00"],
        Policy(daily=0, weekly=3, monthly=0, minimum=1),
        ["2020-12-27 10:00", "2021-01-03 10:00", "2021-01-04 10:00"], id="iso-week-across-new-year"),
    pytest.param(
        daily("2026-11-01", 10), Policy(daily=2, weekly=0, monthly=0, minimum=5),
        daily("2026-11-06", 5), id="minimum-fills-with-newest"),
]


@pytest.mark.parametrize(("times", "policy", "expected"), CASES)
def test_retention_keeps_exactly_the_expected_backups(times, policy, expected):
    assert kept(times, policy) == sorted(expected)


def test_one_backup_can_satisfy_several_rules_at_once_and_has_every_reason():
    times = daily("2026-11-23", 7)  # Monday .. Sunday of 2026-W48
    candidates = [Candidate(t, at(t), "verified") for t in times]
    decisions = plan(candidates, Policy(daily=1, weekly=1, monthly=1, yearly=1, minimum=1), at("2026-11-29"))
    newest = decisions[0]
    assert newest.key == "2026-11-29 00:00"
    assert newest.reasons == ["daily 2026-11-29", "weekly 2026-W48", "monthly 2026-11", "yearly 2026"]
    assert [d.action for d in decisions[1:]] == ["delete"] * 6
    assert all(d.reasons == ["no rule keeps it"] for d in decisions[1:])


def test_buckets_are_utc_days_even_for_times_given_in_another_zone():
    eastern = timezone(timedelta(hours=-5))
    late_evening = datetime(2026, 11, 27, 21, 0, tzinfo=eastern)  # 2026-11-28 02:00 UTC
    candidates = [Candidate("a", late_evening, "verified"),
                  Candidate("b", at("2026-11-28 01:00"), "verified")]
    decisions = plan(candidates, Policy(daily=5, weekly=0, monthly=0, minimum=1), at("2026-11-29"))
    assert {d.key: d.action for d in decisions} == {"a": "keep", "b": "delete"}
    assert decisions[0].reasons == ["daily 2026-11-28"]


def test_corrupt_backups_never_fill_a_slot_and_are_deleted():
    times = daily("2026-11-20", 5)
    status = {"2026-11-24 00:00": "corrupt", "2026-11-23 00:00": "corrupt"}
    assert kept(times, Policy(daily=2, weekly=0, monthly=0, minimum=1), status=status) == [
        "2026-11-21 00:00", "2026-11-22 00:00"]


def test_the_newest_backup_that_is_corrupt_does_not_count_as_the_newest_verified():
    times = daily("2026-11-20", 3)
    candidates = [Candidate(t, at(t), "corrupt" if t.startswith("2026-11-22") else "verified") for t in times]
    policy = Policy(daily=1, weekly=0, monthly=0, minimum=1)
    decisions = {d.key: d for d in plan(candidates, policy, at("2026-11-22"))}
    assert decisions["2026-11-22 00:00"].action == "delete"
    assert decisions["2026-11-22 00:00"].reasons == ["corrupt"]
    assert decisions["2026-11-21 00:00"].reasons == ["daily 2026-11-21"]


def test_unverifiable_backups_are_kept_but_never_counted():
    times = daily("2026-11-20", 4)
    status = {"2026-11-23 00:00": "unverifiable"}
    candidates = [Candidate(t, at(t), status.get(t, "verified")) for t in times]
    policy = Policy(daily=2, weekly=0, monthly=0, minimum=1)
    decisions = {d.key: d for d in plan(candidates, policy, at("2026-11-23"))}
    assert decisions["2026-11-23 00:00"].keep
    assert decisions["2026-11-23 00:00"].reasons == ["unverifiable: kept, not counted"]
    # the two daily slots go to the two newest verified backups
    assert decisions["2026-11-22 00:00"].reasons == ["daily 2026-11-22"]
    assert decisions["2026-11-21 00:00"].reasons == ["daily 2026-11-21"]
    assert not decisions["2026-11-20 00:00"].keep


def test_a_corrupt_backup_is_kept_when_it_is_the_only_backup():
    decisions = plan([Candidate("only", at("2026-11-20"), "corrupt")], Policy(), at("2026-11-28"))
    assert decisions[0].keep
    assert decisions[0].reasons == ["corrupt, kept: no verified backup exists"]


# (times, status of each time that is not verified, policy, expected kept set)
SAFETY_CASES = [
    pytest.param(
        ["2026-11-20 00:00", "2026-11-21 00:00"],
        {"2026-11-20 00:00": "corrupt", "2026-11-21 00:00": "unverifiable"},
        Policy(daily=1, weekly=0, monthly=0, minimum=1),
        ["2026-11-20 00:00", "2026-11-21 00:00"], id="corrupt-and-unverifiable-both-kept"),
    pytest.param(
        ["2026-11-20 00:00", "2026-11-21 00:00", "2026-11-22 00:00"],
        {"2026-11-20 00:00": "corrupt", "2026-11-21 00:00": "corrupt", "2026-11-22 00:00": "unverifiable"},
        Policy(daily=1, weekly=0, monthly=0, minimum=1),
        ["2026-11-20 00:00", "2026-11-21 00:00", "2026-11-22 00:00"], id="no-sound-backup-deletes-nothing"),
    pytest.param(
        ["2026-11-20 00:00", "2026-11-21 00:00"],
        {"2026-11-20 00:00": "corrupt", "2026-11-21 00:00": "corrupt"},
        Policy(daily=1, weekly=0, monthly=0, minimum=1),
        ["2026-11-20 00:00", "2026-11-21 00:00"], id="only-corrupt-backups-kept"),
    pytest.param(
        ["2026-11-20 00:00", "2026-11-21 00:00", "2026-11-22 00:00"],
        {"2026-11-21 00:00": "corrupt", "2026-11-22 00:00": "unverifiable"},
        Policy(daily=1, weekly=0, monthly=0, minimum=1),
        ["2026-11-20 00:00", "2026-11-22 00:00"], id="corrupt-deleted-once-a-sound-backup-exists"),
]


@pytest.mark.parametrize(("times", "status", "policy", "expected"), SAFETY_CASES)
def test_corrupt_backups_are_kept_while_no_sound_backup_exists(times, status, policy, expected):
    assert kept(times, policy, status=status) == sorted(expected)


def test_backups_dated_in_the_future_are_kept_and_take_the_newest_slots():
    times = ["2025-06-01 00:00", "2026-01-01 00:00"]
    candidates = [Candidate(t, at(t), "verified") for t in times]
    candidates.append(Candidate("future", at("2030-01-01"), "verified"))
    decisions = {d.key: d for d in plan(candidates, Policy(daily=0, weekly=0, monthly=0, yearly=1, minimum=1),
                                        at("2026-06-01"))}
    assert decisions["future"].reasons == ["yearly 2030", "dated in the future"]
    assert decisions["2026-01-01 00:00"].action == "delete"


@pytest.mark.parametrize("policy", [Policy(daily=0, weekly=0, monthly=0, yearly=0, minimum=5),
                                    Policy(daily=-1, weekly=1)])
def test_an_empty_or_negative_policy_is_refused(policy):
    with pytest.raises(ConfigError):
        plan([Candidate("a", at("2026-11-20"), "verified")], policy, at("2026-11-20"))


def test_naive_times_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        plan([Candidate("a", datetime(2026, 11, 20), "verified")], Policy(), at("2026-11-20"))
