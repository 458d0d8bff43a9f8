"""kill -9 at random moments of upload-backups: never a copy that looks complete and is not,
and the next run finishes the work."""

from __future__ import annotations

import random
import signal
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import make_settings, popen_tcgjobs, run_tcgjobs

TRIALS = 20


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_a_partial_copy(s3, bucket, env):
    from tests.support.backups import make_backup
    from tests.support.offsite import big_backup

    settings = make_settings()
    backups = [big_backup(settings, megabytes=7)]
    backups += [make_backup(settings, when) for when in
                (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))]
    env["TCGJOBS_OFFSITE_URL"] = f"s3://{bucket}/timing"
    process = popen_tcgjobs("run", "upload-backups", "--ignore-deps")
    uploading = wait_for_upload(process)
    assert process.wait(timeout=120) == 0
    duration = time.monotonic() - uploading  # from the first upload to the end of the run
    chooser = random.Random(16)
    interrupted = 0  # trials whose kill left work unfinished (the test is not vacuous)
    for trial in range(TRIALS):
        env["TCGJOBS_OFFSITE_URL"] = f"s3://{bucket}/trial-{trial}"
        process = popen_tcgjobs("run", "upload-backups", "--ignore-deps")
        wait_for_upload(process)  # start-up takes longer under load; kill inside the work
        time.sleep(chooser.uniform(0, duration))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert_partial_free(s3, bucket, f"trial-{trial}/", backups)
        interrupted += unfinished(s3, bucket, f"trial-{trial}/", backups)
        rerun = run_tcgjobs("run", "upload-backups", "--ignore-deps")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"trial-{trial}/").get("Contents", [])
        names = {item["Key"].rsplit("/", 1)[1] for item in listed}
        assert {path.name + ".verified.json" for path in backups} <= names, trial
        assert s3.list_multipart_uploads(Bucket=bucket, Prefix=f"trial-{trial}/").get("Uploads", []) == []
        for item in listed:  # keep moto's memory small
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    assert interrupted >= TRIALS // 2, interrupted


def wait_for_upload(process) -> float:
    """Read the run's log (JSON lines on stderr) until the first upload starts; returns when."""
    for line in process.stderr:
        if '"message": "uploading ' in line:
            return time.monotonic()
    raise AssertionError(f"the run ended without uploading: {process.wait()}")


def unfinished(s3, bucket, prefix, backups) -> bool:
    """Something was started and not finished: an incomplete upload, or a copy without proof."""
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    names = {item["Key"].rsplit("/", 1)[1] for item in listed}
    proofs = sum(1 for path in backups if path.name + ".verified.json" in names)
    return bool(uploads) or (bool(names) and proofs < len(backups))


def assert_partial_free(s3, bucket, prefix, backups) -> None:
    """After a kill: every object under a backup's name is the whole backup."""
    import hashlib

    wanted = {path.name: hashlib.sha256(path.read_bytes()).digest() for path in backups}
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        name = item["Key"].rsplit("/", 1)[1]
        if name in wanted:
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            assert hashlib.sha256(body).digest() == wanted[name], item["Key"]
