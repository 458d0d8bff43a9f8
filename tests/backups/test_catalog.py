"""The backups in a directory: listing, status from the sidecars, safety snapshots apart."""

from __future__ import annotations

import gzip
import os
import subprocess
from datetime import UTC, datetime

from tcgjobs.backups.catalog import (
    list_backups,
    list_safety_snapshots,
    newest_verified,
    read_manifest,
    write_manifest,
)
from tcgjobs.backups.names import checksum_path
from tcgjobs.backups.verify import record_verification, verify_file
from tests.support.backups import flip_byte, make_backup, make_original_backup

WHEN = datetime(2026, 11, 28, 11, 30, 10, 217000, tzinfo=UTC)


def test_list_recognises_the_originals_backups_as_unverified_and_never_lists_sidecars(filled, tmp_path):
    original = make_original_backup(filled, datetime(2026, 11, 20, tzinfo=UTC))
    leftover = make_original_backup(filled, datetime(2026, 11, 21, tzinfo=UTC), compressed=False)
    ours = make_backup(filled, WHEN)
    (filled.backup_dir / ".tcgjobs-tmp-backup-1-abc.gz").write_bytes(b"partial")
    (filled.backup_dir / "README").write_text("not a backup")

    listed = list_backups(filled.backup_dir)

    assert [item.name for item in listed] == [ours.name, leftover.name, original.name]
    assert [(item.compression, item.status) for item in listed] == [
        ("gzip", "verified"), ("none", "unverified"), ("gzip", "unverified")]
    assert listed[0].created_at == WHEN and listed[0].verified_at is not None
    assert listed[2].created_at == datetime(2026, 11, 20, tzinfo=UTC)
    assert listed[2].size_bytes == original.stat().st_size
    assert listed[2].verified_at is None


def test_newest_verified_skips_newer_corrupt_and_unverified_backups(filled):
    older = make_backup(filled, WHEN)
    newer = make_backup(filled, datetime(2026, 11, 29, tzinfo=UTC))
    make_original_backup(filled, datetime(2026, 11, 30, tzinfo=UTC))
    assert newest_verified(list_backups(filled.backup_dir)).path == newer
    flip_byte(newer)
    record_verification(newer, verify_file(newer, filled.temp_dir))
    assert newest_verified(list_backups(filled.backup_dir)).path == older
    assert newest_verified([]) is None


def test_a_name_with_an_unparsable_time_falls_back_to_the_files_mtime(settings):
    settings.backup_dir.mkdir(parents=True)
    odd = settings.backup_dir / "pokemon-data-manual.sqlite3.db.gz"
    odd.write_bytes(gzip.compress(b"x"))
    os.utime(odd, (1_700_000_000, 1_700_000_000))
    [item] = list_backups(settings.backup_dir)
    assert item.created_at == datetime.fromtimestamp(1_700_000_000, UTC)


def test_listing_a_missing_directory_finds_no_backups(tmp_path):
    assert list_backups(tmp_path / "nowhere") == []


def test_the_checksum_sidecar_is_accepted_by_sha256sum(filled):
    path = make_backup(filled, WHEN)
    check = subprocess.run(["sha256sum", "-c", checksum_path(path).name], cwd=path.parent,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{path.name}: OK" in check.stdout


def test_a_verified_backup_whose_size_changed_lists_as_corrupt_without_reading_it(filled):
    path = make_backup(filled, WHEN)
    with open(path, "ab") as handle:
        handle.write(b"\0")
    [item] = list_backups(filled.backup_dir)
    assert item.status == "corrupt"
    assert "size" in item.reason


def test_a_backup_named_file_whose_manifest_says_safety_snapshot_is_listed_as_one(filled):
    """Safety snapshots written before they had their own prefix still never count as backups."""
    path = make_backup(filled, WHEN)
    manifest = read_manifest(path)
    manifest.pop("format")
    write_manifest(path, {**manifest, "origin": "safety snapshot before a restore over /x.db"})
    assert list_backups(filled.backup_dir) == []
    assert [item.path for item in list_safety_snapshots(filled.backup_dir)] == [path]
