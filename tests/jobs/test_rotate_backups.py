"""rotate-backups on real files: the policy applied with reasons, corrupt and unverifiable backups,
the original's backups and leftovers, and the safety rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tcgjobs.backups.catalog import list_backups
from tcgjobs.backups.names import backup_name, checksum_path, manifest_path
from tests.conftest import invoke
from tests.support.backups import fill_card_db, flip_byte, make_backup, make_original_backup, names

START = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)


@pytest.fixture
def filled(settings):
    fill_card_db(settings.database_path)
    return settings


def daily_backups(settings, days: int) -> list:
    """One real backup a day at 03:00 from START on, oldest first."""
    return [make_backup(settings, START + timedelta(days=i)) for i in range(days)]


def rotate(cli, *args: str):
    result = invoke(cli, "run", "rotate-backups", "--ignore-deps", "--json", *args)
    return result, json.loads(result.stdout)["run"]


def remaining(settings) -> list[str]:
    return [item.name for item in list_backups(settings.backup_dir)]


def test_rotation_keeps_the_policy_set_and_deletes_the_rest_with_their_sidecars(cli, filled):
    paths = daily_backups(filled, 20)  # 2026-10-20 (Tue) .. 2026-11-08 (Sun)

    result, run = rotate(cli, "--daily", "3", "--weekly", "2", "--monthly", "2", "--minimum", "1")

    assert result.exit_code == 0, result.output
    kept_days = ["2026-11-08", "2026-11-07", "2026-11-06",  # daily
                 "2026-11-01",                               # weekly 2026-W44 (W45's newest is 11-08)
                 "2026-10-31"]                               # monthly 2026-10
    assert remaining(filled) == [backup_name(datetime.fromisoformat(d).replace(hour=3, tzinfo=UTC))
                                 for d in kept_days]
    assert run["metrics"]["deleted"] == 15 and run["metrics"]["kept"] == 5
    deleted = paths[0]
    assert not deleted.exists()
    assert not checksum_path(deleted).exists() and not manifest_path(deleted).exists()
    rows = {row["name"]: row for row in run["details"]["backups"]}
    assert rows[paths[-1].name]["reasons"] == ["daily 2026-11-08", "weekly 2026-W45", "monthly 2026-11"]
    assert rows[deleted.name] == {**rows[deleted.name], "action": "delete", "reasons": ["no rule keeps it"]}


def test_dry_run_shows_every_backup_with_keep_or_delete_and_reasons_and_deletes_nothing(cli, filled):
    daily_backups(filled, 10)
    before = list_backups(filled.backup_dir)
    before_files = names(filled.backup_dir)

    result, run = rotate(cli, "--dry-run", "--daily", "2", "--weekly", "1", "--monthly", "0",
                         "--minimum", "1")

    assert result.exit_code == 0, result.output
    assert names(filled.backup_dir) == before_files
    plan = run["details"]["backups"]
    assert [row["name"] for row in plan] == [item.name for item in before]
    assert [row["action"] for row in plan] == ["keep", "keep"] + ["delete"] * 8
    assert plan[0]["reasons"] == ["daily 2026-10-29", "weekly 2026-W44"]
    assert plan[1]["reasons"] == ["daily 2026-10-28"]
    assert run["metrics"]["would_delete"] == 8 and run["metrics"]["deleted"] == 0
    assert "would delete" in result.stderr and "daily 2026-10-29, weekly 2026-W44" in result.stderr


def test_a_flipped_byte_is_caught_not_counted_and_the_backup_deleted_with_a_warning(cli, filled):
    paths = daily_backups(filled, 4)
    flip_byte(paths[-1])  # the newest

    verify = invoke(cli, "backup", "verify", "--all")
    assert verify.exit_code == 3, verify.output
    listed = {item.name: item.status for item in list_backups(filled.backup_dir)}
    assert listed[paths[-1].name] == "corrupt"

    result, run = rotate(cli, "--daily", "2", "--weekly", "0", "--monthly", "0", "--minimum", "1")

    assert result.exit_code == 0, result.output
    assert remaining(filled) == [paths[2].name, paths[1].name]  # the two newest sound ones
    rows = {row["name"]: row for row in run["details"]["backups"]}
    assert rows[paths[-1].name]["action"] == "delete" and rows[paths[-1].name]["status"] == "corrupt"
    assert "corrupt" in rows[paths[-1].name]["reasons"]
    assert "WARNING" in result.stderr or '"level": "warning"' in result.stderr.lower()


def test_rotation_rehashes_verified_backups_so_damage_since_the_last_check_is_caught(cli, filled):
    paths = daily_backups(filled, 3)
    flip_byte(paths[1])
    assert {item.status for item in list_backups(filled.backup_dir)} == {"verified"}

    result, run = rotate(cli, "--daily", "5", "--weekly", "0", "--monthly", "0", "--minimum", "1")

    assert result.exit_code == 0, result.output
    assert run["metrics"]["corrupt"] == 1
    assert remaining(filled) == [paths[2].name, paths[0].name]


def test_the_originals_backups_are_verified_before_the_policy_and_their_leftovers_removed(cli, filled):
    sound = make_original_backup(filled, START)
    broken = make_original_backup(filled, START + timedelta(days=1))
    broken.write_bytes(broken.read_bytes()[:300])
    twin_of_sound = make_original_backup(filled, START, compressed=False)
    lone_copy = make_original_backup(filled, START + timedelta(days=2), compressed=False)
    (filled.backup_dir / ".tcgjobs-tmp-backup-999999999-abc.gz").write_bytes(b"partial")
    orphan = filled.backup_dir / (backup_name(START - timedelta(days=9)) + ".sha256")
    orphan.write_text("0" * 64 + "  x\n")
    unrelated = filled.backup_dir / "notes.txt"
    unrelated.write_text("keep me")

    result, run = rotate(cli, "--daily", "7", "--weekly", "0", "--monthly", "0", "--minimum", "1")

    assert result.exit_code == 0, result.output
    assert remaining(filled) == [lone_copy.name, sound.name]
    assert {item.status for item in list_backups(filled.backup_dir)} == {"verified"}
    assert checksum_path(sound).exists() and manifest_path(sound).exists()
    assert not twin_of_sound.exists() and not broken.exists() and not orphan.exists()
    assert unrelated.read_text() == "keep me"
    assert not any(p.name.startswith(".tcgjobs-tmp-") for p in filled.backup_dir.iterdir())
    rows = {row["name"]: row for row in run["details"]["backups"]}
    assert rows[twin_of_sound.name]["reasons"] == ["leftover: uncompressed copy of a sound compressed backup"]
    assert rows[broken.name]["status"] == "corrupt"


def test_an_unverifiable_backup_is_kept_reported_and_not_counted(cli, filled, env, tmp_path):
    paths = daily_backups(filled, 3)
    original = make_original_backup(filled, START + timedelta(days=5))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env["TCGJOBS_TMPDIR"] = str(blocker / "tmp")

    result, run = rotate(cli, "--daily", "1", "--weekly", "0", "--monthly", "0", "--minimum", "1")

    assert result.exit_code == 3, result.output
    assert original.name in run["error"]
    # the unverifiable newest does not take the one daily slot
    assert remaining(filled) == [original.name, paths[2].name]
    rows = {row["name"]: row for row in run["details"]["backups"]}
    assert rows[original.name]["status"] == "unverifiable"
    assert rows[original.name]["reasons"][0] == "unverifiable: kept, not counted"


def test_a_corrupt_backup_is_not_deleted_when_it_is_the_only_backup(cli, filled):
    [only] = daily_backups(filled, 1)
    flip_byte(only)
    result, run = rotate(cli)
    assert result.exit_code == 0, result.output
    assert only.exists()
    assert run["details"]["backups"][0]["reasons"][0] == "corrupt, kept: no verified backup exists"


def test_an_empty_policy_is_refused_with_exit_78_and_nothing_touched(cli, filled):
    daily_backups(filled, 2)
    before = names(filled.backup_dir)
    result = invoke(cli, "run", "rotate-backups", "--ignore-deps", "--daily", "0", "--weekly", "0",
                    "--monthly", "0", "--yearly", "0")
    assert result.exit_code == 78, result.output
    assert "empty retention policy" in result.output
    assert names(filled.backup_dir) == before


def test_retention_settings_come_from_the_originals_variables(cli, filled, env):
    daily_backups(filled, 5)
    env["BACKUP_DAILY_RETENTION"] = "2"
    env["BACKUP_WEEKLY_RETENTION"] = "0"
    env["BACKUP_MONTHLY_RETENTION"] = "0"
    env["BACKUP_MINIMUM"] = "1"
    result, run = rotate(cli)
    assert result.exit_code == 0, result.output
    assert len(remaining(filled)) == 2
    assert run["details"]["policy"] == {"daily": 2, "weekly": 0, "monthly": 0, "yearly": 0, "minimum": 1}


def test_rotation_of_an_empty_or_missing_directory_succeeds(cli, settings):
    result, run = rotate(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["backups_total"] == 0


def test_a_deletion_that_fails_makes_the_run_fail_after_the_other_deletions(cli, filled):
    paths = daily_backups(filled, 4)
    stuck = paths[0]
    manifest_path(stuck).unlink()
    manifest_path(stuck).mkdir()  # unlink() of a directory fails, even for root
    (manifest_path(stuck) / "x").write_text("x")

    result, run = rotate(cli, "--daily", "1", "--weekly", "0", "--monthly", "0", "--minimum", "1")

    assert result.exit_code == 1, result.output
    assert stuck.name in run["error"] and "could not delete" in run["error"]
    assert not paths[1].exists() and not paths[2].exists() and paths[3].exists()
    assert run["metrics"]["deleted"] == 2


def test_dry_run_prints_the_plan_as_a_table_on_stdout(cli, filled):
    daily_backups(filled, 3)
    result = invoke(cli, "run", "rotate-backups", "--dry-run", "--ignore-deps", "--daily", "1",
                    "--weekly", "0", "--monthly", "0", "--minimum", "1")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines() if line.startswith("pokemon-data-")]
    assert len(rows) == 3
    assert [row[2] for row in rows] == ["keep", "would delete", "would delete"]
    assert rows[0][3].startswith("daily ") and rows[1][3] == "no rule keeps it"
