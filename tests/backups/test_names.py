"""Backup names: the original's scheme, what is not a backup name, safety snapshot names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tcgjobs.backups.names import (
    backup_name,
    is_backup_name,
    is_restorable_name,
    is_safety_snapshot_name,
    parse_name,
    safety_snapshot_name,
)

WHEN = datetime(2026, 11, 28, 11, 30, 10, 217000, tzinfo=UTC)


def test_backup_names_follow_the_originals_scheme():
    assert backup_name(WHEN) == "pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz"
    assert backup_name(WHEN, "zstd") == "pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.zst"
    assert parse_name("pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz") == (WHEN, "gzip")
    assert parse_name("pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db") == (WHEN, "none")


@pytest.mark.parametrize("name", [
    "pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz.sha256",
    "pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz.manifest.json",
    "pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db-wal",
    ".tcgjobs-tmp-backup-123-abcdef.gz",
    "pokemon-data.sqlite3.db",
    "notes.txt",
])
def test_sidecars_temporary_files_and_others_are_not_backup_names(name):
    assert parse_name(name) is None


def test_safety_snapshot_names_are_parsed_only_when_asked_for():
    name = safety_snapshot_name(WHEN)
    assert name == "pre-restore-pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz"
    assert parse_name(name) is None and not is_backup_name(name)
    assert parse_name(name, safety=True) == (WHEN, "gzip")
    assert is_safety_snapshot_name(name) and is_restorable_name(name)
    assert not is_safety_snapshot_name(backup_name(WHEN))
