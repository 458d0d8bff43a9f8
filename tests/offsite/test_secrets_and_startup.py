"""The off-site secret key never reaches any output channel, and boto3 is loaded only by the
off-site commands."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_app import _modules_after
from tests.conftest import run_tcgjobs
from tests.offsite.conftest import SECRET_KEY, objects


def every_channel(tmp_path: Path, s3, bucket: str) -> dict[str, bytes]:
    """Every place text ends up: the files under tmp_path (ledger, metrics, manifests, logs) and
    every object in the bucket (sidecars, proofs)."""
    found = {str(path): path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    for key in objects(s3, bucket):
        found[f"s3://{bucket}/{key}"] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return found


def test_the_secret_key_appears_in_no_output_log_ledger_metric_or_object(tmp_path, env, s3, bucket,
                                                                         backups, proxy):
    from tests.support.s3 import Rule

    secret_file = tmp_path / "secrets" / "aws-secret-access-key"
    secret_file.parent.mkdir()
    secret_file.write_text(SECRET_KEY + "\n")
    del env["AWS_SECRET_ACCESS_KEY"]
    env["AWS_SECRET_ACCESS_KEY_FILE"] = str(secret_file)
    env["TCGJOBS_METRICS_DIR"] = str(tmp_path / "metrics")
    env["TCGJOBS_LOG_LEVEL"] = "debug"
    outputs = [run_tcgjobs("run", "upload-backups", "--ignore-deps", "--json"),
               run_tcgjobs("config"), run_tcgjobs("config", "--check"),
               run_tcgjobs("backup", "list", "--remote", "--json"),
               run_tcgjobs("backup", "verify", "--remote", "--all"),
               run_tcgjobs("history", "--json"), run_tcgjobs("status", "--json")]
    proxy.add(Rule("error", status=403, code="SignatureDoesNotMatch"))
    outputs.append(run_tcgjobs("run", "upload-backups", "--ignore-deps", "--json"))
    proxy.clear()
    proxy.add(Rule("error", status=503, code="SlowDown"))
    outputs.append(run_tcgjobs("backup", "restore", "--remote", backups[0].name, "--to",
                               str(tmp_path / "r.db")))
    assert [o.returncode for o in outputs] == [0, 0, 0, 0, 0, 0, 0, 78, 69], [o.stderr[-300:] for o in outputs]
    for output in outputs:
        assert SECRET_KEY not in output.stdout + output.stderr
    assert json.loads(outputs[0].stdout)["run"]["metrics"]["offsite_verified"] == 3
    assert list((tmp_path / "metrics").iterdir())  # the metrics were written, and are checked too
    channels = every_channel(tmp_path, s3, bucket)
    assert any(name.endswith(".verified.json") for name in channels)
    leaks = [name for name, data in channels.items()
             if SECRET_KEY.encode() in data and name != str(secret_file)]
    assert leaks == []


def test_a_backup_and_the_health_check_never_import_boto3(tmp_path, env, bucket):
    for args in (["run", "backup-database"], ["run", "database-health-check"], ["backup", "list"],
                 ["status"], ["run", "upload-backups", "--help"]):
        _, modules = _modules_after(tmp_path, *args)
        assert not {"boto3", "botocore", "tcgjobs.offsite.store"} & modules, args


def test_the_remote_commands_and_the_job_do_import_it(tmp_path, env, bucket, backups):
    _, modules = _modules_after(tmp_path, "backup", "list", "--remote")
    assert {"boto3", "tcgjobs.offsite.store"} <= modules
