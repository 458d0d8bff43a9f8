"""End to end: real tcgjobs runs report through node_exporter's textfile collector and the
Pushgateway, a real Prometheus scrapes both with honor_labels and evaluates the rendered rules, and
every dashboard query and every rule's expression (its final comparison removed) returns data for
each job that ran. No panel or alert is silently empty because a metric or a label was renamed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tcgjobs.config import load_settings
from tcgjobs.deploy import prometheus as rules
from tcgjobs.deploy.alerts import render_rules
from tcgjobs.deploy.grafana import render_dashboard
from tests.conftest import run_tcgjobs
from tests.support.prometheus import Stack, monitoring_stack

#: In dependency order, on the bundled sample; replicate-to-primary writes to the test's PostgreSQL.
JOBS = ("sync-missing-sets", "sync-missing-cards", "replicate-to-primary", "backup-database",
        "rotate-backups", "upload-backups", "cleanup-stale-data", "validate-data-integrity", "database-health-check")


def _jobs_in(result: list[dict]) -> set[str]:
    return {series["metric"].get("job") for series in result}


@pytest.fixture
def stack(tmp_path: Path, env: dict[str, str], postgres_url: str, bucket: str):
    """The monitoring stack; the off-site settings already point at moto's S3 server (bucket)."""
    settings = load_settings(env)
    rules_file = tmp_path / "tcgjobs.rules.yaml"
    rules_file.write_text(rules.rules_file(render_rules(settings)))
    with monitoring_stack(tmp_path / "monitoring", rules_file) as running:
        env["TCGJOBS_METRICS_DIR"] = str(running.textfile_dir)
        env["TCGJOBS_PUSHGATEWAY_URL"] = running.pushgateway_url
        env["TCGJOBS_POSTGRES_URL"] = postgres_url
        yield running


def _run_every_job() -> None:
    for job in JOBS:
        result = run_tcgjobs("run", job, "--trigger", "schedule")
        assert result.returncode in (0, 3), (job, result.stdout, result.stderr[-2000:])


def _dashboard_queries(env: dict[str, str]) -> list[str]:
    dashboard = json.loads(render_dashboard(load_settings(env)))
    return [target["expr"].replace("$job", ".*") for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


@pytest.mark.slow
def test_every_dashboard_query_and_rule_expression_returns_data_from_real_runs(stack: Stack, env):
    started = time.monotonic()
    _run_every_job()
    ran = set(JOBS)
    # Prometheus has scraped both paths and evaluated the rules once every job's success shows.
    recorded = stack.wait_for(rules.SINCE_SUCCESS, lambda result: _jobs_in(result) >= ran)
    assert _jobs_in(recorded) >= ran, recorded
    stack.wait_for(rules.BACKUP_FILES, bool)

    # honor_labels kept every job's own name: nothing arrived as exported_job.
    assert stack.query('{__name__=~"tcgjobs_.+", exported_job!=""}') == []
    assert _jobs_in(stack.query("tcgjobs_job_last_run_timestamp_seconds")) >= ran

    empty = []
    for expr in _dashboard_queries(env):
        result = stack.query(expr)
        if 'job=~".*"' in expr:
            assert _jobs_in(result) >= ran, f"dashboard query {expr} misses {ran - _jobs_in(result)}"
        elif not result:
            empty.append(expr)
    assert empty == [], f"dashboard queries without data: {empty}"

    ruleset = render_rules(load_settings(env))
    for alert in ruleset.alerts:
        assert alert.expr in (f"{alert.value} {alert.condition}", f"absent({alert.value})")
        result = stack.query(alert.value)
        if alert.job is not None:
            assert alert.job in _jobs_in(result), f"{alert.name}: {alert.value} has no series for {alert.job}"
        elif "by (job)" in alert.value or alert.value.startswith("job:"):
            assert _jobs_in(result) >= ran, f"{alert.name}: {alert.value} misses {ran - _jobs_in(result)}"
        else:
            assert result, f"{alert.name}: {alert.value} returned nothing"

    for recording in ruleset.recordings:
        selector = recording.record + "".join(f'{{job="{v}"}}' for v in recording.labels.values())
        assert stack.query(selector), f"recording rule {recording.record} {dict(recording.labels)} has no data"

    evaluated = stack.rules()
    assert {rule["name"] for rule in evaluated} >= {alert.name for alert in ruleset.alerts}
    assert [rule for rule in evaluated if rule["health"] != "ok"] == [], "every rule evaluates without error"
    assert stack.query('ALERTS{alertname=~"TcgjobsJobLate|TcgjobsJobAbsent|TcgjobsJobFailing.*"}') == []
    print(f"end to end: {len(JOBS)} jobs, scraped and evaluated in {time.monotonic() - started:.1f}s")
