"""Prometheus recording and alerting rules rendered from the job registry and the settings.

``tcgjobs deploy prometheus-rules`` prints the plain rules file (``deploy/prometheus/``, for a
Prometheus ``rule_files:`` entry) or writes the same groups as a ``PrometheusRule`` in an optional
kustomize component (``deploy/k8s/monitoring/``, for the Prometheus Operator).

The numbers are the ones ``tcgjobs status`` and the health check use: a job is late when its last
success is older than the longest gap between two of its scheduled times plus its timeout plus
TCGJOBS_LATE_GRACE_SECONDS (per job, from its own schedule), failing at the health check's
job-failure thresholds (skips are not failures), and the newest verified backup is stale at the
backup-age thresholds.

Every per-job metric carries the job's name in ``job``. Scraped from node_exporter's textfile
collector or from the Pushgateway it keeps that name only with ``honor_labels: true`` (otherwise
Prometheus renames it ``exported_job``); the rules assume it and aggregate with ``max by (job)``,
so a job reported through both paths, or by several instances, counts once. Backup and health
metrics describe one backup directory and one set of checks: they are aggregated over every source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tcgjobs.services import metrics

RULES_FILE = "tcgjobs.rules.yaml"
DEFAULT_RUNBOOK_BASE = "docs/alerts.md"
HEALTH_JOB = "database-health-check"
#: The off-site copy's metric. Issue 16 (off-site copies) adds the job that writes it; until a run
#: reports it the off-site alerts stay silent, which is also what "not configured" looks like.
OFFSITE_NEWEST_VERIFIED = "tcgjobs_offsite_newest_verified_timestamp_seconds"


def _job_metric(key: str) -> str:
    return metrics.JOB_GAUGES[key][0]


# Recorded series: what a panel or an alert would otherwise repeat.
SINCE_SUCCESS = "job:tcgjobs_job_last_success_age_seconds:min"
LATE_THRESHOLD = "job:tcgjobs_job_late_threshold_seconds"
FAILURES = "job:tcgjobs_job_consecutive_failures:max"
BACKUP_AGE = "tcgjobs:backup_newest_verified_age_seconds:min"
BACKUP_FILES = "tcgjobs:backup_files:latest"
BACKUP_BYTES = "tcgjobs:backup_size_bytes:latest"
OFFSITE_AGE = "tcgjobs:offsite_newest_verified_age_seconds:min"
HEALTH_LEVEL = "check:tcgjobs_health_check_level:max"


def duration(seconds: int) -> str:
    """``1d15m``, ``26m``, ``7d20m``: a Prometheus duration, also used in the alert texts."""
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Recording:
    """A recording rule."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


@dataclass(frozen=True)
class Alert:
    """An alerting rule: ``value`` is the measured quantity and ``condition`` the comparison that
    follows it (None: the rule is ``absent(value)``). Keeping them apart lets the end-to-end test
    evaluate ``value`` alone and prove it returns data from real runs."""

    name: str
    value: str
    condition: str | None
    severity: str
    summary: str
    description: str
    for_seconds: int = 0
    job: str | None = None

    @property
    def expr(self) -> str:
        return f"absent({self.value})" if self.condition is None else f"{self.value} {self.condition}"

    @property
    def anchor(self) -> str:
        """The heading of this alert in docs/alerts.md, as Markdown renderers make anchors."""
        return self.name.lower()

    def rule(self, runbook_base: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_seconds:
            rule["for"] = duration(self.for_seconds)
        labels = {"severity": self.severity}
        if self.job is not None:
            labels["job"] = self.job  # absent() only keeps labels of equality matchers; be explicit
        rule["labels"] = labels
        rule["annotations"] = {"summary": self.summary, "description": self.description,
                               "runbook_url": f"{runbook_base}#{self.anchor}"}
        return rule


@dataclass(frozen=True)
class Family:
    """All rules of one alert name, for the README's table and docs/alerts.md."""

    name: str
    severity: str
    condition: str


@dataclass(frozen=True)
class RuleSet:
    """The rendered rules: recording rules first (the alerts read them), then the alerts."""

    recordings: list[Recording]
    alerts: list[Alert]
    families: list[Family]

    def groups(self, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> list[dict[str, Any]]:
        """One group: its rules run in order at each evaluation, so every alert reads the series
        recorded in the same evaluation (from another group it could read a sample older than
        the 5-minute lookback and see nothing)."""
        return [{"name": "tcgjobs", "rules": [r.rule() for r in self.recordings]
                 + [a.rule(runbook_base) for a in self.alerts]}]


def recordings(thresholds: Mapping[str, int]) -> list[Recording]:
    """The recording rules: per-job late thresholds as series (for the alerts and the dashboard),
    and every aggregation a panel or an alert would otherwise repeat."""
    def latest(metric: str) -> str:
        # Each push carries the backup listing of its moment: take the newest push's (a group
        # with the metric and the newest push_time_seconds), or the textfile's where none is pushed.
        pushed = f"(push_time_seconds and on (job, instance) {metric})"
        return (f"max({metric} and on (job, instance) ({pushed} == scalar(max({pushed})))) "
                f"or max({metric})")

    rules = [Recording(SINCE_SUCCESS, f"time() - max by (job) ({_job_metric('last_success')})")]
    rules += [Recording(LATE_THRESHOLD, f"vector({seconds})", {"job": job})
              for job, seconds in thresholds.items()]
    rules += [
        Recording(FAILURES, f"max by (job) ({_job_metric('failures')})"),
        Recording(BACKUP_AGE, f"time() - max({metrics.BACKUP_NEWEST_VERIFIED})"),
        Recording(BACKUP_FILES, latest(metrics.BACKUP_FILES)),
        Recording(BACKUP_BYTES, latest(metrics.BACKUP_SIZE)),
        Recording(OFFSITE_AGE, f"time() - max({OFFSITE_NEWEST_VERIFIED})"),
        Recording(HEALTH_LEVEL, f"max by (check) ({metrics.HEALTH_LEVEL})"),
    ]
    return rules


HEADER = ("# Rendered by `tcgjobs deploy prometheus-rules` from the job registry and the settings;\n"
          "# do not edit by hand. Scrape node_exporter and the Pushgateway with honor_labels: true.\n"
          "# Every alert is explained in docs/alerts.md.\n")


def rules_file(ruleset: RuleSet, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> str:
    """The plain rules file (``rule_files:`` in prometheus.yml)."""
    from tcgjobs.deploy.k8s import dump_yaml

    return HEADER + dump_yaml({"groups": ruleset.groups(runbook_base)})


def prometheus_rule(ruleset: RuleSet, namespace: str,
                    runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Any]:
    """The same groups as a PrometheusRule of the Prometheus Operator (monitoring.coreos.com/v1)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tcgjobs", "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "tcgjobs",
                                "app.kubernetes.io/component": "monitoring",
                                "app.kubernetes.io/part-of": "tcgjobs",
                                "app.kubernetes.io/managed-by": "tcgjobs-deploy"}},
        "spec": {"groups": ruleset.groups(runbook_base)},
    }


def component_files(ruleset: RuleSet, namespace: str,
                    runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, str]:
    """The optional kustomize component (``components: [monitoring]`` in an overlay)."""
    from tcgjobs.deploy.k8s import dump_yaml

    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component",
                     "resources": ["prometheusrule.yaml"]}
    return {"kustomization.yaml": HEADER + dump_yaml(kustomization),
            "prometheusrule.yaml": HEADER + dump_yaml(prometheus_rule(ruleset, namespace, runbook_base))}
