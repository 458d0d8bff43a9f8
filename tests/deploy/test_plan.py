"""The numbers behind the deploy files: intervals, backoff, retries, deadlines, exit policy."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from tcgjobs.config import load_settings
from tcgjobs.deploy.plan import (
    CARD_DATA_JOBS,
    backoff_seconds,
    exit_policy,
    graceful_stop_seconds,
    plan_all,
    plan_job,
    shortest_interval,
)
from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs, get_job


@pytest.mark.parametrize(("schedule", "zone", "seconds"), [
    ("*/15 * * * *", "UTC", 900),
    ("0 0 * * *", "UTC", 86_400),
    ("0 5 * * 0", "UTC", 604_800),
    ("0 1,3 * * *", "UTC", 7_200),
    ("0 0 1 * *", "UTC", 28 * 86_400),
    # Spring forward makes one local day 23 hours long.
    ("0 0 * * *", "America/New_York", 82_800),
    ("*/15 * * * *", "Europe/Berlin", 900),
])
def test_shortest_interval_over_a_year_including_dst(schedule, zone, seconds):
    assert shortest_interval(schedule, ZoneInfo(zone)) == seconds


@pytest.mark.parametrize(("retries", "seconds"), [
    (0, 0), (1, 10), (2, 30), (3, 70), (6, 630), (7, 630 + 360), (8, 630 + 720),
])
def test_backoff_doubles_from_ten_seconds_and_caps_at_six_minutes(retries, seconds):
    assert backoff_seconds(retries) == seconds


def test_every_non_zero_exit_code_is_either_final_or_retried():
    policy = exit_policy()
    assert set(policy.fail_at_once).isdisjoint(policy.retried)
    assert {ExitCode.USAGE, ExitCode.PROBLEMS, ExitCode.CONFIG} <= set(policy.fail_at_once)
    assert {ExitCode.UNAVAILABLE, ExitCode.SKIPPED, ExitCode.FAILED, ExitCode.TIMEOUT} <= set(policy.retried)
    assert 0 not in policy.fail_at_once + policy.retried


def test_graceful_stop_leaves_room_for_every_slack_attempt(env):
    settings = load_settings({**env, "TCGJOBS_SLACK_TIMEOUT": "20", "TCGJOBS_SLACK_MAX_ATTEMPTS": "4"})
    assert graceful_stop_seconds(settings) >= 20 * 4 + settings.slack_max_retry_after


def test_retries_shrink_until_the_deadline_fits_before_the_next_run(env):
    every_five = load_settings({**env, "TCGJOBS_DATABASE_HEALTH_CHECK_SCHEDULE": "*/5 * * * *"})
    plan = plan_job(get_job("database-health-check"), every_five)
    assert plan.retries == 0  # not even one retry fits in five minutes
    nightly = plan_job(get_job("backup-database"), load_settings(env))
    assert nightly.retries == 3
    assert nightly.active_deadline_seconds == 4 * nightly.attempt_seconds + backoff_seconds(3)


def test_plans_follow_the_registry_and_only_sync_jobs_read_card_data(env):
    plans = plan_all(load_settings(env))
    assert [p.name for p in plans] == list(all_jobs())
    assert set(all_jobs()) >= CARD_DATA_JOBS
    assert {p.name for p in plans if p.reads_card_data} == CARD_DATA_JOBS
    assert all(p.overrides == () for p in plans)
