"""offsite-age and the off-site metrics come from the ledger's upload-backups runs: the health
check and the metrics never ask the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.conftest import invoke, make_settings, run_tcgjobs
from tests.offsite.conftest import objects


def health(cli) -> dict[str, dict]:
    result = invoke(cli, "run", "database-health-check", "--json")
    checks = json.loads(result.stdout)["run"]["details"]["checks"]
    return {check["check"]: check for check in checks}


def test_offsite_age_is_absent_while_off_and_critical_before_the_first_upload(cli, env, backups):
    assert "offsite-age" not in health(cli)
    env["TCGJOBS_OFFSITE_URL"] = "s3://never-contacted/backups"  # the check must not call it
    check = health(cli)["offsite-age"]
    assert check["level"] == "critical" and "no upload-backups run" in check["detail"]


def test_offsite_age_grades_the_newest_verified_copy_from_the_ledger(cli, env, bucket, s3):
    from tests.support.backups import fill_card_db, make_backup

    settings = make_settings()
    fill_card_db(settings.database_path)
    make_backup(settings, datetime.now(UTC) - timedelta(hours=30))
    assert invoke(cli, "run", "upload-backups", "--ignore-deps").exit_code == 0
    env["TCGJOBS_OFFSITE_ENDPOINT_URL"] = "http://127.0.0.1:9"  # unreachable: the check never calls it
    check = health(cli)["offsite-age"]
    assert check["level"] == "warning", check
    assert "1 of 1 copies verified" in check["detail"] and 29.9 < check["value"] < 30.5
    env["TCGJOBS_HEALTH_OFFSITE_AGE_CRITICAL_HOURS"] = "29"
    env["TCGJOBS_HEALTH_OFFSITE_AGE_WARNING_HOURS"] = "28"
    assert health(cli)["offsite-age"]["level"] == "critical"


def test_metrics_carry_the_offsite_timestamp_objects_and_bytes(cli, env, bucket, s3, backups, tmp_path):
    env["TCGJOBS_METRICS_DIR"] = str(tmp_path / "metrics")
    assert invoke(cli, "run", "upload-backups", "--ignore-deps").exit_code == 0
    text = (tmp_path / "metrics" / "tcgjobs.prom").read_text()
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("tcgjobs_offsite_")}
    assert values["tcgjobs_offsite_objects"] == 3
    assert values["tcgjobs_offsite_size_bytes"] == sum(path.stat().st_size for path in backups)
    from tcgjobs.backups.names import parse_name

    created_at, _ = parse_name(backups[0].name)  # the newest copy's time is in its name
    assert values["tcgjobs_offsite_newest_verified_timestamp_seconds"] == created_at.timestamp()
    assert f"backups/{backups[0].name}" in objects(s3, bucket)


def test_a_failed_run_still_records_what_it_saw(env, bucket, backups, proxy):
    from tests.support.s3 import Rule

    proxy.add(Rule("error", method="PUT", status=503, code="SlowDown"))
    result = run_tcgjobs("run", "upload-backups", "--ignore-deps", "--json")
    assert result.returncode == 69, result.stderr
    metrics = json.loads(result.stdout)["run"]["metrics"]
    assert metrics["offsite_copies"] == 0 and metrics["offsite_newest_verified_timestamp"] == 0
    runs = json.loads(run_tcgjobs("history", "upload-backups", "--json").stdout)["runs"]
    assert runs[0]["metrics"]["offsite_copies"] == 0  # the ledger kept the failed run's numbers


def test_a_stale_offsite_copy_reaches_the_slack_digest_with_its_numbers(cli, env, bucket, slack):
    from tests.support.backups import fill_card_db, make_backup

    settings = make_settings()
    fill_card_db(settings.database_path)
    make_backup(settings, datetime.now(UTC) - timedelta(hours=60))
    assert invoke(cli, "run", "upload-backups", "--ignore-deps").exit_code == 0
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = slack.webhook()
    env["TCGJOBS_SLACK_MAX_ATTEMPTS"] = "1"
    invoke(cli, "run", "database-health-check")
    [message] = [r.json["text"] for r in slack.requests if "offsite-age" in r.json["text"]]
    assert "CRITICAL" in message and "1 of 1 copies verified" in message and "MiB" in message
