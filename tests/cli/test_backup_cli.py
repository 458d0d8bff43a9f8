"""``tcgjobs backup list | verify | restore``: output, recorded results, exit codes, locks and the
state they leave behind. What a restore does to the files and to readers is tested in
tests/backups/test_restore.py."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tcgjobs.backups.catalog import describe, list_backups, list_safety_snapshots
from tcgjobs.cli.backup import LIST_EXIT_CODES, RESTORE_EXIT_CODES, VERIFY_EXIT_CODES
from tcgjobs.registry import JobResult, Resource, get_job
from tcgjobs.runner import RunOutcome, RunRequest, run_job
from tcgjobs.services.locks import hold, lock_dir_for, resource_lock
from tests.conftest import invoke
from tests.support.backups import fill_card_db, flip_byte, live_counts, make_backup, make_original_backup, rows

WHEN = datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC)


@pytest.fixture
def filled(settings):
    fill_card_db(settings.database_path)
    return settings


# --- list ------------------------------------------------------------------------------------

def test_list_json_shows_status_size_compression_and_retention_reasons(cli, filled):
    ours = make_backup(filled, WHEN)
    original = make_original_backup(filled, WHEN - timedelta(days=1))
    result = invoke(cli, "backup", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["backups"]
    assert [item["name"] for item in listed] == [ours.name, original.name]
    assert listed[0]["status"] == "verified" and listed[0]["compression"] == "gzip"
    assert listed[0]["size_bytes"] == ours.stat().st_size
    assert listed[0]["retention"] == "keep: daily 2026-11-27, weekly 2026-W48, monthly 2026-11"
    assert listed[1]["status"] == "unverified" and listed[1]["verified_at"] is None
    assert listed[1]["retention"] == "keep: daily 2026-11-26"


def test_list_shows_a_table_and_says_so_when_there_are_no_backups(cli, filled):
    assert "no backups in" in invoke(cli, "backup", "list").stdout
    path = make_backup(filled, WHEN, "zstd")
    result = invoke(cli, "backup", "list")
    assert result.exit_code == 0, result.output
    header, line = result.stdout.splitlines()
    assert header.split() == ["name", "created", "size", "compression", "status", "retention"]
    assert line.split()[:4] == [path.name, "2026-11-27", "00:00:05", "UTC"]
    assert line.split()[6:9] == ["zstd", "verified", "keep:"]


# --- verify ----------------------------------------------------------------------------------

def test_verify_all_passes_sound_backups_and_records_the_originals(cli, filled):
    make_backup(filled, WHEN)
    original = make_original_backup(filled, WHEN - timedelta(days=1))
    result = invoke(cli, "backup", "verify", "--all", "--json")
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == ["verified", "verified"]
    assert describe(original).status == "verified"


def test_verify_exits_3_for_a_flipped_byte_and_list_then_shows_it_corrupt(cli, filled):
    path = make_backup(filled, WHEN)
    flip_byte(path)
    result = invoke(cli, "backup", "verify", path.name)
    assert result.exit_code == 3, result.output
    assert "corrupt" in result.stdout and "checksum mismatch" in result.stdout
    listed = json.loads(invoke(cli, "backup", "list", "--json").stdout)["backups"]
    assert listed[0]["status"] == "corrupt"


def test_verify_without_arguments_checks_the_newest_backup(cli, filled):
    older = make_backup(filled, WHEN - timedelta(days=1))
    newest = make_backup(filled, WHEN)
    flip_byte(older)
    result = invoke(cli, "backup", "verify", "--json")
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)["results"]] == [newest.name]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["no-such-backup.sqlite3.db.gz"], 2, "no backup"),
    (["--all", "x"], 2, "not both"),
    ([], 1, "no backups in"),
])
def test_verify_usage_errors_and_missing_backups_have_their_exit_codes(cli, filled, args, code, message):
    result = invoke(cli, "backup", "verify", *args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_verify_of_a_file_that_is_not_a_backup_is_a_usage_error(cli, filled, tmp_path):
    other = tmp_path / "something.db.gz"
    other.write_bytes(b"x")
    result = invoke(cli, "backup", "verify", str(other))
    assert result.exit_code == 2, result.output
    assert "is not a backup" in result.output


def test_verify_that_cannot_check_exits_1(cli, filled, env, tmp_path):
    make_backup(filled, WHEN)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env["TCGJOBS_TMPDIR"] = str(blocker / "tmp")
    result = invoke(cli, "backup", "verify")
    assert result.exit_code == 1, result.output
    assert "unverifiable" in result.stdout


def test_verify_waits_for_no_one_and_exits_75_while_a_job_holds_the_backup_directory(cli, filled):
    make_backup(filled, WHEN)
    with hold(lock_dir_for(filled.state_path), [resource_lock(Resource.BACKUP_DIR)], {"job": "rotate-backups"}):
        result = invoke(cli, "backup", "verify")
    assert result.exit_code == 75, result.output
    assert "rotate-backups" in result.output


def run_during(job_name: str, settings, work: Callable[[], None]) -> RunOutcome:
    """Run the real job ``job_name`` through the runner with ``work`` in place of what it does: the
    runner takes exactly the locks it takes for that job while ``work`` runs."""
    def body(ctx):
        work()
        return JobResult()

    job = dataclasses.replace(get_job(job_name), run=body)
    return run_job(RunRequest(job=job, settings=settings, ignore_deps=True))


def test_backup_commands_are_refused_while_the_runner_runs_a_job_writing_what_they_write(cli, filled):
    """The runner and the backup commands name their locks from one declaration (Resource), so a
    command never touches what a running job writes."""
    path = make_backup(filled, WHEN)
    before = filled.database_path.read_bytes()
    seen = {}
    rotation = run_during("rotate-backups", filled, lambda: seen.update(
        verify=invoke(cli, "backup", "verify"), restore=invoke(cli, "backup", "restore", path.name, "--force")))
    sync = run_during("sync-missing-cards", filled, lambda: seen.update(
        restore_live=invoke(cli, "backup", "restore", path.name, "--force")))
    assert rotation.exit_code == 0 and sync.exit_code == 0
    for command, holder in (("verify", rotation), ("restore", rotation), ("restore_live", sync)):
        assert seen[command].exit_code == 75, seen[command].output
        assert f"{holder.job} run {holder.run_id[:8]}" in seen[command].output
    assert filled.database_path.read_bytes() == before
    assert list_safety_snapshots(filled.backup_dir) == []
    assert invoke(cli, "backup", "verify").exit_code == 0, "the locks are free again"


# --- restore ---------------------------------------------------------------------------------

def test_restore_refuses_to_overwrite_an_existing_database_without_force_and_exits_1(cli, filled):
    path = make_backup(filled, WHEN)
    before = filled.database_path.read_bytes()
    result = invoke(cli, "backup", "restore", path.name)
    assert result.exit_code == 1, result.output
    assert "refusing to overwrite it without --force" in result.output
    assert filled.database_path.read_bytes() == before


def test_restore_prints_each_table_and_its_rows_as_people_read_them(cli, filled, tmp_path):
    path = make_backup(filled, WHEN)
    counts = live_counts(filled.database_path)
    result = invoke(cli, "backup", "restore", path.name, "--to", str(tmp_path / "drill.sqlite3.db"))
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("rows: "))
    assert line == "rows: " + ", ".join(f"{table} {count:,}" for table, count in counts.items())
    assert "{" not in result.stdout and "'" not in line


@pytest.mark.parametrize(("target", "code", "message"), [
    ("no-such-backup", 2, "no backup 'no-such-backup'"),
    ("directory", 2, "is a directory"),
])
def test_restore_usage_errors_exit_2_and_change_nothing(cli, filled, tmp_path, target, code, message):
    path = make_backup(filled, WHEN)
    args = ["no-such-backup"] if target == "no-such-backup" else [path.name, "--to", str(tmp_path), "--force"]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(cli, "backup", "restore", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_restore_of_a_backup_that_cannot_be_verified_exits_1_and_changes_nothing(cli, filled, env, tmp_path):
    path = make_backup(filled, WHEN)
    target = tmp_path / "existing.db"
    target.write_bytes(b"keep me")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env["TCGJOBS_TMPDIR"] = str(blocker / "tmp")
    result = invoke(cli, "backup", "restore", path.name, "--to", str(target), "--force")
    assert result.exit_code == 1, result.output
    assert "could not be verified" in result.output
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize("command", [["list"], ["verify"], ["restore", "x"]])
def test_backup_commands_exit_78_for_an_invalid_configuration(cli, filled, env, command):
    env["TCGJOBS_BUSY_TIMEOUT_MS"] = "soon"
    result = invoke(cli, "backup", *command)
    assert result.exit_code == 78, result.output
    assert "TCGJOBS_BUSY_TIMEOUT_MS" in result.output


EXIT_CODE_TABLES = {"list": LIST_EXIT_CODES, "verify": VERIFY_EXIT_CODES, "restore": RESTORE_EXIT_CODES}


@pytest.mark.parametrize("command", sorted(EXIT_CODE_TABLES))
def test_help_and_docs_list_every_exit_code_of_each_backup_command(cli, command):
    codes = EXIT_CODE_TABLES[command]
    result = invoke(cli, "backup", command, "--help")
    assert result.exit_code == 0, result.output
    help_text = " ".join(result.output.split())
    for code, meaning in codes.items():
        assert f"{int(code)} {meaning}" in help_text
    docs = (Path(__file__).parents[2] / "docs" / "backups.md").read_text(encoding="utf-8")
    [row] = [line for line in docs.splitlines() if line.startswith(f"| `tcgjobs backup {command}")]
    documented = {int(code) for code in re.findall(r"(?:^|·)\s*(\d+)\b", row.rsplit("|", 2)[1])}
    assert documented == {int(code) for code in codes}


def test_restore_over_the_live_database_exits_75_while_a_job_holds_it(cli, filled):
    path = make_backup(filled, WHEN)
    with hold(lock_dir_for(filled.state_path), [resource_lock(Resource.CARD_DB)], {"job": "sync-missing-cards"}):
        result = invoke(cli, "backup", "restore", path.name, "--force")
    assert result.exit_code == 75, result.output
    assert "sync-missing-cards" in result.output
    assert len(list_backups(filled.backup_dir)) == 1
    assert list_safety_snapshots(filled.backup_dir) == []  # no safety snapshot either


def test_restore_to_a_missing_live_database_still_takes_the_card_database_lock(cli, settings, tmp_path):
    source_db = tmp_path / "elsewhere.db"
    fill_card_db(source_db)
    settings.backup_dir.mkdir(parents=True)
    conn = sqlite3.connect(source_db)
    from tcgjobs.backups.create import create_backup

    path = create_backup(conn, source_db, settings.backup_dir, settings.temp_dir, now=WHEN).path
    conn.close()
    with hold(lock_dir_for(settings.state_path), [resource_lock(Resource.CARD_DB)], {"job": "sync-missing-sets"}):
        result = invoke(cli, "backup", "restore", path.name)
    assert result.exit_code == 75, result.output
    assert not settings.database_path.exists()
    result = invoke(cli, "backup", "restore", path.name)
    assert result.exit_code == 0, result.output
    assert len(rows(settings.database_path, "pokemon_cards")) == 15
