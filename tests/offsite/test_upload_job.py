"""upload-backups against moto's real S3 server: what ends up in the bucket, and in the ledger."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import invoke, make_settings
from tests.offsite.conftest import objects
from tests.support.backups import flip_byte


def upload(cli, *extra: str):
    return invoke(cli, "run", "upload-backups", "--ignore-deps", "--json", *extra)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_upload_copies_every_verified_backup_with_its_sidecars_and_a_proof(cli, bucket, s3, backups):
    result = upload(cli)
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["run"]
    assert run["metrics"]["uploaded"] == 3 and run["metrics"]["offsite_verified"] == 3
    found = objects(s3, bucket)
    for path in backups:
        key = f"backups/{path.name}"
        assert found[key]["Size"] == path.stat().st_size
        assert found[key]["ETag"] == md5(path)
        for suffix in (".sha256", ".manifest.json"):
            body = s3.get_object(Bucket=bucket, Key=key + suffix)["Body"].read()
            assert body == path.with_name(path.name + suffix).read_bytes()
        proof = json.loads(s3.get_object(Bucket=bucket, Key=key + ".verified.json")["Body"].read())
        assert proof["status"] == "verified"
        assert proof["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert proof["size_bytes"] == path.stat().st_size and proof["run_id"] == run["run_id"]
    assert len(found) == 12


def test_a_second_run_finds_everything_off_site_and_sends_nothing(cli, bucket, s3, backups):
    assert upload(cli).exit_code == 0
    before = objects(s3, bucket)
    result = upload(cli)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["run"]["metrics"]
    assert (metrics["uploaded"], metrics["already_offsite"], metrics["bytes_uploaded"]) == (0, 3, 0)
    assert objects(s3, bucket).keys() == before.keys()


def test_corrupt_and_unverified_local_backups_are_never_uploaded(cli, bucket, s3, backups):
    newest, middle, oldest = backups
    flip_byte(middle)  # its size still matches: the run finds the damage while hashing
    oldest.with_name(oldest.name + ".manifest.json").unlink()  # no recorded verification
    result = upload(cli)
    assert result.exit_code == 3, result.output
    run = json.loads(result.stdout)["run"]
    assert middle.name in run["error"]
    assert run["details"]["skipped"] == {oldest.name: "local backup is unverified: never uploaded"}
    names = {key.split("/", 1)[1] for key in objects(s3, bucket)}
    assert newest.name in names
    assert not any(name.startswith((middle.name, oldest.name)) for name in names)


def test_a_backup_larger_than_a_part_goes_up_in_parts_and_is_proven(cli, bucket, s3, env, tmp_path):
    from tests.support.offsite import big_backup

    path = big_backup(make_settings(), megabytes=12)
    result = upload(cli)
    assert result.exit_code == 0, result.output
    head = s3.head_object(Bucket=bucket, Key=f"backups/{path.name}")
    assert head["ContentLength"] == path.stat().st_size
    assert head["ETag"].strip('"').endswith("-3")
    body = s3.get_object(Bucket=bucket, Key=f"backups/{path.name}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_without_an_offsite_url_the_job_is_off_and_never_late(cli, env, backups):
    result = invoke(cli, "run", "upload-backups")
    assert result.exit_code == 75, result.output
    assert "TCGJOBS_OFFSITE_URL is not set" in result.output
    status = invoke(cli, "status", "upload-backups", "--json")
    assert status.exit_code == 0, status.output
    [entry] = json.loads(status.stdout)["jobs"]
    assert entry["enabled"] is False and entry["late"] is False


def test_a_verified_backup_without_its_sha256_sidecar_gets_one_off_site(cli, bucket, s3, backups):
    path = backups[0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").unlink()  # the manifest still records the checksum
    result = upload(cli)
    assert result.exit_code == 0, result.output
    body = s3.get_object(Bucket=bucket, Key=f"backups/{path.name}.sha256")["Body"].read()
    assert body == f"{digest}  {path.name}\n".encode()
    again = json.loads(upload(cli).stdout)["run"]["metrics"]
    assert (again["uploaded"], again["already_offsite"]) == (0, 3)


def test_config_check_asks_the_store_once(cli, bucket, env):
    result = invoke(cli, "config", "--check", "--json")
    assert result.exit_code == 0, result.output
    assert "answers a listing" in result.stdout
    env["TCGJOBS_OFFSITE_URL"] = "s3://no-such-bucket-tcgjobs/x"
    result = invoke(cli, "config", "--check")
    assert result.exit_code == 78, result.output
    assert "NoSuchBucket" in result.output
