"""upload-backups' off-site retention (rotate-backups' policy with its own counts) and its
rolling sample of full re-proofs, against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import invoke, make_settings
from tests.offsite.conftest import objects
from tests.support.s3 import Rule


def upload(cli, *extra: str):
    result = invoke(cli, "run", "upload-backups", "--ignore-deps", "--json", *extra)
    return result, (json.loads(result.stdout)["run"] if result.stdout.strip() else None)


def names(s3, bucket) -> set[str]:
    return {key.split("/", 1)[1] for key in objects(s3, bucket)}


@pytest.fixture
def week(env):
    """Seven verified daily backups, newest first."""
    from tests.support.backups import fill_card_db, make_backup

    settings = make_settings()
    fill_card_db(settings.database_path)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [make_backup(settings, today - timedelta(days=days)) for days in range(7)]


def keep_two(env) -> None:
    for key, value in {"TCGJOBS_OFFSITE_DAILY_RETENTION": "2", "TCGJOBS_OFFSITE_WEEKLY_RETENTION": "0",
                       "TCGJOBS_OFFSITE_MONTHLY_RETENTION": "0", "TCGJOBS_OFFSITE_MINIMUM": "1"}.items():
        env[key] = value


def test_offsite_retention_deletes_copies_no_rule_keeps_with_their_sidecars(cli, s3, bucket, env, week):
    assert upload(cli)[0].exit_code == 0
    for path in week[2:]:  # gone locally too (rotate-backups' own policy)
        for suffix in ("", ".sha256", ".manifest.json"):
            path.with_name(path.name + suffix).unlink()
    keep_two(env)
    result, run = upload(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["deleted"] == 5
    left = names(s3, bucket)
    assert left == {path.name + suffix for path in week[:2]
                    for suffix in ("", ".sha256", ".manifest.json", ".verified.json")}
    reasons = {row["name"]: row["reasons"] for row in run["details"]["retention"]}
    assert reasons[week[0].name][0].startswith("daily ")
    assert reasons[week[3].name] == ["no rule keeps it"]


def test_dry_run_shows_the_plan_and_uploads_and_deletes_nothing(cli, s3, bucket, env, week):
    assert upload(cli)[0].exit_code == 0
    before = objects(s3, bucket)
    keep_two(env)
    result, run = upload(cli, "--dry-run")
    assert result.exit_code == 0, result.output
    assert objects(s3, bucket) == before
    actions = {row[0]: row[2] for row in run["details"]["table"]["rows"]}
    assert [actions[path.name] for path in week] == ["keep"] * 2 + ["would delete"] * 5
    assert run["summary"].startswith("dry run: ")


def test_a_copy_whose_local_counterpart_is_unverified_is_kept(cli, s3, bucket, env, week):
    assert upload(cli)[0].exit_code == 0
    oldest = week[-1]
    oldest.with_name(oldest.name + ".manifest.json").unlink()  # locally unverified now
    keep_two(env)
    result, run = upload(cli)
    assert result.exit_code == 0, result.output
    assert oldest.name in names(s3, bucket)
    [row] = [row for row in run["details"]["retention"] if row["name"] == oldest.name]
    assert row["action"] == "keep" and "local copy is unverified" in row["reasons"][-1]


def test_a_delete_the_store_refuses_is_reported_not_a_failure(cli, s3, bucket, env, week, proxy):
    assert upload(cli)[0].exit_code == 0
    keep_two(env)
    proxy.add(Rule("error", method="DELETE", status=403, code="AccessDenied"))
    result, run = upload(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["delete_refused"] == 5 and run["metrics"]["deleted"] == 0
    assert set(run["details"]["delete_refused"]) == {path.name for path in week[2:]}
    assert {path.name + ".verified.json" for path in week} <= names(s3, bucket)  # still whole


def test_the_rolling_sample_re_proves_a_different_copy_each_run(cli, s3, bucket, env, backups):
    assert upload(cli)[0].exit_code == 0
    proven = []
    for _ in range(3):
        result, run = upload(cli)
        assert result.exit_code == 0, result.output
        [item] = run["details"]["reproved"]
        assert item["status"] == "verified"
        proven.append(item["name"])
    assert sorted(proven) == sorted(path.name for path in backups)


def rot(s3, bucket, key: str) -> None:
    """Damage an object in place. moto cannot change bytes under an unchanged ETag, as real bit
    rot does, so the proof is pointed at the damaged object's ETag afterwards."""
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 3] ^= 0x01
    etag = s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))["ETag"].strip('"')
    proof = json.loads(s3.get_object(Bucket=bucket, Key=key + ".verified.json")["Body"].read())
    proof["etag"] = etag
    s3.put_object(Bucket=bucket, Key=key + ".verified.json", Body=json.dumps(proof).encode())


def test_bit_rot_found_by_the_sample_is_repaired_from_the_local_copy(cli, s3, bucket, env, backups):
    env["TCGJOBS_OFFSITE_VERIFY_SAMPLE"] = "3"
    assert upload(cli)[0].exit_code == 0
    key = f"backups/{backups[1].name}"
    rot(s3, bucket, key)
    result, run = upload(cli)
    assert result.exit_code == 0, result.output
    assert {r["name"]: r["status"] for r in run["details"]["reproved"]}[backups[1].name] == "corrupt"
    assert run["details"]["uploaded"] == [backups[1].name]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == backups[1].read_bytes()


def test_bit_rot_without_a_local_copy_exits_3(cli, s3, bucket, env, backups):
    env["TCGJOBS_OFFSITE_VERIFY_SAMPLE"] = "3"
    assert upload(cli)[0].exit_code == 0
    for suffix in ("", ".sha256", ".manifest.json"):
        backups[2].with_name(backups[2].name + suffix).unlink()
    rot(s3, bucket, f"backups/{backups[2].name}")
    result, run = upload(cli)
    assert result.exit_code == 3, result.output
    assert backups[2].name in run["error"]


def test_an_object_replaced_behind_its_proof_is_unproven_and_sent_again(cli, s3, bucket, backups):
    assert upload(cli)[0].exit_code == 0
    key = f"backups/{backups[0].name}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"something else")
    listed = json.loads(invoke(cli, "backup", "list", "--remote", "--json").stdout)["copies"]
    assert {c["name"]: c["status"] for c in listed}[backups[0].name] == "unproven"
    result, run = upload(cli)
    assert result.exit_code == 0, result.output
    assert run["details"]["uploaded"] == [backups[0].name]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == backups[0].read_bytes()


def test_a_killed_upload_between_object_and_proof_is_proven_not_sent_again(cli, s3, bucket, backups):
    key = f"backups/{backups[0].name}"
    s3.put_object(Bucket=bucket, Key=key, Body=backups[0].read_bytes())  # as a stopped run left it
    result, run = upload(cli)
    assert result.exit_code == 0, result.output
    assert run["details"]["resumed"] == [backups[0].name]
    assert backups[0].name not in run["details"]["uploaded"]
