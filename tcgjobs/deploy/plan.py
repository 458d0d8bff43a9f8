"""The numbers every deploy file shares, computed from the registry, the settings and ExitCode.

One :class:`JobPlan` per job says when it runs, how long one attempt may take, how often
Kubernetes retries it and which exit codes end it at once. The Kubernetes and crontab renderers
only lay these numbers out; nothing here knows YAML or cron syntax.

How the Job deadline is bounded: an attempt is allowed ``POD_START_SECONDS`` to be scheduled and
start (plus ``CARD_DATA_SYNC_SECONDS`` for the git-sync init container of the sync jobs), then the
job's own timeout (the in-process deadline fires there and rolls back), then the graceful stop
(:func:`graceful_stop_seconds`). ``activeDeadlineSeconds`` is that times the number of attempts
plus Kubernetes' pod-failure backoff between them (10 s, doubling, capped at 6 min), so a Job that
uses every retry is never killed by its own deadline first. The retry count is the largest one up
to ``MAX_RETRIES`` whose deadline still fits in the shortest gap between two scheduled runs, so a
Job never outlives the next one (the 15-minute health check gets fewer retries than the nightly
backup).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from tcgjobs.config import Setting, Settings, job_settings
from tcgjobs.errors import RETRYABLE_EXIT_CODES, ExitCode
from tcgjobs.parsers import format_value
from tcgjobs.registry import Job, all_jobs

#: Allowance for one pod to be scheduled, pull its image and attach its volumes.
POD_START_SECONDS = 120
#: The git-sync init container's ``--sync-timeout`` (a shallow clone of pokemon-tcg-data).
CARD_DATA_SYNC_SECONDS = 300
#: Retries at most (Kubernetes ``backoffLimit``); fewer when the schedule is tighter.
MAX_RETRIES = 3
#: Kubernetes' pod-failure backoff: first delay, cap.
BACKOFF_FIRST_SECONDS = 10
BACKOFF_CAP_SECONDS = 360
#: Margin on top of the graceful stop for writing the ledger row and flushing logs.
STOP_MARGIN_SECONDS = 15
#: How long finished Jobs (and their pods' logs) are kept; the ledger keeps the history for good.
TTL_AFTER_FINISHED_SECONDS = 7 * 24 * 3600
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 3
#: A late start is still made up to this long after the scheduled time (never a burst of runs).
MAX_STARTING_DEADLINE_SECONDS = 3600
MIN_STARTING_DEADLINE_SECONDS = 60

#: Jobs that read the card data (TCGJOBS_DATA_SOURCE): they get a fresh checkout before each run.
CARD_DATA_JOBS = frozenset({"sync-missing-sets", "sync-missing-cards"})

#: The pokemon-tcg-data repository the sync jobs read, and where the deploy files put its checkout.
CARD_DATA_REPOSITORY = "https://github.com/PokemonTCG/pokemon-tcg-data"


@dataclass(frozen=True)
class ExitPolicy:
    """Which non-zero exit codes end a Job at once and which are retried (from ExitCode)."""

    fail_at_once: tuple[int, ...]
    retried: tuple[int, ...]


def exit_policy() -> ExitPolicy:
    """Every non-zero ExitCode is either retried (RETRYABLE_EXIT_CODES) or fails the Job at once.

    Usage (2), found problems (3) and configuration (78) errors will not go away by retrying, and an
    interrupt (130, 143) that Kubernetes did not cause (its own disruptions are ignored separately)
    means a person stopped the run.
    """
    non_zero = [code for code in ExitCode if code is not ExitCode.OK]
    return ExitPolicy(
        fail_at_once=tuple(sorted(int(c) for c in non_zero if c not in RETRYABLE_EXIT_CODES)),
        retried=tuple(sorted(int(c) for c in non_zero if c in RETRYABLE_EXIT_CODES)),
    )


def graceful_stop_seconds(settings: Settings) -> int:
    """How long a run may take to stop after SIGTERM or its deadline.

    The current statement is interrupted (at most one SQLite busy wait), the transaction rolled
    back, the ledger row written, and the failure alert sent, which may take every Slack attempt
    plus the longest Retry-After honoured.
    """
    slack = settings.slack_timeout * settings.slack_max_attempts + settings.slack_max_retry_after
    return math.ceil(settings.busy_timeout_ms / 1000 + slack + STOP_MARGIN_SECONDS)


def _offset_changes(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The hours in [start, end) at which ``tz`` changes its UTC offset (DST transitions)."""
    changes, at = [], start.astimezone(UTC)
    previous = at.astimezone(tz).utcoffset()
    while at < end:
        at += timedelta(hours=1)
        offset = at.astimezone(tz).utcoffset()
        if offset != previous:
            changes.append(at.astimezone(tz))
            previous = offset
    return changes


def _gaps(schedule: str, start: datetime, until: datetime, limit: int) -> list[float]:
    times = croniter(schedule, start)
    previous = times.get_next(datetime)
    gaps = []
    for _ in range(limit):
        current = times.get_next(datetime)
        if current > until:
            break
        gaps.append((current.astimezone(UTC) - previous.astimezone(UTC)).total_seconds())
        previous = current
    return gaps


def _year_gaps(schedule: str, tz: ZoneInfo) -> list[float]:
    """Gaps, in seconds, between consecutive runs of ``schedule`` over a year.

    Scans the year's first firings plus a few days around each DST transition of ``tz`` (where a
    local-time schedule can fire twice in short order, or skip an hour), which is fast even for */15.
    """
    start = datetime(2025, 1, 1, tzinfo=tz)
    end = start + timedelta(days=366)
    gaps = _gaps(schedule, start, end, 1000)
    for change in _offset_changes(tz, start, end):
        gaps += _gaps(schedule, change - timedelta(days=2), change + timedelta(days=2), 1000)
    return gaps


def shortest_interval(schedule: str, tz: ZoneInfo) -> int:
    """The shortest gap, in seconds, between two runs of ``schedule`` over a year."""
    gaps = _year_gaps(schedule, tz)
    return int(min(gaps)) if gaps else 366 * 24 * 3600


def longest_interval(schedule: str, tz: ZoneInfo) -> int:
    """The longest gap, in seconds, between two runs of ``schedule`` over a year (a run is late
    only once this has passed since the previous one, plus its timeout and the grace)."""
    gaps = _year_gaps(schedule, tz)
    return int(max(gaps)) if gaps else 366 * 24 * 3600


def backoff_seconds(retries: int) -> int:
    """Total pod-failure backoff Kubernetes waits before ``retries`` retries."""
    return sum(min(BACKOFF_FIRST_SECONDS * 2 ** i, BACKOFF_CAP_SECONDS) for i in range(retries))


@dataclass(frozen=True)
class JobPlan:
    """Everything the deploy files say about one job."""

    job: Job
    enabled: bool
    schedule: str
    timezone: str
    timeout: int
    reads_card_data: bool
    attempt_seconds: int
    retries: int
    active_deadline_seconds: int
    starting_deadline_seconds: int
    termination_grace_seconds: int
    overrides: tuple[tuple[str, str], ...]
    disabled_by: str | None = None  # "TCGJOBS_<JOB>_ENABLED=false" or "<VARIABLE> unset"

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def attempts(self) -> int:
        return self.retries + 1

    @property
    def enabled_variable(self) -> str:
        return self.job.env_prefix + "ENABLED"


def _overrides(job: Job, settings: Settings) -> tuple[tuple[str, str], ...]:
    """The job's enabled/schedule/timeout settings that differ from the registry's defaults.

    The deploy files repeat them to every run, so a run computes dependencies and lateness with
    the same schedule the platform fires it on.
    """
    found = []
    generated: tuple[Setting, ...] = job_settings(job)[:3]
    for setting in generated:
        value = settings.get(setting.name)
        if value != setting.default:
            found.append((setting.variable, format_value(value)))
    return tuple(found)


def plan_job(job: Job, settings: Settings) -> JobPlan:
    """The plan of one job under ``settings``."""
    config = settings.job(job)
    tz: ZoneInfo = settings.timezone
    timeout = math.ceil(config.timeout)
    reads_card_data = job.name in CARD_DATA_JOBS
    grace = graceful_stop_seconds(settings)
    start = POD_START_SECONDS + (CARD_DATA_SYNC_SECONDS if reads_card_data else 0)
    attempt = start + timeout + grace
    interval = shortest_interval(config.schedule, tz)

    def deadline(retries: int) -> int:
        return attempt * (retries + 1) + backoff_seconds(retries)

    retries = next((r for r in range(MAX_RETRIES, -1, -1) if deadline(r) <= interval), 0)
    return JobPlan(
        job=job, enabled=config.enabled, schedule=config.schedule, timezone=tz.key, timeout=timeout,
        reads_card_data=reads_card_data, attempt_seconds=attempt, retries=retries,
        active_deadline_seconds=deadline(retries),
        starting_deadline_seconds=max(MIN_STARTING_DEADLINE_SECONDS,
                                      min(MAX_STARTING_DEADLINE_SECONDS, interval // 4)),
        termination_grace_seconds=grace,
        overrides=_overrides(job, settings),
        disabled_by=_disabled_by(job, settings),
    )


def _disabled_by(job: Job, settings: Settings) -> str | None:
    """What turns the job off: its enabled setting, or an unset setting it needs."""
    if settings.job(job).enabled:
        return None
    if not settings.get(f"{job.module_name}_enabled") or job.needs is None:
        return f"{job.env_prefix}ENABLED=false"
    return next(s.variable for s in settings.table if s.name == job.needs) + " unset"


def plan_all(settings: Settings) -> list[JobPlan]:
    """One plan per registered job, in registry order."""
    return [plan_job(job, settings) for job in all_jobs().values()]


def secret_settings(settings: Settings) -> list[Setting]:
    """Every secret setting: each is mounted as a file and read through ``<VARIABLE>_FILE``."""
    return [s for s in settings.table if s.secret]


def secret_key(setting: Setting) -> str:
    """The key of ``setting`` in the tcgjobs-secrets Secret: SLACK_WEBHOOK_URL → slack-webhook-url."""
    return setting.variable.removeprefix("TCGJOBS_").lower().replace("_", "-")
