"""``tcgjobs deploy k8s``: the kustomize base rendered from the registry, and the committed copy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tcgjobs.deploy.plan import backoff_seconds, exit_policy
from tcgjobs.errors import RETRYABLE_EXIT_CODES, ExitCode
from tcgjobs.registry import all_jobs
from tests.conftest import invoke
from tests.deploy.conftest import DEPLOY_DIR, KUBERNETES_VERSIONS, require_tool

RENDER_COMMAND = "tcgjobs deploy k8s --output deploy/k8s (in an environment without TCGJOBS_* settings)"


def render_files(cli, directory: Path, *args: str) -> dict[str, str]:
    result = invoke(cli, "deploy", "k8s", "--output", str(directory), *args)
    assert result.exit_code == 0, result.output
    return {path.name: path.read_text() for path in sorted(directory.iterdir())}


def render_stream(cli, *args: str) -> list[dict[str, Any]]:
    result = invoke(cli, "deploy", "k8s", *args)
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def cronjobs(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"].removeprefix("tcgjobs-"): doc
            for doc in documents if doc["kind"] == "CronJob"}


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_committed_k8s_base_equals_the_current_render(cli, tmp_path):
    rendered = render_files(cli, tmp_path / "k8s")
    committed = {path.name: path.read_text() for path in sorted((DEPLOY_DIR / "k8s").iterdir())
                 if path.is_file()}  # monitoring/ is the rules' component (test_prometheus_rules.py)
    assert sorted(committed) == sorted(rendered), f"deploy/k8s has drifted; run: {RENDER_COMMAND}"
    for name, text in rendered.items():
        assert committed[name] == text, f"deploy/k8s/{name} has drifted; run: {RENDER_COMMAND}"


def test_kubectl_kustomize_renders_the_committed_base_with_every_job():
    kubectl = require_tool("kubectl")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY_DIR / "k8s")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert set(cronjobs(documents)) == set(all_jobs())
    assert all(doc["metadata"].get("namespace") == "tcgjobs"
               for doc in documents if doc["kind"] != "Namespace")
    configmap = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    assert configmap["data"]["TCGJOBS_TIMEZONE"] == "UTC"
    # kustomize renames the generated ConfigMap (hash suffix) and must rewrite every reference.
    for cronjob in cronjobs(documents).values():
        refs = [source["configMapRef"]["name"] for source in pod_spec(cronjob)["containers"][0]["envFrom"]]
        assert refs == [configmap["metadata"]["name"]]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_of_the_kustomized_base_validates_against_the_kubernetes_schemas(version):
    kubectl = require_tool("kubectl")
    built = subprocess.run([kubectl, "kustomize", str(DEPLOY_DIR / "k8s")], capture_output=True,
                           text=True, timeout=120, check=True).stdout
    documents = [doc for doc in yaml.safe_load_all(built) if doc]
    assert {doc["kind"] for doc in documents} == {"Namespace", "ConfigMap", "PersistentVolumeClaim",
                                                  "CronJob"}
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_every_resource_of_the_stream_validates_and_is_namespaced(cli):
    documents = render_stream(cli, "--namespace", "cards", "--image", "registry.example/tcgjobs:1.2.3")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "cards"
    assert {c["image"] for job in cronjobs(documents).values() for c in pod_spec(job)["containers"]} \
        == {"registry.example/tcgjobs:1.2.3"}


def test_a_schema_violation_is_caught_by_the_validator(cli):
    """The validation above can fail: a misspelled field is rejected in strict mode."""
    cronjob = next(iter(cronjobs(render_stream(cli)).values()))
    cronjob["spec"]["concurrencyPolicyy"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSIONS[0], strict=True)


def test_each_job_runs_on_its_registry_schedule_in_the_configured_zone_with_trigger_schedule(cli):
    jobs = cronjobs(render_stream(cli))
    assert set(jobs) == set(all_jobs())
    for name, job in all_jobs().items():
        spec = jobs[name]["spec"]
        assert spec["schedule"] == job.schedule
        assert spec["timeZone"] == "UTC"
        assert spec["suspend"] is (job.needs is not None)  # upload-backups: no off-site URL yet
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 60 <= spec["startingDeadlineSeconds"] <= 3600
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        assert spec["jobTemplate"]["spec"]["ttlSecondsAfterFinished"] > 0
        container = pod_spec(jobs[name])["containers"][0]
        assert container["command"] == ["tcgjobs"]
        assert container["args"] == ["run", name, "--trigger", "schedule"]


def test_upload_backups_runs_once_rendered_with_an_offsite_url_that_the_pods_get(cli, env):
    env["TCGJOBS_OFFSITE_URL"] = "s3://tcg-backups/nightly"
    stream = render_stream(cli)
    assert cronjobs(stream)["upload-backups"]["spec"]["suspend"] is False
    config_maps = [doc for doc in stream if doc["kind"] == "ConfigMap"]
    assert [doc["data"]["TCGJOBS_OFFSITE_URL"] for doc in config_maps] == ["s3://tcg-backups/nightly/"]


def test_pod_failure_policy_fails_at_once_on_final_codes_and_retries_the_retryable_ones(cli):
    final = [ExitCode.USAGE, ExitCode.PROBLEMS, ExitCode.CONFIG]
    for job in cronjobs(render_stream(cli)).values():
        spec = job["spec"]["jobTemplate"]["spec"]
        assert pod_spec(job)["restartPolicy"] == "Never"  # required by podFailurePolicy
        ignore, fail, count = spec["podFailurePolicy"]["rules"]
        assert ignore == {"action": "Ignore",
                          "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        assert fail["action"] == "FailJob" and count["action"] == "Count"
        assert set(final) <= set(fail["onExitCodes"]["values"])
        assert {ExitCode.UNAVAILABLE, ExitCode.SKIPPED} <= set(count["onExitCodes"]["values"])
        assert set(count["onExitCodes"]["values"]) == {int(c) for c in RETRYABLE_EXIT_CODES}
        # Kubernetes requires the values sorted, unique and non-zero.
        for rule in (fail, count):
            values = rule["onExitCodes"]["values"]
            assert values == sorted(set(values)) and 0 not in values
    every = set(exit_policy().fail_at_once) | set(exit_policy().retried)
    assert every == {int(c) for c in ExitCode if c is not ExitCode.OK}


def test_active_deadline_covers_every_attempt_and_the_graceful_stop(cli):
    for name, job in cronjobs(render_stream(cli)).items():
        spec = job["spec"]["jobTemplate"]["spec"]
        grace = pod_spec(job)["terminationGracePeriodSeconds"]
        timeout = all_jobs()[name].timeout
        attempts = spec["backoffLimit"] + 1
        assert grace >= 30
        assert spec["activeDeadlineSeconds"] >= attempts * (timeout + grace) + backoff_seconds(
            spec["backoffLimit"])


def test_the_fifteen_minute_health_check_never_outlives_its_next_run(cli):
    spec = cronjobs(render_stream(cli))["database-health-check"]["spec"]["jobTemplate"]["spec"]
    assert spec["activeDeadlineSeconds"] <= 15 * 60
    assert spec["backoffLimit"] >= 1


def test_pods_run_hardened_with_a_read_only_root_and_writable_volumes_only_where_needed(cli):
    for job in cronjobs(render_stream(cli)).values():
        spec = pod_spec(job)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert set(mounts) >= {"/app/database", "/app/backups", "/tmp", "/run/secrets/tcgjobs"}
        assert mounts["/run/secrets/tcgjobs"]["readOnly"] is True


def test_database_and_backups_live_on_separate_read_write_once_claims(cli):
    documents = render_stream(cli)
    claims = {d["metadata"]["name"]: d for d in documents if d["kind"] == "PersistentVolumeClaim"}
    assert set(claims) == {"tcgjobs-database", "tcgjobs-backups"}
    assert all(c["spec"]["accessModes"] == ["ReadWriteOnce"] for c in claims.values())
    settings = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert settings["DATABASE_PATH"].startswith("/app/database/")
    assert settings["TCGJOBS_TMPDIR"] == "/app/database"  # on the claim: VACUUM needs the room
    assert settings["BACKUP_DIR"] == "/app/backups"
    for job in cronjobs(documents).values():
        spec = pod_spec(job)
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["database"]["persistentVolumeClaim"]["claimName"] == "tcgjobs-database"
        assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == "tcgjobs-backups"
        assert volumes["secrets"]["secret"]["optional"] is True
        term = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"].items() <= job["spec"]["jobTemplate"]["spec"][
            "template"]["metadata"]["labels"].items()


def test_sync_jobs_read_a_fresh_git_sync_checkout_of_the_card_data(cli):
    jobs = cronjobs(render_stream(cli))
    for name in ("sync-missing-sets", "sync-missing-cards"):
        spec = pod_spec(jobs[name])
        (init,) = spec["initContainers"]
        assert init["image"].startswith("registry.k8s.io/git-sync/git-sync:v4.")
        assert "--one-time" in init["args"]
        assert "--repo=https://github.com/PokemonTCG/pokemon-tcg-data" in init["args"]
        root = next(a for a in init["args"] if a.startswith("--root=")).split("=", 1)[1]
        link = next(a for a in init["args"] if a.startswith("--link=")).split("=", 1)[1]
        env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
        assert env["TCGJOBS_DATA_SOURCE"] == f"{root}/{link}"
        assert {v["name"]: v for v in spec["volumes"]}["card-data"]["emptyDir"]
    assert "initContainers" not in pod_spec(jobs["backup-database"])


def test_disabled_job_is_suspended_and_its_setting_reaches_every_run(cli, env):
    env["TCGJOBS_BACKUP_DATABASE_ENABLED"] = "false"
    documents = render_stream(cli)
    jobs = cronjobs(documents)
    assert jobs["backup-database"]["spec"]["suspend"] is True
    assert jobs["rotate-backups"]["spec"]["suspend"] is False
    settings = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert settings["TCGJOBS_BACKUP_DATABASE_ENABLED"] == "false"


def test_schedule_timeout_and_timezone_settings_are_honoured(cli, env):
    env["TCGJOBS_ROTATE_BACKUPS_SCHEDULE"] = "30 1 * * *"
    env["TCGJOBS_ROTATE_BACKUPS_TIMEOUT"] = "900"
    env["TCGJOBS_TIMEZONE"] = "Europe/Berlin"
    documents = render_stream(cli)
    spec = cronjobs(documents)["rotate-backups"]["spec"]
    assert spec["schedule"] == "30 1 * * *"
    assert all(job["spec"]["timeZone"] == "Europe/Berlin" for job in cronjobs(documents).values())
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] >= 900 * (
        spec["jobTemplate"]["spec"]["backoffLimit"] + 1)
    settings = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert settings["TCGJOBS_ROTATE_BACKUPS_SCHEDULE"] == "30 1 * * *"
    assert settings["TCGJOBS_ROTATE_BACKUPS_TIMEOUT"] == "900.0"
    assert settings["TCGJOBS_TIMEZONE"] == "Europe/Berlin"
    assert "TCGJOBS_BACKUP_DATABASE_SCHEDULE" not in settings


def test_rendered_files_never_contain_a_secret_value(cli, env, tmp_path):
    secrets = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T000/B000/s3cr3t-webhook",
        "NOTIFICATIONS_ENABLED": "true",
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PASSWORD": "pg-s3cr3t-password",
        "TCGJOBS_PING_URL": "https://hc.example/ping/s3cr3t-ping-key/{job}",
        "TCGJOBS_PUSHGATEWAY_URL": "https://user:s3cr3t-push@push.example",
    }
    for name, value in secrets.items():
        env[name] = value
    texts = list(render_files(cli, tmp_path / "k8s").values())
    texts.append(invoke(cli, "deploy", "k8s").stdout)
    texts.append(invoke(cli, "deploy", "crontab").stdout)
    for text in texts:
        for marker in ("s3cr3t-webhook", "pg-s3cr3t-password", "s3cr3t-ping-key", "s3cr3t-push"):
            assert marker not in text
    settings_env = (tmp_path / "k8s" / "settings.env").read_text()
    for variable in ("SLACK_WEBHOOK_URL_FILE", "POSTGRES_PASSWORD_FILE", "TCGJOBS_POSTGRES_URL_FILE",
                     "TCGJOBS_PING_URL_FILE"):
        assert f"# {variable}=/run/secrets/tcgjobs/" in settings_env


def test_output_directory_loses_the_cronjob_of_a_job_no_longer_registered(cli, tmp_path):
    stale = tmp_path / "k8s" / "cronjob-retired-job.yaml"
    stale.parent.mkdir()
    stale.write_text("kind: CronJob\n")
    keep = tmp_path / "k8s" / "overlay-notes.md"
    keep.write_text("mine\n")
    files = render_files(cli, tmp_path / "k8s")
    assert "cronjob-retired-job.yaml" not in files
    assert files["overlay-notes.md"] == "mine\n"
    assert "cronjob-backup-database.yaml" in files


def test_invalid_settings_exit_78_and_render_nothing(cli, env, tmp_path):
    env["TCGJOBS_TIMEZONE"] = "Mars/Olympus_Mons"
    result = invoke(cli, "deploy", "k8s", "--output", str(tmp_path / "k8s"))
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert not (tmp_path / "k8s").exists()


def test_unknown_deploy_target_exits_2(cli):
    result = invoke(cli, "deploy", "nomad")
    assert result.exit_code == ExitCode.USAGE, result.output


def test_the_overlay_example_in_the_guide_builds_on_the_committed_base(tmp_path):
    kubectl = require_tool("kubectl")
    guide = (DEPLOY_DIR.parent / "docs" / "deploy.md").read_text()
    example = guide[guide.index("# my-overlay/kustomization.yaml"):]
    example = example[:example.index("```")]
    shutil.copytree(DEPLOY_DIR / "k8s", tmp_path / "deploy" / "k8s")
    (tmp_path / "my-overlay").mkdir()
    (tmp_path / "my-overlay" / "kustomization.yaml").write_text(example)
    result = subprocess.run([kubectl, "kustomize", str(tmp_path / "my-overlay")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    configmap = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    assert configmap["data"]["POSTGRES_HOST"] == "postgres.db.svc"
    assert configmap["data"]["TCGJOBS_TIMEZONE"] == "UTC"  # merged, not replaced
    for job in cronjobs(documents).values():
        assert pod_spec(job)["containers"][0]["image"] == "registry.example.com/tcgjobs:0.1.0"
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


def test_rendered_settings_load_and_the_secret_file_lines_read_the_mounted_keys(cli, tmp_path):
    from tcgjobs.config import load_settings

    settings_env = render_files(cli, tmp_path / "k8s")["settings.env"]
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    values = {"slack-webhook-url": "https://hooks.slack.example/services/T/B/x",
              "postgres-password": "pw", "ping-url": "https://hc.example/ping/k/{job}",
              "pushgateway-url": "https://push.example"}
    for line in settings_env.splitlines():
        if "_FILE=/run/secrets/tcgjobs/" in line:  # every key, including ones added later
            key = line.rsplit("/", 1)[1]
            (secrets_dir / key).write_text(values.get(key, "https://secret.example/key") + "\n")
    environ = {}
    for line in settings_env.splitlines():
        line = line.removeprefix("# ") if "_FILE=/run/secrets/tcgjobs/" in line else line
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            if not value.endswith("/postgres-url"):  # the URL and POSTGRES_PASSWORD: pick one scheme
                environ[name] = value.replace("/run/secrets/tcgjobs", str(secrets_dir))
    settings = load_settings({**environ, "POSTGRES_HOST": "db", "NOTIFICATIONS_ENABLED": "true"})
    assert str(settings.database_path) == "/app/database/pokemon-data.sqlite3.db"
    assert str(settings.tmpdir) == "/app/database" and str(settings.backup_dir) == "/app/backups"
    assert settings.slack_webhook_url == values["slack-webhook-url"]
    assert settings.postgres_password == "pw"
    assert settings.ping_url == values["ping-url"]
    assert settings.pushgateway_url == values["pushgateway-url"]
    configmap = next(d for d in render_stream(cli) if d["kind"] == "ConfigMap")
    assert configmap["data"] == {k: v for k, v in environ.items() if not k.endswith("_FILE")}
