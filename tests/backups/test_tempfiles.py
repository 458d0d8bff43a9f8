"""Temporary files: which leftovers are the backup code's to remove."""

from __future__ import annotations

import os

from tcgjobs.backups.tempfiles import temp_leftovers


def test_temp_leftovers_are_found_only_for_our_purposes_and_dead_processes(tmp_path):
    dead = tmp_path / ".tcgjobs-tmp-backup-snapshot-999999999-abc.sqlite3.db"
    alive = tmp_path / f".tcgjobs-tmp-backup-verify-{os.getpid()}-abc.sqlite3.db"
    foreign = tmp_path / ".tcgjobs-tmp-vacuum-999999999-abc"
    for path in (dead, alive, foreign):
        path.write_bytes(b"x")
    assert temp_leftovers(tmp_path, only_dead=True) == [dead]
    assert temp_leftovers(tmp_path, only_dead=False) == sorted([dead, alive])
