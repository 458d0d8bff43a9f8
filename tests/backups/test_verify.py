"""Verifying a backup: sound, flipped, truncated, recorded, and unverifiable without room."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tcgjobs.backups.catalog import list_backups, read_checksum_file
from tcgjobs.backups.names import checksum_path
from tcgjobs.backups.verify import Unverifiable, hash_file, record_verification, verify_file
from tests.support.backups import flip_byte, live_counts, make_backup, make_original_backup

WHEN = datetime(2026, 11, 28, 11, 30, 10, 217000, tzinfo=UTC)


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
