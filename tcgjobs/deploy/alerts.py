"""The alerts of tcgjobs: what each one watches, its threshold, its severity and its texts.

Each description names the job and what to run first (``tcgjobs status JOB``, ``tcgjobs history
JOB``); each rule links to its section of docs/alerts.md. Thresholds come from the settings the
health check uses, so an alert and ``tcgjobs status`` agree. Annotations use no ``$value``: the
texts are the same every time an alert fires, which keeps them exact in promtool's tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from tcgjobs.config import Settings
from tcgjobs.deploy import prometheus as rules
from tcgjobs.deploy.plan import longest_interval
from tcgjobs.registry import Job, all_jobs
from tcgjobs.services import metrics

#: Health checks with an alert of their own (job:<name> → late and failing, backup-age →
#: backup stale, abandoned-runs → abandoned runs): the health-check alert leaves them out.
OWN_ALERT_CHECKS = 'job:.+|backup-age|abandoned-runs'
#: The off-site copy job of issue 16.
OFFSITE_JOB = "upload-backups"
JOB = "{{ $labels.job }}"
CHECK = "{{ $labels.check }}"


def _first_steps(job: str) -> str:
    return f"Run `tcgjobs status {job}` first, then `tcgjobs history {job}`."


def _late(job: Job, settings: Settings, threshold: int) -> rules.Alert:
    config = settings.job(job)
    gap = longest_interval(config.schedule, settings.timezone)
    return rules.Alert(
        name="TcgjobsJobLate", job=job.name, severity="warning",
        value=f'{rules.SINCE_SUCCESS}{{job="{job.name}"}}', condition=f"> {threshold}",
        summary=f"{job.name} has not succeeded for over {rules.duration(threshold)}",
        description=(
            f"{job.name} runs on `{config.schedule}` ({settings.timezone.key}); the longest gap "
            f"between two of its scheduled times is {rules.duration(gap)}, plus its timeout "
            f"{config.timeout:g} s and TCGJOBS_LATE_GRACE_SECONDS={settings.late_grace_seconds} s. "
            f"{_first_steps(job.name)} A failed run shows its error, a skipped run (exit 75) names "
            "the lock holder or the dependency, and no run at all means the CronJob or the cron "
            "line did not start it."))


def _absent(job: Job, threshold: int) -> rules.Alert:
    metric = metrics.JOB_GAUGES["last_success"][0]
    return rules.Alert(
        name="TcgjobsJobAbsent", job=job.name, severity="warning", for_seconds=threshold,
        value=f'{metric}{{job="{job.name}"}}', condition=None,
        summary=f"No success of {job.name} reported to Prometheus for {rules.duration(threshold)}",
        description=(
            f"Prometheus has no {metric} for job {job.name}: it never succeeded, its pod never "
            "started, or its metrics do not arrive (TCGJOBS_METRICS_DIR or TCGJOBS_PUSHGATEWAY_URL "
            "unset, or a scrape without honor_labels: true, which renames the label to "
            f"exported_job). {_first_steps(job.name)} If they show successes, check the metrics "
            "path."))


def _failing(settings: Settings) -> list[rules.Alert]:
    warning, critical = settings.health_job_failures_warning, settings.health_job_failures_critical
    steps = (f"{_first_steps(JOB)} Skips (exit 75) do not count; a success resets the count.")
    return [
        rules.Alert(
            name="TcgjobsJobFailing", severity="warning", value=rules.FAILURES,
            condition=f">= {warning} < {critical}",
            summary=f"{JOB} is failing",
            description=(f"{JOB} failed at least {warning} time(s) in a row "
                         f"(TCGJOBS_HEALTH_JOB_FAILURES_WARNING). {steps}")),
        rules.Alert(
            name="TcgjobsJobFailingRepeatedly", severity="critical", value=rules.FAILURES,
            condition=f">= {critical}",
            summary=f"{JOB} failed {critical} or more times in a row",
            description=(f"{JOB} failed at least {critical} times in a row "
                         f"(TCGJOBS_HEALTH_JOB_FAILURES_CRITICAL); retries will not fix it. {steps}")),
    ]


def _abandoned(settings: Settings) -> rules.Alert:
    window = f"{settings.health_abandoned_window_hours:g}h"
    return rules.Alert(
        name="TcgjobsRunsAbandoned", severity="warning",
        value=f"max by (job) ({metrics.JOB_GAUGES['abandoned'][0]})", condition=">= 1",
        summary=f"A run of {JOB} was abandoned in the last {window}",
        description=(f"A run of {JOB} ended without recording its end (kill -9, an OOM kill, node "
                     f"loss, an eviction past the grace period) in the last {window} "
                     "(TCGJOBS_HEALTH_ABANDONED_WINDOW_HOURS); its transaction was rolled back. "
                     f"{_first_steps(JOB)} Then look at the pod's last state (OOMKilled?) or the "
                     "host's kernel log."))


def _stale(name: str, value: str, job: str, what: str, settings: Settings, extra: str) -> list[rules.Alert]:
    warning, critical = settings.health_backup_age_warning_hours, settings.health_backup_age_critical_hours
    steps = f"{_first_steps(job)} {extra}"
    return [
        rules.Alert(
            name=name, severity="warning", value=value,
            condition=f">= {round(warning * 3600)} < {round(critical * 3600)}",
            summary=f"The newest verified {what} is over {warning:g}h old",
            description=(f"The newest verified {what} is at least {warning:g} hours old "
                         f"(TCGJOBS_HEALTH_BACKUP_AGE_WARNING_HOURS). {steps}")),
        rules.Alert(
            name=f"{name}Critical", severity="critical", value=value,
            condition=f">= {round(critical * 3600)}",
            summary=f"The newest verified {what} is over {critical:g}h old, or there is none",
            description=(f"The newest verified {what} is at least {critical:g} hours old or there is "
                         f"none (TCGJOBS_HEALTH_BACKUP_AGE_CRITICAL_HOURS). {steps}")),
    ]


def _health() -> rules.Alert:
    return rules.Alert(
        name="TcgjobsHealthCheckCritical", severity="critical",
        value=f'{rules.HEALTH_LEVEL}{{check!~"{OWN_ALERT_CHECKS}"}}', condition="== 2",
        summary=f"Health check {CHECK} is critical",
        description=(f"database-health-check graded {CHECK} critical. Run `tcgjobs run "
                     "database-health-check` to see every check's detail, then `tcgjobs history "
                     "database-health-check`. Late and failing jobs, the backup age and abandoned "
                     "runs have alerts of their own."))


def late_threshold(schedule: str, timeout: float, settings: Settings) -> int:
    """Seconds after a success at which the job is late: the longest gap between two of its
    scheduled times, plus its timeout, plus TCGJOBS_LATE_GRACE_SECONDS."""
    return longest_interval(schedule, settings.timezone) + math.ceil(timeout) + settings.late_grace_seconds


def render_rules(settings: Settings) -> rules.RuleSet:
    """The recording and alerting rules for every registered job under ``settings``; late and
    absent alerts only for the enabled jobs (a disabled job's CronJob is suspended)."""
    enabled = [job for job in all_jobs().values() if settings.job(job).enabled]
    thresholds = {job.name: late_threshold(settings.job(job).schedule, settings.job(job).timeout, settings)
                  for job in enabled}
    alerts, families = alerts_for(settings, enabled, thresholds)
    return rules.RuleSet(rules.recordings(thresholds), alerts, families)


def alerts_for(settings: Settings, enabled: list[Job],
               thresholds: Mapping[str, int]) -> tuple[list[rules.Alert], list[rules.Family]]:
    """Every alert rule, and one :class:`~tcgjobs.deploy.prometheus.Family` per alert name."""
    alerts = [_late(job, settings, thresholds[job.name]) for job in enabled]
    alerts += [_absent(job, thresholds[job.name]) for job in enabled]
    alerts += _failing(settings)
    alerts.append(_abandoned(settings))
    alerts += _stale("TcgjobsBackupStale", rules.BACKUP_AGE, "backup-database", "backup", settings,
                     "Then `tcgjobs backup list` shows every backup and whether it is verified.")
    alerts += _stale("TcgjobsOffsiteCopyStale", rules.OFFSITE_AGE, OFFSITE_JOB, "off-site copy",
                     settings, "Then `tcgjobs backup list --remote` shows the copies in the bucket.")
    alerts.append(_health())
    per_job = ", ".join(f"{job} {rules.duration(seconds)}" for job, seconds in thresholds.items())
    conditions = {
        "TcgjobsJobLate": ("time since the job's last success > the longest gap between two of its "
                           f"scheduled times + its timeout + the grace ({per_job})"),
        "TcgjobsJobAbsent": ("no last-success metric of the job for as long as its late threshold "
                             "(never succeeded, pod never started, metrics not arriving)"),
        "TcgjobsJobFailing": (f"consecutive failures ≥ {settings.health_job_failures_warning} and "
                              f"< {settings.health_job_failures_critical}"),
        "TcgjobsJobFailingRepeatedly": f"consecutive failures ≥ {settings.health_job_failures_critical}",
        "TcgjobsRunsAbandoned": (f"a run of the job abandoned in the last "
                                 f"{settings.health_abandoned_window_hours:g}h"),
        "TcgjobsBackupStale": (f"newest verified backup ≥ {settings.health_backup_age_warning_hours:g}h "
                               f"and < {settings.health_backup_age_critical_hours:g}h old"),
        "TcgjobsBackupStaleCritical": (f"newest verified backup ≥ "
                                       f"{settings.health_backup_age_critical_hours:g}h old, or none"),
        "TcgjobsOffsiteCopyStale": (f"newest verified off-site copy ≥ "
                                    f"{settings.health_backup_age_warning_hours:g}h and < "
                                    f"{settings.health_backup_age_critical_hours:g}h old"),
        "TcgjobsOffsiteCopyStaleCritical": (f"newest verified off-site copy ≥ "
                                            f"{settings.health_backup_age_critical_hours:g}h old"),
        "TcgjobsHealthCheckCritical": ("a health check without an alert of its own is critical "
                                       "(database, WAL, disk, PostgreSQL, card counts, corrupt backups)"),
    }
    names = list(dict.fromkeys(alert.name for alert in alerts))
    severity = {alert.name: alert.severity for alert in alerts}
    return alerts, [rules.Family(name, severity[name], conditions[name]) for name in names]
