"""Time: the current instant, stored timestamps, and the times and durations people type.

The bottom of the import graph (standard library only): settings, the state database, backups,
alerting and the CLI all read and write times through these functions, so one string means one
moment everywhere. Every datetime returned is timezone-aware UTC.

The rule for a time a person types (``notify silence --until``, ``TCGJOBS_SILENCE_UNTIL``): an
ISO-8601 time with a zone (``Z``, ``+01:00``) means that instant; one without a zone is read in
TCGJOBS_TIMEZONE, the zone the schedules are written in. :func:`read_time` reads the text and
:func:`in_zone` applies the zone, so both places give the same string the same moment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with microseconds: fixed width, so text order is time order (stored form)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    """A stored timestamp (:func:`to_text`; one without a zone is UTC). Raises ValueError."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def from_untrusted(value: Any) -> datetime | None:
    """Like :func:`from_text` for a value read from a file anyone may have edited (a backup
    manifest): None for anything that is not an ISO-8601 time."""
    if not isinstance(value, str):
        return None
    try:
        return from_text(value)
    except ValueError:
        return None


def read_time(raw: str) -> datetime:
    """An ISO-8601 date-time as written: aware when it names a zone (``...Z``, ``...+01:00``),
    naive when it does not (:func:`in_zone` gives it one). Raises ValueError."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO-8601 time such as 2026-11-28T18:00Z, got {raw!r}") from None


def in_zone(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in UTC; a naive one is taken as a wall-clock time in ``zone``."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)


def parse_instant(raw: str, zone: tzinfo = UTC) -> datetime:
    """An ISO-8601 date-time (``2026-11-28T18:00``, ``...Z``, ``...+01:00``), in UTC; a time
    without a zone is read in ``zone`` (UTC unless given). Raises ValueError."""
    return in_zone(read_time(raw), zone)


def read_optional_time(raw: str) -> datetime | None:
    """:func:`read_time`, or None for an empty value (a setting that is set but blank)."""
    return read_time(raw) if raw.strip() else None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(raw: str) -> timedelta:
    """``90m``, ``2h``, ``1d``, ``1.5w``. Raises ValueError."""
    match = _DURATION.match(raw)
    if not match:
        raise ValueError(f"expected a duration such as 30m, 2h or 1d, got {raw!r}")
    return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2).lower()])


def parse_until(raw: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """An end time: a duration from ``now`` (``90m``, ``2h``, ``1d``) or an ISO-8601 time (one
    without a zone is read in ``zone``). Raises ValueError."""
    try:
        return now + parse_duration(raw)
    except ValueError:
        pass
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
