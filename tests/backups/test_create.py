"""Taking a backup: the free-space check before anything is written."""

from __future__ import annotations

import shutil

import pytest

from tcgjobs.backups.create import DiskFull, check_free_space


def test_free_space_needs_on_one_filesystem_add_up(tmp_path):
    share = int(shutil.disk_usage(tmp_path).free * 0.6)
    check_free_space([(tmp_path, share)], reserve_bytes=0)
    with pytest.raises(DiskFull, match=f"not enough disk space in {tmp_path}"):
        check_free_space([(tmp_path, share), (tmp_path / "..", share)], reserve_bytes=0)
