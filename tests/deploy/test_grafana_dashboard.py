"""``tcgjobs deploy grafana-dashboard``: the dashboard rendered from the registry, the committed
copy, Grafana's typed model reading it back, and the SDK staying out of every other command."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs
from tests.cli.test_app import _modules_after
from tests.conftest import invoke
from tests.deploy.conftest import DEPLOY_DIR

COMMITTED = DEPLOY_DIR / "grafana" / "tcgjobs-dashboard.json"
RENDER = "tcgjobs deploy grafana-dashboard --output deploy/grafana/tcgjobs-dashboard.json"


def render(cli) -> str:
    result = invoke(cli, "deploy", "grafana-dashboard")
    assert result.exit_code == 0, result.output
    return result.stdout


def panels(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel for panel in dashboard["panels"] if panel["type"] != "row"}


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    return [target["expr"] for panel in panels(dashboard).values() for target in panel["targets"]]


def _without_empty_custom(node: Any) -> Any:
    """The SDK's decoder adds an empty ``custom`` field config to panels that set none."""
    if isinstance(node, dict):
        return {k: _without_empty_custom(v) for k, v in node.items() if not (k == "custom" and v == {})}
    if isinstance(node, list):
        return [_without_empty_custom(item) for item in node]
    return node


def read_back(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The dashboard decoded by grafana-foundation-sdk's typed model and encoded again."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    return json.loads(json.dumps(Dashboard.from_json(dashboard), cls=JSONEncoder))


def test_committed_dashboard_equals_the_current_render(cli):
    assert COMMITTED.read_text() == render(cli), f"{COMMITTED} has drifted; run: {RENDER}"


def test_grafanas_typed_model_reads_every_field_of_the_dashboard(cli):
    dashboard = json.loads(render(cli))
    assert _without_empty_custom(read_back(dashboard)) == dashboard


def test_the_read_back_check_catches_a_misspelled_field(cli):
    dashboard = json.loads(render(cli))
    dashboard["panels"][1]["gridPoss"] = dashboard["panels"][1]["gridPos"]
    assert _without_empty_custom(read_back(dashboard)) != dashboard


def test_variables_pick_a_prometheus_data_source_and_any_registered_job(cli):
    dashboard = json.loads(render(cli))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["query"].split(",") == list(all_jobs())
    assert job["multi"] and job["includeAll"] and job["allValue"] == ".*"
    for panel in panels(dashboard).values():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


def test_panels_cover_jobs_backups_and_health_checks_per_job(cli):
    dashboard = json.loads(render(cli))
    by_title = panels(dashboard)
    per_job = [expr for expr in queries(dashboard) if 'job=~"$job"' in expr]
    assert len(per_job) == 7, "time since success (two), exit code, failures, abandoned, duration, records"
    assert all("max by (job" in expr or expr.startswith("job:") for expr in per_job)
    exit_codes = by_title["Last exit code"]["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {int(code) for code in exit_codes} == {int(code) for code in ExitCode}
    assert exit_codes["75"]["text"] == "75 SKIPPED" and exit_codes["0"]["color"] == "green"
    assert by_title["Health checks"]["type"] == "state-timeline"
    levels = by_title["Health checks"]["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {v["text"] for v in levels.values()} == {"ok", "warning", "critical"}
    age = by_title["Newest verified backup"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in age] == [None, 26 * 3600, 50 * 3600]


def test_settings_reach_the_thresholds(cli, env):
    env["TCGJOBS_HEALTH_JOB_FAILURES_CRITICAL"] = "5"
    dashboard = json.loads(render(cli))
    steps = panels(dashboard)["Consecutive failures"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 1, 5]


def test_output_option_writes_the_file_and_bad_settings_exit_78(cli, env, tmp_path):
    target = tmp_path / "grafana" / "dashboard.json"
    result = invoke(cli, "deploy", "grafana-dashboard", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["uid"] == "tcgjobs"
    env["TCGJOBS_HEALTH_JOB_FAILURES_CRITICAL"] = "zero"
    assert invoke(cli, "deploy", "grafana-dashboard").exit_code == ExitCode.CONFIG


@pytest.mark.parametrize("args", [("run", "backup-database", "--dry-run", "--json"),
                                  ("deploy", "prometheus-rules"), ("deploy", "k8s")])
def test_only_the_dashboard_command_imports_the_grafana_sdk(tmp_path, args):
    _, modules = _modules_after(tmp_path, *args)
    assert "tcgjobs.cli.deploy" in modules or args[0] == "run"
    assert not {name for name in modules if name.startswith("grafana_foundation_sdk")}
    _, modules = _modules_after(tmp_path, "deploy", "grafana-dashboard")
    assert "grafana_foundation_sdk.builders.dashboard" in modules
