"""``tcgjobs backup list | verify | restore --remote`` against moto: the off-site copies listed,
proven in full, and restored through the local restore path, also on a node with no backups."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3

import pytest

from tests.conftest import invoke, make_settings
from tests.offsite.conftest import objects


@pytest.fixture
def uploaded(cli, bucket, backups):
    result = invoke(cli, "run", "upload-backups", "--ignore-deps")
    assert result.exit_code == 0, result.output
    return backups


def counts(path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                for table in ("pokemon_card_sets", "pokemon_cards")}
    finally:
        conn.close()


def test_list_remote_shows_every_copy_proven_with_its_retention(cli, uploaded):
    result = invoke(cli, "backup", "list", "--remote", "--json")
    assert result.exit_code == 0, result.output
    copies = json.loads(result.stdout)["copies"]
    assert [copy["name"] for copy in copies] == [path.name for path in uploaded]
    assert {copy["status"] for copy in copies} == {"verified"}
    assert all(copy["retention"].startswith("keep: ") for copy in copies)
    text = invoke(cli, "backup", "list", "--remote")
    assert all(path.name in text.stdout for path in uploaded)


def test_list_remote_without_a_url_exits_78_with_a_json_error(cli, env):
    result = invoke(cli, "backup", "list", "--remote", "--json")
    assert result.exit_code == 78, result.output
    error = json.loads(result.stdout)
    assert error["exit_code"] == 78 and "TCGJOBS_OFFSITE_URL is not set" in error["error"]


def test_verify_remote_all_proves_every_copy_in_full_and_records_it_in_the_bucket(cli, s3, bucket, uploaded):
    result = invoke(cli, "backup", "verify", "--remote", "--all", "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert [r["status"] for r in results] == ["verified"] * 3
    assert all(r["row_counts"]["pokemon_cards"] == 15 for r in results)
    for path in uploaded:
        proof = json.loads(s3.get_object(Bucket=bucket, Key=f"backups/{path.name}.verified.json")["Body"].read())
        assert proof["method"].startswith("full:") and proof["status"] == "verified"


def test_verify_remote_finds_bit_rot_exits_3_and_records_it(cli, s3, bucket, uploaded):
    key = f"backups/{uploaded[1].name}"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))  # the store's copy rots
    result = invoke(cli, "backup", "verify", "--remote", uploaded[1].name, "--json")
    assert result.exit_code == 3, result.output
    assert "checksum mismatch" in json.loads(result.stdout)["results"][0]["reason"]
    listed = json.loads(invoke(cli, "backup", "list", "--remote", "--json").stdout)["copies"]
    assert {copy["name"]: copy["status"] for copy in listed}[uploaded[1].name] == "corrupt"


def test_verify_remote_of_an_unknown_name_exits_2(cli, uploaded):
    result = invoke(cli, "backup", "verify", "--remote", "pokemon-data-2001-01-01T00-00-00-000Z.sqlite3.db.gz")
    assert result.exit_code == 2, result.output


def test_restore_remote_on_a_node_that_lost_every_backup(cli, env, uploaded, tmp_path):
    settings = make_settings()
    shutil.rmtree(settings.backup_dir)  # the disaster: the node and its backups are gone
    settings.database_path.unlink()
    target = tmp_path / "restored" / "pokemon-data.sqlite3.db"
    result = invoke(cli, "backup", "restore", "--remote", uploaded[0].name, "--to", str(target), "--json")
    assert result.exit_code == 0, result.output
    assert counts(target) == {"pokemon_card_sets": 3, "pokemon_cards": 15}
    assert json.loads(result.stdout)["restore"]["row_counts"]["pokemon_cards"] == 15
    assert not any((tmp_path / "tmp").iterdir())  # the download was removed


def test_restore_accepts_a_full_s3_url_without_remote_and_over_the_live_database(cli, bucket, uploaded):
    settings = make_settings()
    result = invoke(cli, "backup", "restore", f"s3://{bucket}/backups/{uploaded[2].name}", "--force")
    assert result.exit_code == 0, result.output
    assert "safety snapshot of the previous database" in result.stdout
    assert counts(settings.database_path)["pokemon_cards"] == 15
    assert f"restored {uploaded[2].name} to" in result.stdout


def test_restore_remote_of_a_corrupt_copy_exits_3_and_changes_nothing(cli, s3, bucket, uploaded, tmp_path):
    key = f"backups/{uploaded[0].name}"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[100] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    target = tmp_path / "restored.db"
    result = invoke(cli, "backup", "restore", "--remote", uploaded[0].name, "--to", str(target))
    assert result.exit_code == 3, result.output
    assert not target.exists()


def test_restore_remote_with_a_full_disk_exits_1_and_changes_nothing(cli, env, uploaded, tiny_filesystem):
    settings = make_settings()
    before = settings.database_path.read_bytes()
    env["TCGJOBS_TMPDIR"] = str(tiny_filesystem(64 * 1024))
    result = invoke(cli, "backup", "restore", "--remote", uploaded[0].name, "--force")
    assert result.exit_code == 1, result.output
    assert "not enough disk space" in result.output
    assert settings.database_path.read_bytes() == before
    assert list((settings.backup_dir).glob("pre-restore-*")) == []


def test_restore_remote_when_the_disk_fills_anyway_exits_1_and_leaves_nothing(cli, s3, bucket, env,
                                                                              tiny_filesystem):
    from tests.support.offsite import big_backup

    settings = make_settings()
    path = big_backup(settings, megabytes=6)
    assert invoke(cli, "run", "upload-backups", "--ignore-deps").exit_code == 0
    key = f"backups/{path.name}.manifest.json"  # a manifest that understates the size: the
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())  # check passes
    manifest.update(uncompressed_bytes=1000, snapshot_bytes=1000)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    before = settings.database_path.read_bytes()
    small = tiny_filesystem(8 * 1024 * 1024)  # the 6 MiB download fits, its decompression not
    env["TCGJOBS_TMPDIR"] = str(small)
    result = invoke(cli, "backup", "restore", "--remote", path.name, "--force")
    assert result.exit_code == 1, result.output
    assert settings.database_path.read_bytes() == before
    assert list(small.iterdir()) == []


def test_restore_remote_from_an_unreachable_store_exits_69(cli, env, uploaded, tmp_path):
    from tests.support.s3 import free_port

    env["TCGJOBS_OFFSITE_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    result = invoke(cli, "backup", "restore", "--remote", uploaded[0].name, "--to", str(tmp_path / "x.db"))
    assert result.exit_code == 69, result.output


def test_objects_are_untouched_by_list_and_restore(cli, s3, bucket, uploaded, tmp_path):
    before = objects(s3, bucket)
    invoke(cli, "backup", "list", "--remote")
    invoke(cli, "backup", "restore", "--remote", uploaded[0].name, "--to", str(tmp_path / "r.db"))
    assert objects(s3, bucket) == before


@pytest.mark.parametrize("columns", [80, 120])
def test_list_remote_on_a_terminal_never_cuts_a_name(uploaded, env, columns):
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    done = subprocess.run([sys.executable, "-m", "tcgjobs", "backup", "list", "--remote"],
                          stdout=follower, stderr=subprocess.DEVNULL, env={**os.environ, "COLUMNS": str(columns)},
                          timeout=60)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode())  # colours and styles
    assert done.returncode == 0, text
    assert all(len(line) <= columns for line in text.splitlines())
    assert all(path.name in text for path in uploaded)
    assert ("created (UTC)" in text) is (columns == 120)
