"""Grading a measurement against warning and critical thresholds (tcgjobs.levels)."""

from __future__ import annotations

import pytest

from tcgjobs.levels import Level, grade_above, grade_below


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
