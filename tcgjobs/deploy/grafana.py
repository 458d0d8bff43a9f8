"""A Grafana dashboard for tcgjobs, built with Grafana's own grafana-foundation-sdk (typed builders).

``tcgjobs deploy grafana-dashboard`` prints the JSON to import (Dashboards → New → Import, or a
provisioning directory); ``deploy/grafana/tcgjobs-dashboard.json`` is the render for the default
settings. From the registry and the settings come the job variable (every registered job), the
late thresholds it draws each job against, the failure and backup-age thresholds that colour the
panels, and the names of the exit codes and health levels. A Prometheus data-source variable
makes it work with any data source name.

Panels read the recording rules of ``tcgjobs deploy prometheus-rules`` where an aggregation would
otherwise be repeated: install the rules with the dashboard. Like the rules, the queries assume
``honor_labels: true`` on the scrapes and aggregate with ``max by (job)``.

The SDK (about 100 ms to import) is loaded only by this module, which only that command imports.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode, VisibilityMode

from tcgjobs.config import Settings
from tcgjobs.deploy import prometheus as rules
from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs
from tcgjobs.services import metrics

DASHBOARD_FILE = "tcgjobs-dashboard.json"
UID = "tcgjobs"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
JOBS = 'job=~"$job"'
GREEN, ORANGE, RED = "green", "orange", "red"


def _query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return (prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
            .datasource(DATASOURCE).range())


def _steps(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (dashboard.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(value=value, color=color) for value, color in steps]))


def _stat(title: str, description: str, expr: str, legend: str, unit: str, width: int) -> stat.Panel:
    return (stat.Panel().title(title).description(description).datasource(DATASOURCE)
            .with_target(_query(expr, legend)).unit(unit).height(6).span(width)
            .graph_mode(BigValueGraphMode.NONE).color_mode(BigValueColorMode.BACKGROUND))


def _series(title: str, description: str, expr: str, legend: str, unit: str, width: int) -> timeseries.Panel:
    return (timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
            .with_target(_query(expr, legend)).unit(unit).height(8).span(width))


def _exit_codes() -> list[model.ValueMapping]:
    """Every ExitCode by name; OK green, a skip orange, anything else red."""
    colour = {ExitCode.OK: GREEN, ExitCode.SKIPPED: ORANGE}
    return [model.ValueMap(options={str(int(code)): model.ValueMappingResult(
        text=f"{int(code)} {code.name}", color=colour.get(code, RED), index=index)
        for index, code in enumerate(ExitCode)})]


def _levels() -> list[model.ValueMapping]:
    colour = {"ok": GREEN, "warning": ORANGE, "critical": RED}
    return [model.ValueMap(options={str(value): model.ValueMappingResult(text=name, color=colour[name],
                                                                         index=value)
                                    for name, value in metrics.LEVEL_VALUE.items()})]


def _job_panels(settings: Settings) -> list[Any]:
    share = (bargauge.Panel().title("Time since the last success, against the job's schedule")
             .description("100% is the job's late threshold: the longest gap between two of its scheduled "
                          "times + its timeout + TCGJOBS_LATE_GRACE_SECONDS (alert TcgjobsJobLate).")
             .datasource(DATASOURCE).height(8).span(12).unit("percentunit").min(0).max(1.5)
             .with_target(_query(f"{rules.SINCE_SUCCESS}{{{JOBS}}} / on (job) {rules.LATE_THRESHOLD}"
                                 f"{{{JOBS}}}", "{{job}}"))
             .thresholds(_steps((None, GREEN), (0.8, ORANGE), (1, RED))))
    since = _stat("Time since the last success", "Start of the newest successful run, per job.",
                  f"{rules.SINCE_SUCCESS}{{{JOBS}}}", "{{job}}", "s", 12).height(8)
    since = since.color_mode(BigValueColorMode.NONE)
    warning, critical = settings.health_job_failures_warning, settings.health_job_failures_critical
    return [
        share, since,
        _stat("Last exit code", "Exit code of each job's newest finished run (see the README's table).",
              f"max by (job) ({metrics.JOB_GAUGES['exit_code'][0]}{{{JOBS}}})", "{{job}}", "none", 8)
        .mappings(_exit_codes()),
        _stat("Consecutive failures", "Failures since the last success; skips do not count "
              "(alerts TcgjobsJobFailing, TcgjobsJobFailingRepeatedly).",
              f"{rules.FAILURES}{{{JOBS}}}", "{{job}}", "none", 8)
        .thresholds(_steps((None, GREEN), (warning, ORANGE), (critical, RED))),
        _stat("Abandoned runs", "Runs whose process vanished within TCGJOBS_HEALTH_ABANDONED_WINDOW_HOURS.",
              f"max by (job) ({metrics.JOB_GAUGES['abandoned'][0]}{{{JOBS}}})", "{{job}}", "none", 8)
        .thresholds(_steps((None, GREEN), (1, ORANGE))),
        _series("Duration of the newest run", "How long each job's newest run took.",
                f"max by (job) ({metrics.JOB_GAUGES['duration'][0]}{{{JOBS}}})", "{{job}}", "s", 12),
        _series("Records processed, by kind", "The newest run's counts (sets added, cards updated, "
                "rows replicated, ...).",
                f"max by (job, kind) ({metrics.JOB_GAUGES['records'][0]}{{{JOBS}}})", "{{job}} {{kind}}",
                "none", 12),
    ]


def _backup_panels(settings: Settings) -> list[Any]:
    warning = settings.health_backup_age_warning_hours * 3600
    critical = settings.health_backup_age_critical_hours * 3600
    return [
        _stat("Newest verified backup", "Age of the newest verified backup (alerts TcgjobsBackupStale, "
              "TcgjobsBackupStaleCritical).", rules.BACKUP_AGE, "age", "s", 8)
        .thresholds(_steps((None, GREEN), (warning, ORANGE), (critical, RED))),
        _series("Backups", "Backup files in BACKUP_DIR.", rules.BACKUP_FILES, "backups", "none", 8),
        _series("Backup size", "Total size of the backup files.", rules.BACKUP_BYTES, "bytes", "bytes", 8),
    ]


def _health_panel() -> statetimeline.Panel:
    return (statetimeline.Panel().title("Health checks")
            .description("Each check of database-health-check over time (alert TcgjobsHealthCheckCritical).")
            .datasource(DATASOURCE).height(10).span(24)
            .with_target(_query(rules.HEALTH_LEVEL, "{{check}}"))
            .mappings(_levels()).show_value(VisibilityMode.NEVER).merge_values(True)
            .line_width(0).fill_opacity(70))


def build(settings: Settings) -> dashboard.Dashboard:
    """The dashboard builder for every registered job under ``settings``."""
    jobs = list(all_jobs())
    builder = (
        dashboard.Dashboard("tcgjobs").uid(UID).tags(["tcgjobs"]).refresh("1m").time("now-7d", "now")
        .timezone("utc").tooltip(model.DashboardCursorSync.CROSSHAIR).editable()
        .description("tcgjobs maintenance jobs: successes against their schedules, exit codes, durations, "
                     "records, backups and health checks. Rendered by `tcgjobs deploy grafana-dashboard`.")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(dashboard.CustomVariable("job").label("Job").values(",".join(jobs)).multi(True)
                       .include_all(True).all_value(".*")
                       .current(model.VariableOption(selected=True, text="All", value="$__all")))
    )
    sections = [("Jobs", _job_panels(settings)), ("Backups", _backup_panels(settings)),
                ("Health", [_health_panel()])]
    ids = iter(range(1, 100))  # Grafana wants each panel's id unique; fixed ids keep the render stable
    for title, panels in sections:
        builder = builder.with_row(dashboard.Row(title).id(next(ids)))
        for panel in panels:
            builder = builder.with_panel(panel.id(next(ids)))
    return builder


def render_dashboard(settings: Settings) -> str:
    """The dashboard as importable JSON (2-space indent, a final newline)."""
    return json.dumps(build(settings).build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
