"""upload-backups when the store misbehaves, through the fault proxy in front of moto: every
network failure exits 69 with nothing partial and the next run finishes; refusals exit 78
naming the fix; a store that hangs never keeps a run past its deadline."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.conftest import invoke, make_settings, run_tcgjobs
from tests.offsite.conftest import objects
from tests.support.s3 import Rule


def upload(cli, *extra: str):
    return invoke(cli, "run", "upload-backups", "--ignore-deps", "--json", *extra)


def assert_nothing_partial(s3, bucket, backups) -> None:
    """Every object under a backup's name holds exactly that backup's bytes, and a proof exists
    only beside such an object."""
    found = objects(s3, bucket)
    by_name = {path.name: path for path in backups}
    for key in found:
        name = key.split("/", 1)[1]
        if name in by_name:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert hashlib.sha256(body).digest() == hashlib.sha256(by_name[name].read_bytes()).digest(), key
        if name.endswith(".verified.json"):
            assert f"backups/{name.removesuffix('.verified.json')}" in found
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def assert_next_run_finishes(cli, proxy, s3, bucket, backups) -> None:
    proxy.clear()
    result = upload(cli)
    assert result.exit_code == 0, result.output
    names = {key.split("/", 1)[1] for key in objects(s3, bucket)}
    assert {path.name + ".verified.json" for path in backups} <= names
    assert_nothing_partial(s3, bucket, backups)


@pytest.mark.parametrize("status, code", [(503, "SlowDown"), (500, "InternalError")])
def test_a_store_failing_every_put_exits_69_and_the_next_run_finishes(cli, proxy, s3, bucket, backups,
                                                                     status, code):
    proxy.add(Rule("error", method="PUT", status=status, code=code))
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert code in json.loads(result.stdout)["run"]["error"]
    assert_nothing_partial(s3, bucket, backups)
    assert not any(key.endswith(".verified.json") for key in objects(s3, bucket))
    assert_next_run_finishes(cli, proxy, s3, bucket, backups)


def test_one_slowdown_is_retried_within_the_run(cli, proxy, s3, bucket, backups):
    rule = proxy.add(Rule("error", method="PUT", status=503, code="SlowDown", times=1))
    result = upload(cli)
    assert result.exit_code == 0, result.output
    assert rule.hits == 1
    assert_nothing_partial(s3, bucket, backups)


def test_a_connection_reset_mid_upload_leaves_nothing_partial(cli, proxy, s3, bucket, backups):
    proxy.add(Rule("reset", method="PUT", path=backups[0].name, after_bytes=2000))
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert_nothing_partial(s3, bucket, backups)
    assert f"backups/{backups[0].name}" not in objects(s3, bucket)
    assert_next_run_finishes(cli, proxy, s3, bucket, backups)


def test_a_reset_during_a_multipart_upload_aborts_it(cli, proxy, s3, bucket, env):
    from tests.support.offsite import big_backup

    path = big_backup(make_settings(), megabytes=12)
    proxy.add(Rule("reset", method="PUT", path="partNumber=2", after_bytes=100_000))
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert_nothing_partial(s3, bucket, [path])
    assert f"backups/{path.name}" not in objects(s3, bucket)
    assert_next_run_finishes(cli, proxy, s3, bucket, [path])


def test_bytes_corrupted_on_the_wire_never_count_as_a_copy(cli, proxy, s3, bucket, backups):
    proxy.add(Rule("corrupt", method="PUT", path=backups[1].name, times=1))
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert "arrived damaged" in json.loads(result.stdout)["run"]["error"]
    found = objects(s3, bucket)
    assert f"backups/{backups[1].name}" not in found
    assert f"backups/{backups[1].name}.verified.json" not in found
    assert_nothing_partial(s3, bucket, backups)
    assert_next_run_finishes(cli, proxy, s3, bucket, backups)


def test_a_corrupted_part_aborts_the_multipart_upload(cli, proxy, s3, bucket, env):
    from tests.support.offsite import big_backup

    path = big_backup(make_settings(), megabytes=12)
    proxy.add(Rule("corrupt", method="PUT", path="partNumber=3", times=1))
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert "part 3" in json.loads(result.stdout)["run"]["error"]
    assert_nothing_partial(s3, bucket, [path])
    assert_next_run_finishes(cli, proxy, s3, bucket, [path])


def test_a_store_that_stops_answering_fails_with_69_after_its_read_timeout(cli, proxy, s3, bucket,
                                                                          backups, env):
    env["TCGJOBS_OFFSITE_READ_TIMEOUT"] = "1"
    proxy.add(Rule("hang", method="PUT", path=backups[0].name))
    started = time.monotonic()
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert time.monotonic() - started < 20
    assert_nothing_partial(s3, bucket, backups)


def test_a_slow_store_never_keeps_the_run_past_its_deadline(proxy, s3, bucket, env):
    from tests.support.offsite import big_backup

    path = big_backup(make_settings(), megabytes=12)
    env["TCGJOBS_OFFSITE_READ_TIMEOUT"] = "60"
    proxy.add(Rule("hang", method="PUT", path="partNumber=2"))
    started = time.monotonic()
    result = run_tcgjobs("run", "upload-backups", "--ignore-deps", "--timeout", "3", "--json")
    elapsed = time.monotonic() - started
    assert result.returncode == 124, result.stdout + result.stderr
    assert elapsed < 3 + 8, elapsed  # start-up, the deadline, the abort's grace at most
    assert_nothing_partial(s3, bucket, [path])


def test_the_deadline_is_kept_while_a_single_put_hangs(proxy, s3, bucket, backups, env):
    env["TCGJOBS_OFFSITE_READ_TIMEOUT"] = "60"
    proxy.add(Rule("hang", method="PUT"))
    started = time.monotonic()
    result = run_tcgjobs("run", "upload-backups", "--ignore-deps", "--timeout", "2")
    assert result.returncode == 124, result.stdout + result.stderr
    assert time.monotonic() - started < 2 + 6
    assert_nothing_partial(s3, bucket, backups)


def test_an_unknown_bucket_exits_78_saying_so(cli, bucket, env, backups):
    env["TCGJOBS_OFFSITE_URL"] = "s3://no-such-bucket-tcgjobs/backups"
    result = upload(cli)
    assert result.exit_code == 78, result.output
    error = json.loads(result.stdout)["run"]["error"]
    assert "NoSuchBucket" in error and "does not exist" in error and "TCGJOBS_OFFSITE_URL" in error


def test_access_denied_exits_78_naming_the_permissions(cli, proxy, bucket, backups):
    proxy.add(Rule("error", method="GET", status=403, code="AccessDenied"))
    result = upload(cli)
    assert result.exit_code == 78, result.output
    error = json.loads(result.stdout)["run"]["error"]
    assert "AccessDenied" in error and "s3:ListBucket" in error


@pytest.mark.parametrize("code, fix", [("InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
                                       ("SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY")])
def test_a_refused_key_or_signature_exits_78_naming_the_setting(cli, proxy, bucket, backups, code, fix):
    proxy.add(Rule("error", status=403, code=code))
    result = upload(cli)
    assert result.exit_code == 78, result.output
    assert fix in json.loads(result.stdout)["run"]["error"]


def test_an_unreachable_store_exits_69(cli, bucket, env, backups):
    from tests.support.s3 import free_port

    # A refused connection; an unknown host name ends in the same EndpointConnectionError, but
    # resolving one would send a query off this machine.
    env["TCGJOBS_OFFSITE_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    result = upload(cli)
    assert result.exit_code == 69, result.output
    assert "cannot reach the off-site store" in json.loads(result.stdout)["run"]["error"]


def test_a_malformed_url_exits_78_before_anything_runs(cli, env):
    env["TCGJOBS_OFFSITE_URL"] = "https://bucket.example/prefix"
    result = invoke(cli, "run", "upload-backups")
    assert result.exit_code == 78, result.output
    assert "TCGJOBS_OFFSITE_URL" in result.output
