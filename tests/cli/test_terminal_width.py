"""``status``, ``history`` and ``backup list`` on real 80- and 120-column terminals: nothing an
operator must read or copy (job names, statuses, backup names, errors) is cut; secondary columns
give way on a narrow terminal, and ``--wide`` shows them all."""

from __future__ import annotations

import json

import pytest

from tests.conftest import invoke
from tests.support.terminal import run_on_terminal

pytestmark = pytest.mark.slow

STATUS_HEADERS = ["job", "status", "last start", "duration", "next due", "attention", "last error"]
HISTORY_HEADERS = ["started", "job", "status", "exit", "duration", "trigger", "run", "error"]
LIST_HEADERS = ["name", "created", "size", "compression", "status", "retention"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Real runs, once for the module: syncs, two backups, a rotation, a failed and a skipped run."""
    import os

    from typer.testing import CliRunner

    directory = tmp_path_factory.mktemp("terminal")
    paths = {"DATABASE_PATH": str(directory / "db" / "pokemon-data.sqlite3.db"),
             "BACKUP_DIR": str(directory / "db" / "backups"), "TCGJOBS_TMPDIR": str(directory)}
    saved = dict(os.environ)
    os.environ.update(paths, TCGJOBS_LOG_FORMAT="json")
    cli = CliRunner()
    try:
        for args in (["run", "rotate-backups"], ["run", "sync-missing-sets"], ["run", "sync-missing-cards"],
                     ["run", "backup-database"],
                     ["run", "backup-database"], ["run", "rotate-backups"],
                     ["run", "cleanup-stale-data", "--timeout", "1"], ["run", "replicate-to-primary"]):
            invoke(cli, *args)
        runs = json.loads(invoke(cli, "history", "--json").stdout)["runs"]
        last = json.loads(invoke(cli, "status", "--json").stdout)["jobs"]
        backups = json.loads(invoke(cli, "backup", "list", "--json").stdout)["backups"]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"paths": paths, "jobs": {r["job"] for r in runs}, "statuses": {r["status"] for r in runs},
            "last": {j["last_status"] or "never" for j in last},
            "last_errors": [j["last_error"] for j in last if j["last_error"]],
            "backups": [b["name"] for b in backups], "errors": [r["error"] for r in runs if r["error"]]}


@pytest.fixture
def ledger(recorded, env):
    """The recorded state, in this test's environment (which the terminal's process inherits)."""
    for key, value in recorded["paths"].items():
        env[key] = value
    return recorded


def assert_fits(screen: str, columns: int) -> None:
    """No line is wider than the terminal unless one unbreakable word (a long path) is."""
    for line in screen.splitlines():
        if len(line) > columns:
            assert max(len(word) for word in line.split()) > columns - 2, f"{len(line)} > {columns}: {line!r}"
    assert "…" not in screen, "nothing is cut"


def words(screen: str) -> set[str]:
    return set(screen.split())


@pytest.mark.parametrize("columns", [80, 120])
def test_status_shows_every_job_status_and_error_whole(ledger, columns):
    code, screen = run_on_terminal("status", columns=columns)
    assert code == 0, screen
    assert_fits(screen, columns)
    assert ledger["jobs"] <= words(screen)
    assert {"succeeded", "failed"} <= ledger["last"] and ledger["last"] - {"never"} <= words(screen)
    assert ledger["last_errors"]
    for error in ledger["last_errors"]:  # wrapped between words, never cut
        assert set(error.split()) <= words(screen), error


@pytest.mark.parametrize("columns", [80, 120])
def test_history_shows_every_job_status_and_error_whole(ledger, columns):
    code, screen = run_on_terminal("history", columns=columns)
    assert code == 0, screen
    assert_fits(screen, columns)
    assert ledger["jobs"] <= words(screen) and ledger["statuses"] <= words(screen)
    assert "skipped" in ledger["statuses"]
    for error in ledger["errors"]:  # wrapped between words, never cut
        assert set(error.split()) <= words(screen), error


@pytest.mark.parametrize("columns", [80, 120])
def test_backup_list_shows_every_name_to_copy_whole(ledger, columns):
    code, screen = run_on_terminal("backup", "list", columns=columns)
    assert code == 0, screen
    assert_fits(screen, columns)
    assert len(ledger["backups"]) == 2 and set(ledger["backups"]) <= words(screen)
    assert "verified" in words(screen)


def test_secondary_columns_give_way_at_80_and_come_back_at_120(ledger):
    narrow = run_on_terminal("backup", "list", columns=80)[1]
    roomy = run_on_terminal("backup", "list", columns=120)[1]
    assert "retention" not in narrow.splitlines()[0] and "--wide shows all" in " ".join(narrow.split())
    assert all(header in roomy.splitlines()[0] for header in ("name", "size", "status", "retention"))


@pytest.mark.parametrize(("command", "headers"), [(("status",), STATUS_HEADERS),
                                                  (("history",), HISTORY_HEADERS),
                                                  (("backup", "list"), LIST_HEADERS)])
def test_wide_shows_every_column_even_at_80(ledger, command, headers):
    code, screen = run_on_terminal(*command, "--wide", columns=80)
    assert code == 0, screen
    header = screen.splitlines()[0]
    positions = [header.index(name) for name in headers]
    assert positions == sorted(positions), header
    assert "…" not in screen


def test_times_on_a_terminal_are_in_the_zone_the_table_names(ledger, monkeypatch):
    monkeypatch.setenv("TCGJOBS_TIMEZONE", "Asia/Tokyo")
    screen = run_on_terminal("list", columns=120)[1]
    assert "(times in Asia/Tokyo)" in screen
    row = next(line for line in screen.splitlines() if line.startswith("backup-database"))
    assert row.split()[-1] == "00:00", row  # 0 0 * * * in Tokyo is shown as 00:00, not 15:00
