"""Schedule maths: when a job is next due, when it was last due, and whether it is late.

Cron expressions are evaluated in the configured time zone (TCGJOBS_TIMEZONE, default UTC) with
croniter, the same 5-field dialect Kubernetes and cron use (day-of-month and day-of-week ORed,
names allowed). Every datetime this module returns is timezone-aware UTC.

croniter and cron-descriptor are imported by the functions that use them: a run of a job without
dependencies needs neither, and only ``list`` and ``status`` put schedules into words.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def next_due(expr: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first scheduled time strictly after ``after``."""
    from croniter import croniter

    return croniter(expr, after.astimezone(tz)).get_next(datetime).astimezone(UTC)


def previous_due(expr: str, tz: ZoneInfo, at: datetime) -> datetime:
    """The most recent scheduled time at or before ``at``."""
    from croniter import croniter

    local = at.astimezone(tz)
    if croniter.match(expr, local.replace(second=0, microsecond=0)) and local.second == 0 \
            and local.microsecond == 0:
        return local.astimezone(UTC)
    return croniter(expr, local).get_prev(datetime).astimezone(UTC)


def describe(expr: str) -> str:
    """The schedule in words, e.g. "At 05:00, only on Sunday"."""
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    return ExpressionDescriptor(expr, options).get_description()


def late_since(expr: str, tz: ZoneInfo, now: datetime, allowance: timedelta,
               last_progress: datetime | None, tracked_since: datetime) -> datetime | None:
    """The scheduled time a job missed, or None if it is not late.

    A job is late when a scheduled time passed more than ``allowance`` ago (its timeout plus the
    grace) and nothing counts as progress since: ``last_progress`` is the start of its latest
    successful or still-running run. Scheduled times before ``tracked_since`` (the state database's
    creation) are not held against a job that simply was not deployed yet.
    """
    due = previous_due(expr, tz, now - allowance)
    if due < tracked_since:
        return None
    if last_progress is not None and last_progress >= due:
        return None
    return due
