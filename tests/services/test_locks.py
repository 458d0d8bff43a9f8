"""Cross-process locks: one name per resource, taken by the runner and the backup commands alike;
a refused run always names the lock's holder, however many runs try at once (real processes
racing for one lock in a tight loop)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tcgjobs.errors import LockHeld
from tcgjobs.registry import Resource
from tcgjobs.services.locks import hold, resource_lock

# Spelled out, not derived: lock files are shared by every process on a state database, older
# versions included while an upgrade rolls out, so a renamed lock would let two writers in at once.
LOCK_NAMES = {
    Resource.CARD_DB: "resource-card-database",
    Resource.BACKUP_DIR: "resource-backup-directory",
    Resource.PRIMARY: "resource-primary-postgres",
    Resource.OFFSITE: "resource-offsite-store",
}


def test_every_resource_has_its_own_lock_and_the_names_never_change():
    assert {resource: resource_lock(resource) for resource in Resource} == LOCK_NAMES


# Each process tries ATTEMPTS times to take the lock, releasing it almost at once when it gets it
# (the moments around taking and releasing are where the holder's record used to be missing),
# and prints the message of every refusal as one JSON list. All start together: each says it is
# ready once imported and waits for the word on stdin, so a slow start cannot keep them apart.
CONTENDER = """
import json, os, sys, time
from pathlib import Path
from tcgjobs.errors import LockHeld
from tcgjobs.services.locks import hold

lock_dir, attempts = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
refusals = []
for attempt in range(attempts):
    try:
        with hold(lock_dir, ["job-race"], {"job": "race", "run_id": f"{os.getpid()}-{attempt}",
                                           "since": "2026-12-01T00:00:00"}):
            time.sleep(0.0002)
    except LockHeld as exc:
        refusals.append(str(exc))
print(json.dumps(refusals))
"""

PROCESSES = 8
ATTEMPTS = 600


def test_every_refusal_among_many_concurrent_attempts_names_the_holder(tmp_path):
    contenders = [subprocess.Popen([sys.executable, "-c", CONTENDER, str(tmp_path / "locks"),
                                    str(ATTEMPTS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)
                  for _ in range(PROCESSES)]
    for process in contenders:
        assert process.stdout.readline() == "ready\n"
    for process in contenders:
        process.stdin.write("go\n")
        process.stdin.close()
    refusals = [message for process in contenders for message in json.loads(process.stdout.read())]
    assert [process.wait(timeout=300) for process in contenders] == [0] * PROCESSES
    assert len(refusals) >= 300, f"only {len(refusals)} refusals: the processes hardly overlapped"
    anonymous = [message for message in refusals if "race run " not in message]
    assert len(anonymous) == 0, f"{len(anonymous)} of {len(refusals)} refusals name no holder, " \
        f"e.g. {anonymous[0]!r}"
    assert all("(pid " in message for message in refusals)


def test_a_refusal_names_the_holder_and_the_lock_is_free_after_release(tmp_path):
    lock_dir = tmp_path / "locks"
    with hold(lock_dir, ["job-a", "resource-b"], {"job": "a", "run_id": "0123456789", "since": "now"}), \
            pytest.raises(LockHeld, match=r"lock 'resource-b' is held by a run 01234567 \(pid \d+"), \
            hold(lock_dir, ["resource-b"], {"job": "b", "run_id": "x", "since": "now"}):
        pass
    with hold(lock_dir, ["job-a", "resource-b"], {"job": "b", "run_id": "y", "since": "now"}), \
            pytest.raises(LockHeld, match=r"lock 'job-a' is held by b run y \(pid"), \
            hold(lock_dir, ["job-a"], {"job": "c", "run_id": "z", "since": "now"}):
        pass
