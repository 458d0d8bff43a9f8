"""Compressed backups are standard gzip and zstd files."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from tcgjobs.backups.compression import CHUNK
from tcgjobs.backups.verify import verify_file
from tests.support.backups import fill_card_db, make_backup

WHEN = datetime(2026, 11, 28, 11, 30, 10, 217000, tzinfo=UTC)


@pytest.mark.parametrize(("compression", "tool"), [("gzip", ["gzip", "-dc"]), ("zstd", ["zstd", "-dcq"])])
def test_backups_decompress_with_the_standard_tools_to_the_snapshot(filled, compression, tool, tmp_path):
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
