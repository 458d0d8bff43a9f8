"""Levels of a check or an alert, and grading a value against warning/critical thresholds.

At the bottom of the import graph: the health checks grade with it, the state database stores
it, alerting and metrics report it.
"""

from __future__ import annotations

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
