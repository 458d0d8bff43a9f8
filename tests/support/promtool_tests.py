"""promtool unit tests of the rendered rules: input series and the alerts they must (not) fire.

The scenarios are plain data here; the expected annotations are the rules' own texts with the
labels filled in (promtool compares them exactly). Times are seconds from promtool's epoch
(1970-01-01 00:00 UTC, a Thursday), sampled and evaluated every 15 minutes: a week of rule
evaluations then takes seconds, and the 26-minute threshold of the health check still falls
between two evaluations.

``python -m tests.support.promtool_tests`` rewrites ``deploy/prometheus/tcgjobs.rules.test.yaml``
for the default settings (``promtool test rules`` runs it from that directory); the test suite
checks the committed file against the render and also runs the scenarios for other settings.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter

from tcgjobs.config import Settings, load_settings
from tcgjobs.deploy import prometheus as rules
from tcgjobs.deploy.alerts import render_rules

STEP = 900
TEST_FILE = "tcgjobs.rules.test.yaml"
COMMITTED = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / TEST_FILE
LAST_SUCCESS = "tcgjobs_job_last_success_timestamp_seconds"
TEXTFILE = 'instance="node:9100"'
PUSHED = 'instance=""'


def _seconds(t: int) -> str:
    return f"{t}s"


def _segments(values: Iterable[float]) -> str:
    """promtool's expanding notation for a staircase: ``v+0xN`` per run of equal values."""
    parts: list[str] = []
    run_value, count = None, 0
    for value in values:
        if value == run_value:
            count += 1
            continue
        if run_value is not None:
            parts.append(f"{run_value:g}+0x{count}")
        run_value, count = value, 0
    parts.append(f"{run_value:g}+0x{count}")
    return " ".join(parts)


def _constant(value: float, until: int) -> str:
    return f"{value:g}+0x{until // STEP}"


class Expect:
    """Expected alerts of one rule set: labels plus the rule's annotations with labels filled in."""

    def __init__(self, ruleset: rules.RuleSet) -> None:
        self.ruleset = ruleset

    def _rule(self, name: str, job: str | None) -> rules.Alert:
        return next(a for a in self.ruleset.alerts if a.name == name and a.job in (None, job))

    def alert(self, name: str, **labels: str) -> dict[str, Any]:
        rule = self._rule(name, labels.get("job"))
        annotations = rule.rule(rules.DEFAULT_RUNBOOK_BASE)["annotations"]
        filled = {}
        for key, text in annotations.items():
            for label, value in labels.items():
                text = text.replace(f"{{{{ $labels.{label} }}}}", value)
            filled[key] = text
        return {"exp_labels": {**labels, "severity": rule.severity}, "exp_annotations": filled}

    def at(self, time: int, name: str, firing: list[dict[str, str]]) -> dict[str, Any]:
        return {"eval_time": _seconds(time), "alertname": name,
                "exp_alerts": [self.alert(name, **labels) for labels in firing]}


def _thresholds(ruleset: rules.RuleSet) -> dict[str, int]:
    return {a.job: int(a.condition.split()[-1]) for a in ruleset.alerts
            if a.name == "TcgjobsJobLate" and a.job and a.condition}


def late_when_due(ruleset: rules.RuleSet) -> dict[str, Any]:
    """Every job succeeded at 0 and never again: each turns late just after its own threshold."""
    thresholds = _thresholds(ruleset)
    end = max(thresholds.values()) + 2 * STEP
    series = [{"series": f'{LAST_SUCCESS}{{job="{job}",{TEXTFILE}}}', "values": _constant(0, end)}
              for job in thresholds]
    expect, checks = Expect(ruleset), []
    for threshold in sorted(set(thresholds.values())):
        quiet, late = threshold // STEP * STEP, threshold // STEP * STEP + STEP
        for time in (quiet, late):
            firing = [{"job": job} for job, t in thresholds.items() if t < time]
            checks.append(expect.at(time, "TcgjobsJobLate", firing))
        checks.append(expect.at(late, "TcgjobsJobAbsent", []))
    return {"name": "late: each job against its own schedule", "interval": "15m",
            "input_series": series, "alert_rule_test": checks}


def on_time(ruleset: rules.RuleSet, settings: Settings, days: int = 9) -> dict[str, Any]:
    """Every job succeeds 30 s after each scheduled time: never late, never absent."""
    thresholds = _thresholds(ruleset)
    start = datetime(1970, 1, 1, tzinfo=UTC)
    series = []
    for job in thresholds:
        schedule = next(settings.job(j).schedule for j in _jobs() if j.name == job)
        due = croniter(schedule, (start - timedelta(days=8)).astimezone(settings.timezone))
        successes = [0.0]  # the start counts as a success: nothing is held against the past
        while successes[-1] < days * 86400:
            successes.append((due.get_next(datetime) - start).total_seconds() + 30)
        values, index = [], 0
        for time in range(0, days * 86400, STEP):
            while index + 1 < len(successes) and successes[index + 1] <= time:
                index += 1
            values.append(max(successes[index], 0.0))
        series.append({"series": f'{LAST_SUCCESS}{{job="{job}",{PUSHED}}}', "values": _segments(values)})
    expect = Expect(ruleset)
    checks = [expect.at(time, name, []) for time in range(3 * 3600, days * 86400 - 3600, 7 * 3600)
              for name in ("TcgjobsJobLate", "TcgjobsJobAbsent")]
    return {"name": "on time: no late or absent alert", "interval": "15m",
            "input_series": series, "alert_rule_test": checks}


def absent(ruleset: rules.RuleSet) -> dict[str, Any]:
    """Nothing reported at all but one job's success: every other job's dead-man alert fires
    once it has been silent for its own late threshold."""
    thresholds = _thresholds(ruleset)
    present = next(iter(thresholds))
    end = max(thresholds.values()) + 2 * STEP
    series = [{"series": f'{LAST_SUCCESS}{{job="{present}",{PUSHED}}}', "values": _segments(
        t // 3600 * 3600 for t in range(0, end + STEP, STEP))}]
    expect, checks = Expect(ruleset), []
    for threshold in sorted(set(thresholds.values())):
        fires = -(-threshold // STEP) * STEP
        for time in (fires - STEP, fires):
            firing = [{"job": job} for job, t in thresholds.items() if t <= time and job != present]
            checks.append(expect.at(time, "TcgjobsJobAbsent", firing))
    return {"name": "absent: a job that never reported", "interval": "15m",
            "input_series": series, "alert_rule_test": checks}


def failing(ruleset: rules.RuleSet, settings: Settings) -> dict[str, Any]:
    """Failures counted by two sources (textfile, Pushgateway): the larger wins; a success clears."""
    warning, critical = settings.health_job_failures_warning, settings.health_job_failures_critical
    counts = [0, warning, critical, 0]
    metric = "tcgjobs_job_consecutive_failures"
    series = [{"series": f'{metric}{{job="replicate-to-primary",{TEXTFILE}}}',
               "values": " ".join(f"{c}+0x3" for c in counts)},
              {"series": f'{metric}{{job="replicate-to-primary",{PUSHED}}}', "values": _constant(0, 4 * 3600)},
              {"series": f'{metric}{{job="backup-database",{PUSHED}}}', "values": _constant(0, 4 * 3600)}]
    expect, job = Expect(ruleset), {"job": "replicate-to-primary"}
    checks = []
    for hour, count in enumerate(counts):
        time = hour * 3600 + 1800
        warn = [job] if warning <= count < critical else []
        checks.append(expect.at(time, "TcgjobsJobFailing", warn))
        checks.append(expect.at(time, "TcgjobsJobFailingRepeatedly", [job] if count >= critical else []))
    return {"name": "failing: warning, then critical, then cleared by a success", "interval": "15m",
            "input_series": series, "alert_rule_test": checks}


def abandoned(ruleset: rules.RuleSet) -> dict[str, Any]:
    metric = "tcgjobs_job_abandoned_runs"
    series = [{"series": f'{metric}{{job="cleanup-stale-data",{PUSHED}}}', "values": "0+0x3 1+0x3 0+0x3"},
              {"series": f'{metric}{{job="backup-database",{TEXTFILE}}}', "values": _constant(0, 3 * 3600)}]
    expect = Expect(ruleset)
    checks = [expect.at(1800, "TcgjobsRunsAbandoned", []),
              expect.at(5400, "TcgjobsRunsAbandoned", [{"job": "cleanup-stale-data"}]),
              expect.at(9000, "TcgjobsRunsAbandoned", [])]
    return {"name": "abandoned runs name their job", "interval": "15m",
            "input_series": series, "alert_rule_test": checks}


def stale(ruleset: rules.RuleSet, settings: Settings, metric: str, name: str) -> dict[str, Any]:
    """The newest verified copy was made at 0: warning past the warning age, critical past the critical."""
    warning = round(settings.health_backup_age_warning_hours * 3600)
    critical = round(settings.health_backup_age_critical_hours * 3600)
    series = [{"series": f"{metric}{{{TEXTFILE}}}", "values": _constant(0, critical + 2 * STEP)}]
    expect, checks = Expect(ruleset), []
    for time, warn, crit in ((warning - STEP, [], []), (warning + STEP, [{}], []),
                             (critical + STEP, [], [{}])):
        checks += [expect.at(time, name, warn), expect.at(time, f"{name}Critical", crit)]
    return {"name": f"{name}: warning age, then critical age", "interval": "15m",
            "input_series": series, "alert_rule_test": checks}


def health(ruleset: rules.RuleSet) -> dict[str, Any]:
    """Critical checks alert by name; those with their own alert, and warnings, do not."""
    levels = {"wal-size": 2, "disk-free-backups": 1, "job:backup-database": 2, "backup-age": 2,
              "abandoned-runs": 2, "quick-check": 0}
    series = [{"series": f'tcgjobs_health_check_level{{check="{check}",{PUSHED},job="database-health-check"}}',
               "values": _constant(level, 3600)} for check, level in levels.items()]
    expect = Expect(ruleset)
    return {"name": "health: a critical check", "interval": "15m", "input_series": series,
            "alert_rule_test": [expect.at(900, "TcgjobsHealthCheckCritical", [{"check": "wal-size"}])]}


def latest_backup_listing() -> dict[str, Any]:
    """The backup count and size come from the newest push, or from the textfile alone."""
    series = [
        {"series": 'tcgjobs_backup_files{job="backup-database",instance=""}', "values": _constant(6, 3600)},
        {"series": 'tcgjobs_backup_files{job="rotate-backups",instance=""}', "values": _constant(5, 3600)},
        {"series": 'push_time_seconds{job="backup-database",instance=""}', "values": _constant(100, 3600)},
        {"series": 'push_time_seconds{job="rotate-backups",instance=""}', "values": _constant(200, 3600)},
        {"series": 'push_time_seconds{job="someone-else",instance=""}', "values": _constant(900, 3600)},
        {"series": 'tcgjobs_backup_size_bytes{job="node",instance="node:9100"}', "values": _constant(4096, 3600)},
    ]
    return {"name": "backups: the newest listing", "interval": "15m", "input_series": series,
            "promql_expr_test": [
                {"expr": rules.BACKUP_FILES, "eval_time": "15m", "exp_samples": [{"labels": rules.BACKUP_FILES,
                                                                                "value": 5}]},
                {"expr": rules.BACKUP_BYTES, "eval_time": "15m", "exp_samples": [{"labels": rules.BACKUP_BYTES,
                                                                                "value": 4096}]},
            ]}


def _jobs():
    from tcgjobs.registry import all_jobs

    return list(all_jobs().values())


def unit_tests(settings: Settings, rules_file: str = rules.RULES_FILE) -> dict[str, Any]:
    """promtool's test file for the rules rendered under ``settings``."""
    ruleset = render_rules(settings)
    return {
        "rule_files": [rules_file],
        "evaluation_interval": "15m",
        "tests": [late_when_due(ruleset), on_time(ruleset, settings), absent(ruleset), failing(ruleset, settings),
                  abandoned(ruleset), stale(ruleset, settings, "tcgjobs_backup_newest_verified_timestamp_seconds",
                                            "TcgjobsBackupStale"),
                  stale(ruleset, settings, rules.OFFSITE_NEWEST_VERIFIED, "TcgjobsOffsiteCopyStale"),
                  health(ruleset), latest_backup_listing()],
    }


def render(settings: Settings) -> str:
    from tcgjobs.deploy.k8s import dump_yaml

    header = ("# promtool unit tests of tcgjobs.rules.yaml, rendered by `python -m tests.support.promtool_tests`\n"
              "# for the default settings. Run: promtool test rules tcgjobs.rules.test.yaml\n")
    return header + dump_yaml(unit_tests(settings))


if __name__ == "__main__":
    COMMITTED.write_text(render(load_settings({})), encoding="utf-8")
    sys.stdout.write(f"wrote {COMMITTED}\n")
