"""Check levels, grading a value against warning/critical thresholds, and time parsing helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum


class Level(str, Enum):
    """The level of one check (Nagios/check_postgres model, without UNKNOWN: an error is critical)."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def bad(self) -> bool:
        return self is not Level.OK

    @classmethod
    def worst(cls, levels: list[Level]) -> Level:
        return max(levels, key=lambda level: level.rank, default=cls.OK)


_RANK = {Level.OK: 0, Level.WARNING: 1, Level.CRITICAL: 2}


def grade_above(value: float, warning: float, critical: float) -> Level:
    """Level for a value that is bad when high (sizes, ages, latency): ``>= critical`` is critical."""
    if value >= critical:
        return Level.CRITICAL
    if value >= warning:
        return Level.WARNING
    return Level.OK


def grade_below(value: float, warning: float, critical: float) -> Level:
    """Level for a value that is bad when low (free disk space): ``< critical`` is critical."""
    if value < critical:
        return Level.CRITICAL
    if value < warning:
        return Level.WARNING
    return Level.OK


def parse_instant(raw: str, zone: tzinfo = UTC) -> datetime:
    """An ISO-8601 date-time (``2026-11-28T18:00``, ``...Z``, ``...+01:00``), in UTC; a time
    without a zone is read in ``zone`` (UTC unless given)."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO-8601 time such as 2026-11-28T18:00Z, got {raw!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)


def parse_optional_instant(raw: str) -> datetime | None:
    return parse_instant(raw) if raw.strip() else None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_until(raw: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """A silence end: a duration from ``now`` (``90m``, ``2h``, ``1d``) or an ISO-8601 time (one
    without a zone is read in ``zone``: the CLI passes TCGJOBS_TIMEZONE, the zone of the schedules)."""
    match = _DURATION.match(raw)
    if match:
        return now + timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2).lower()])
    try:
        return parse_instant(raw, zone)
    except ValueError:
        raise ValueError(f"expected a duration (30m, 2h, 1d) or an ISO-8601 time, got {raw!r}") from None


def human_duration(delta: timedelta) -> str:
    """``2h 5m``, ``3d 4h``, ``45s``: how long something lasted, for alert texts."""
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {seconds}s" if seconds else f"{minutes}m"
    return f"{seconds}s"
