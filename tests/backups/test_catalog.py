"""Backup files: names, listing, sidecars, status and verification."""

from __future__ import annotations

import gzip
import os
import subprocess
from datetime import UTC, datetime

import pytest

from tcgjobs.backups.catalog import (
    backup_name,
    checksum_path,
    hash_file,
    is_backup_name,
    is_restorable_name,
    is_safety_snapshot_name,
    list_backups,
    list_safety_snapshots,
    newest_verified,
    parse_name,
    read_checksum_file,
    read_manifest,
    safety_snapshot_name,
    temp_leftovers,
    write_manifest,
)
from tcgjobs.backups.compression import CHUNK
from tcgjobs.backups.verify import Unverifiable, record_verification, verify_file
from tests.support.backups import fill_card_db, flip_byte, live_counts, make_backup, make_original_backup

WHEN = datetime(2026, 11, 28, 11, 30, 10, 217000, tzinfo=UTC)


@pytest.fixture
def filled(settings):
    fill_card_db(settings.database_path)
    return settings


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


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_verify_file_accepts_a_sound_backup_and_returns_its_row_counts(filled, compression):
    path = make_backup(filled, WHEN, compression)
    result = verify_file(path, filled.temp_dir)
    assert result.ok, result.reason
    assert result.row_counts == live_counts(filled.database_path)
    assert result.row_counts["pokemon_cards"] == 15
    assert result.sha256 == read_checksum_file(checksum_path(path))
    assert list(filled.temp_dir.iterdir()) == []


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_one_flipped_byte_makes_verification_fail(filled, compression):
    path = make_backup(filled, WHEN, compression)
    flip_byte(path)
    result = verify_file(path, filled.temp_dir)
    assert not result.ok
    assert "checksum mismatch" in result.reason or "decompress" in result.reason
    assert list(filled.temp_dir.iterdir()) == []


def test_a_truncated_original_backup_without_sidecar_is_corrupt(filled):
    path = make_original_backup(filled, WHEN)
    path.write_bytes(path.read_bytes()[:200])
    result = verify_file(path, filled.temp_dir)
    assert not result.ok
    assert "decompress" in result.reason


def test_a_verified_backup_whose_size_changed_lists_as_corrupt_without_reading_it(filled):
    path = make_backup(filled, WHEN)
    with open(path, "ab") as handle:
        handle.write(b"\0")
    [item] = list_backups(filled.backup_dir)
    assert item.status == "corrupt"
    assert "size" in item.reason


def test_recording_a_failed_verification_makes_the_backup_list_as_corrupt(filled):
    path = make_backup(filled, WHEN)
    flip_byte(path)
    record_verification(path, verify_file(path, filled.temp_dir))
    [item] = list_backups(filled.backup_dir)
    assert item.status == "corrupt"
    assert "checksum mismatch" in item.reason


def test_verifying_an_original_backup_records_a_manifest_and_checksum_sidecar(filled):
    path = make_original_backup(filled, WHEN)
    record_verification(path, verify_file(path, filled.temp_dir))
    [item] = list_backups(filled.backup_dir)
    assert item.status == "verified"
    assert item.checksum == hash_file(path)
    assert item.manifest["row_counts"] == live_counts(filled.database_path)


def test_verification_without_room_for_the_copy_is_unverifiable_not_corrupt(filled, tmp_path):
    path = make_backup(filled, WHEN)
    with pytest.raises(Unverifiable):
        (tmp_path / "a-file").write_text("x")
        verify_file(path, tmp_path / "a-file" / "tmp")


def test_temp_leftovers_are_found_only_for_our_purposes_and_dead_processes(tmp_path):
    dead = tmp_path / ".tcgjobs-tmp-backup-snapshot-999999999-abc.sqlite3.db"
    alive = tmp_path / f".tcgjobs-tmp-backup-verify-{os.getpid()}-abc.sqlite3.db"
    foreign = tmp_path / ".tcgjobs-tmp-vacuum-999999999-abc"
    for path in (dead, alive, foreign):
        path.write_bytes(b"x")
    assert temp_leftovers(tmp_path, only_dead=True) == [dead]
    assert temp_leftovers(tmp_path, only_dead=False) == sorted([dead, alive])


@pytest.mark.parametrize(("compression", "tool"), [("gzip", ["gzip", "-dc"]), ("zstd", ["zstd", "-dcq"])])
def test_backups_decompress_with_the_standard_tools_to_the_snapshot(filled, compression, tool, tmp_path):
    import shutil

    if shutil.which(tool[0]) is None:
        pytest.skip(f"{tool[0]} is not installed")
    fill_card_db(filled.database_path, sets=700, cards_per_set=20, start=10)  # several 1 MiB blocks
    path = make_backup(filled, WHEN, compression)
    plain = tmp_path / "plain.db"
    with open(plain, "wb") as out:
        subprocess.run([*tool, str(path)], stdout=out, check=True)
    kept = verify_file(path, filled.temp_dir, keep_copy=True).restored_copy
    assert plain.read_bytes() == kept.read_bytes()
    assert plain.stat().st_size > 2 * CHUNK
    kept.unlink()


def test_free_space_needs_on_one_filesystem_add_up(tmp_path):
    import shutil

    from tcgjobs.backups.create import DiskFull, check_free_space

    share = int(shutil.disk_usage(tmp_path).free * 0.6)
    check_free_space([(tmp_path, share)], reserve_bytes=0)
    with pytest.raises(DiskFull, match=f"not enough disk space in {tmp_path}"):
        check_free_space([(tmp_path, share), (tmp_path / "..", share)], reserve_bytes=0)


def test_safety_snapshot_names_are_parsed_only_when_asked_for():
    name = safety_snapshot_name(WHEN)
    assert name == "pre-restore-pokemon-data-2026-11-28T11-30-10-217Z.sqlite3.db.gz"
    assert parse_name(name) is None and not is_backup_name(name)
    assert parse_name(name, safety=True) == (WHEN, "gzip")
    assert is_safety_snapshot_name(name) and is_restorable_name(name)
    assert not is_safety_snapshot_name(backup_name(WHEN))


def test_a_backup_named_file_whose_manifest_says_safety_snapshot_is_listed_as_one(filled):
    """Safety snapshots written before they had their own prefix still never count as backups."""
    path = make_backup(filled, WHEN)
    manifest = read_manifest(path)
    manifest.pop("format")
    write_manifest(path, {**manifest, "origin": "safety snapshot before a restore over /x.db"})
    assert list_backups(filled.backup_dir) == []
    assert [item.path for item in list_safety_snapshots(filled.backup_dir)] == [path]
