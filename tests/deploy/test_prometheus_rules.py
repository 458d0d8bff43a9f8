"""``tcgjobs deploy prometheus-rules``: the rules rendered from the registry and the settings, the
committed copies, promtool's own checks and unit tests, and the PrometheusRule component."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import kubernetes_validate
import pytest
import yaml

from tcgjobs.config import load_settings
from tcgjobs.deploy.alerts import late_threshold, render_rules
from tcgjobs.deploy.plan import longest_interval
from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs
from tests.conftest import ROOT, invoke
from tests.deploy.conftest import DEPLOY_DIR, KUBERNETES_VERSIONS, require_tool
from tests.support import promtool_tests

RULES = DEPLOY_DIR / "prometheus" / "tcgjobs.rules.yaml"
COMPONENT = DEPLOY_DIR / "k8s" / "monitoring"
RENDER = ("tcgjobs deploy prometheus-rules --output deploy/prometheus/tcgjobs.rules.yaml and --component "
          "deploy/k8s/monitoring (without TCGJOBS_* settings)")


def render(cli, *args: str) -> str:
    result = invoke(cli, "deploy", "prometheus-rules", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def alert_rules(text: str) -> list[dict]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"] if "alert" in rule]


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    promtool = require_tool("promtool")
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_committed_rules_file_equals_the_current_render(cli):
    assert RULES.read_text() == render(cli), f"{RULES} has drifted; run: {RENDER}"


def test_committed_component_equals_the_current_render(cli, tmp_path):
    render(cli, "--component", str(tmp_path / "monitoring"))
    rendered = {path.name: path.read_text() for path in sorted((tmp_path / "monitoring").iterdir())}
    committed = {path.name: path.read_text() for path in sorted(COMPONENT.iterdir())}
    assert committed == rendered, f"deploy/k8s/monitoring has drifted; run: {RENDER}"


def test_committed_promtool_tests_equal_their_render():
    assert promtool_tests.COMMITTED.read_text() == promtool_tests.render(load_settings({})), (
        "deploy/prometheus/tcgjobs.rules.test.yaml has drifted; run: python -m tests.support.promtool_tests")


def test_promtool_accepts_the_rules_file_and_the_prometheus_rule_groups(tmp_path):
    assert (result := run_promtool("check", "rules", str(RULES))).returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text())
    groups = tmp_path / "groups.yaml"
    groups.write_text(yaml.safe_dump({"groups": document["spec"]["groups"]}))
    assert (result := run_promtool("check", "rules", str(groups))).returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_every_alert_pass_on_the_committed_rules():
    result = run_promtool("test", "rules", promtool_tests.TEST_FILE, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {case["alertname"] for group in yaml.safe_load(promtool_tests.COMMITTED.read_text())["tests"]
              for case in group.get("alert_rule_test", [])}
    assert tested == {rule["alert"] for rule in alert_rules(RULES.read_text())}, "every alert has a unit test"


def test_promtool_unit_tests_fail_when_a_threshold_is_wrong(tmp_path):
    """The unit tests can fail: backup-database late one hour later than its schedule allows."""
    text = RULES.read_text().replace('{job="backup-database"} > 87300', '{job="backup-database"} > 90900')
    assert text != RULES.read_text()
    (tmp_path / RULES.name).write_text(text)
    from tcgjobs.deploy.k8s import dump_yaml

    late_only = {**promtool_tests.unit_tests(load_settings({})), "tests": [
        promtool_tests.late_when_due(render_rules(load_settings({})))]}
    (tmp_path / "late.yaml").write_text(dump_yaml(late_only))
    result = run_promtool("test", "rules", "late.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "TcgjobsJobLate" in result.stdout + result.stderr


@pytest.mark.slow
def test_promtool_unit_tests_pass_for_other_schedules_zone_and_thresholds(cli, env, tmp_path):
    overrides = {"TCGJOBS_BACKUP_DATABASE_SCHEDULE": "0 */6 * * *", "TCGJOBS_SYNC_MISSING_CARDS_TIMEOUT": "7200",
                 "TCGJOBS_LATE_GRACE_SECONDS": "120", "TCGJOBS_HEALTH_JOB_FAILURES_WARNING": "2",
                 "TCGJOBS_HEALTH_JOB_FAILURES_CRITICAL": "5", "TCGJOBS_HEALTH_BACKUP_AGE_WARNING_HOURS": "8",
                 "TCGJOBS_HEALTH_BACKUP_AGE_CRITICAL_HOURS": "20"}
    for name, value in overrides.items():
        env[name] = value
    settings = load_settings(env)
    (tmp_path / "tcgjobs.rules.yaml").write_text(render(cli))
    from tcgjobs.deploy.k8s import dump_yaml

    (tmp_path / "tests.yaml").write_text(dump_yaml(promtool_tests.unit_tests(settings)))
    result = run_promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '{job="backup-database"} > 22020' in render(cli)  # 6 h + 300 s + 120 s


@pytest.mark.parametrize(("schedule", "zone", "seconds"), [
    ("*/15 * * * *", "UTC", 900),
    ("0 0 * * *", "UTC", 86_400),
    ("0 5 * * 0", "UTC", 604_800),
    ("0 1,3 * * *", "UTC", 79_200),
    ("0 0 1 * *", "UTC", 31 * 86_400),
    # Falling back makes one local day 25 hours long.
    ("0 0 * * *", "America/New_York", 90_000),
])
def test_longest_interval_over_a_year_including_dst(schedule, zone, seconds):
    assert longest_interval(schedule, ZoneInfo(zone)) == seconds


@pytest.mark.parametrize(("job", "seconds"), [
    ("backup-database", 86_400 + 300 + 600),
    ("rotate-backups", 86_400 + 60 + 600),
    ("sync-missing-cards", 86_400 + 1800 + 600),
    ("cleanup-stale-data", 604_800 + 600 + 600),
    ("database-health-check", 900 + 60 + 600),
])
def test_each_job_is_late_after_its_longest_gap_plus_timeout_plus_grace(job, seconds):
    settings = load_settings({})
    assert late_threshold(settings.job(all_jobs()[job]).schedule, all_jobs()[job].timeout, settings) == seconds
    late = {rule["labels"]["job"]: rule["expr"] for rule in alert_rules(RULES.read_text())
            if rule["alert"] == "TcgjobsJobLate"}
    assert late[job].endswith(f"> {seconds}")


def test_every_alert_has_a_severity_texts_naming_the_job_and_commands_and_a_runbook_anchor(cli):
    guide = (ROOT / "docs" / "alerts.md").read_text()
    headings = re.findall(r"^## (\w+)$", guide, re.M)
    rules = alert_rules(render(cli))
    assert headings == list(dict.fromkeys(rule["alert"] for rule in rules)), "docs/alerts.md: one section each"
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["runbook_url"] == f"docs/alerts.md#{rule['alert'].lower()}"
        job = rule["labels"].get("job", "{{ $labels.job }}")
        named = re.search(r"`tcgjobs history ([^`]+)`", annotations["description"])
        assert named, rule
        if "$labels.check" not in annotations["summary"]:
            assert f"`tcgjobs status {named.group(1)}`" in annotations["description"], rule
        if "job" in rule["labels"]:
            assert named.group(1) == job and job in annotations["summary"]


def test_late_and_absent_alerts_follow_the_enabled_jobs_and_the_runbook_option(cli, env):
    env["TCGJOBS_VALIDATE_DATA_INTEGRITY_ENABLED"] = "false"
    rules = alert_rules(render(cli, "--runbook-url", "https://wiki.example/tcgjobs/alerts"))
    for name in ("TcgjobsJobLate", "TcgjobsJobAbsent"):
        jobs = [rule["labels"]["job"] for rule in rules if rule["alert"] == name]
        settings = load_settings(env)  # upload-backups is off too: no TCGJOBS_OFFSITE_URL
        assert jobs == [name for name, job in all_jobs().items() if settings.job(job).enabled]
        assert "validate-data-integrity" not in jobs and "upload-backups" not in jobs
    assert all(rule["annotations"]["runbook_url"].startswith("https://wiki.example/tcgjobs/alerts#")
               for rule in rules)


def test_absent_alert_waits_for_the_jobs_own_threshold():
    absent = {rule["labels"]["job"]: rule for rule in alert_rules(RULES.read_text())
              if rule["alert"] == "TcgjobsJobAbsent"}
    assert absent["backup-database"]["for"] == "1d15m"
    assert absent["database-health-check"]["for"] == "26m"
    assert absent["cleanup-stale-data"]["expr"] == \
        'absent(tcgjobs_job_last_success_timestamp_seconds{job="cleanup-stale-data"})'


def test_the_component_builds_beside_the_base_in_an_overlay(tmp_path):
    kubectl = require_tool("kubectl")
    shutil.copytree(DEPLOY_DIR / "k8s", tmp_path / "deploy" / "k8s")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../deploy/k8s"], "components": ["../deploy/k8s/monitoring"]}))
    result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    (rule,) = [doc for doc in documents if doc["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["metadata"]["namespace"] == "tcgjobs"
    # A CRD: Kubernetes' own schemas do not know it (promtool checks its groups above).
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(rule, KUBERNETES_VERSIONS[0], strict=True)
    for document in documents:
        if document["kind"] != "PrometheusRule":
            kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


def test_rules_never_contain_a_secret_and_bad_settings_exit_78(cli, env):
    env["TCGJOBS_PUSHGATEWAY_URL"] = "https://user:s3cr3t-push@push.example"
    env["SLACK_WEBHOOK_URL"] = "https://hooks.slack.example/services/T0/B0/s3cr3t-webhook"
    assert "s3cr3t" not in render(cli)
    env["TCGJOBS_LATE_GRACE_SECONDS"] = "-1"
    result = invoke(cli, "deploy", "prometheus-rules")
    assert result.exit_code == ExitCode.CONFIG, result.output


def test_thresholds_of_the_health_check_settings_reach_the_rules(env):
    env["TCGJOBS_HEALTH_JOB_FAILURES_CRITICAL"] = "4"
    env["TCGJOBS_HEALTH_BACKUP_AGE_CRITICAL_HOURS"] = "30"
    alerts = {alert.name: alert for alert in render_rules(load_settings(env)).alerts}
    assert alerts["TcgjobsJobFailingRepeatedly"].expr.endswith(">= 4")
    assert alerts["TcgjobsJobFailing"].expr.endswith(">= 1 < 4")
    assert alerts["TcgjobsBackupStaleCritical"].expr.endswith(f">= {30 * 3600}")
