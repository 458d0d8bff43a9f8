"""With ``--json``, every failing command prints one JSON document on stdout carrying
``schema_version``, ``error`` and ``exit_code``, and exits with that code: a script always has
something to parse, whatever went wrong and wherever (settings, arguments, the work itself)."""

from __future__ import annotations

import json

import click
import pytest

from tcgjobs.cli.app import build_app
from tcgjobs.errors import ExitCode
from tests.conftest import invoke, run_tcgjobs

#: Every command that takes --json (``run`` stands for each job), with arguments that reach its work.
JSON_COMMANDS = {
    ("list",): (), ("status",): (), ("history",): (), ("config",): (), ("run", "cleanup-stale-data"): (),
    ("backup", "list"): (), ("backup", "verify"): (), ("backup", "restore"): ("some.sqlite3.db.gz",),
    ("notify", "test"): (), ("notify", "silence"): ("--until", "1h"), ("notify", "silences"): (),
}


def _commands_taking_json() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, path + (name,))
        elif any("--json" in p.opts for p in command.params):
            found.add(path)

    import typer.main

    walk(typer.main.get_command(build_app()), ())
    return {p if p[0] != "run" else ("run", "cleanup-stale-data") for p in found}


def assert_json_failure(result, code: int) -> dict:
    assert result.exit_code == code, result.output
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert document["exit_code"] == code
    assert isinstance(document["error"], str) and document["error"]
    return document


def test_the_cases_below_cover_every_command_that_takes_json():
    assert set(JSON_COMMANDS) == _commands_taking_json()


@pytest.mark.parametrize("command", list(JSON_COMMANDS), ids=" ".join)
def test_a_configuration_error_is_a_json_error_with_exit_78(cli, env, command):
    env["TCGJOBS_TIMEZONE"] = "Nowhere/Land"
    document = assert_json_failure(invoke(cli, *command, *JSON_COMMANDS[command], "--json"), ExitCode.CONFIG)
    assert "TCGJOBS_TIMEZONE" in document["error"]


@pytest.mark.parametrize(("args", "code", "says"), [
    (("run", "defrag-everything", "--json"), ExitCode.USAGE, "unknown job 'defrag-everything'"),
    (("status", "defrag-everything", "--json"), ExitCode.USAGE, "defrag-everything"),
    (("history", "defrag-everything", "--json"), ExitCode.USAGE, "defrag-everything"),
    (("backup", "verify", "no-such.sqlite3.db.gz", "--json"), ExitCode.USAGE, "no backup"),
    (("backup", "restore", "no-such.sqlite3.db.gz", "--json"), ExitCode.USAGE, "no backup"),
    (("backup", "verify", "--json"), ExitCode.FAILED, "no backups"),
    (("history", "--limit", "0", "--json"), ExitCode.USAGE, "--limit"),
    (("run", "backup-database", "--timeout", "0.5", "--json"), ExitCode.USAGE, "--timeout"),
    (("notify", "test", "--json"), ExitCode.CONFIG, "SLACK_WEBHOOK_URL"),
    (("notify", "silence", "--until", "yesterday", "--json"), ExitCode.USAGE, "--until"),
    (("frobnicate", "--json"), ExitCode.USAGE, "frobnicate"),
])
def test_usage_and_lookup_errors_are_json_errors_with_their_exit_codes(cli, args, code, says):
    document = assert_json_failure(invoke(cli, *args), code)
    assert says in document["error"]


@pytest.fixture
def unusable_source(env, tmp_path):
    """Card data whose sets file is not JSON: sync-missing-sets fails inside its run (exit 1)."""
    (tmp_path / "data" / "sets").mkdir(parents=True)
    (tmp_path / "data" / "cards" / "en").mkdir(parents=True)
    (tmp_path / "data" / "sets" / "en.json").write_text("{not json")
    env["TCGJOBS_DATA_SOURCE"] = str(tmp_path / "data")


def test_a_failed_run_adds_error_and_exit_code_to_its_result(cli, unusable_source):
    document = assert_json_failure(invoke(cli, "run", "sync-missing-sets", "--json"), ExitCode.FAILED)
    assert document["run"]["exit_code"] == ExitCode.FAILED and document["error"] == document["run"]["error"]


def test_a_failure_before_the_run_is_a_json_error_without_a_run(cli):
    document = assert_json_failure(invoke(cli, "run", "cleanup-stale-data", "--json"), ExitCode.CONFIG)
    assert "run" not in document and "does not exist" in document["error"]  # no card database


def test_a_failed_probe_adds_error_and_exit_code_to_the_status(cli, unusable_source):
    invoke(cli, "run", "sync-missing-sets")
    document = assert_json_failure(invoke(cli, "status", "--check", "--json"), ExitCode.PROBLEMS)
    assert "sync-missing-sets" in document["error"] and document["jobs"]


def test_a_failed_config_check_adds_error_and_exit_code(cli, env):
    env["TCGJOBS_DATA_SOURSE"] = "/nowhere"
    document = assert_json_failure(invoke(cli, "config", "--check", "--json"), ExitCode.CONFIG)
    assert "TCGJOBS_DATA_SOURSE" in document["error"] and document["checks"]


def test_success_documents_carry_no_error(cli):
    document = json.loads(invoke(cli, "list", "--json").stdout)
    assert "error" not in document and "exit_code" not in document


def test_the_process_prints_the_json_error_on_stdout_and_the_message_on_stderr():
    result = run_tcgjobs("run", "defrag-everything", "--json")
    assert result.returncode == ExitCode.USAGE
    assert json.loads(result.stdout)["exit_code"] == ExitCode.USAGE
    assert "error: unknown job 'defrag-everything'" in result.stderr


def test_without_json_errors_stay_on_stderr(cli):
    result = invoke(cli, "run", "defrag-everything")
    assert result.exit_code == ExitCode.USAGE and result.stdout == ""


def test_a_refused_restore_is_a_json_error_with_its_run(cli):
    for job in ("sync-missing-sets", "backup-database"):
        assert invoke(cli, "run", job).exit_code == 0
    name = json.loads(invoke(cli, "backup", "list", "--json").stdout)["backups"][0]["name"]
    document = assert_json_failure(invoke(cli, "backup", "restore", name, "--json"), ExitCode.FAILED)
    assert "--force" in document["error"]  # the live database exists
