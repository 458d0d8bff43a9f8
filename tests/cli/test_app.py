"""The app is built with only the command a process runs: the static command map must match what
each module registers, a one-job run must not import the other commands and their services, and
only a job's own run imports its implementation."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import tcgjobs.cli
from tcgjobs.cli.app import COMMANDS, build_app, commands_needed
from tcgjobs.errors import ExitCode
from tests.conftest import run_tcgjobs

# Runs main() with the given arguments and writes the names of the imported modules to a file.
MODULES_AFTER_MAIN = """
import sys
from tcgjobs.cli import main

out, sys.argv = sys.argv[1], ["tcgjobs", *sys.argv[2:]]
try:
    main()
finally:
    with open(out, "w") as file:
        file.write("\\n".join(sorted(sys.modules)))
"""


def _registered(module_name: str) -> set[str]:
    probe = typer.Typer()
    importlib.import_module(f"tcgjobs.cli.{module_name}").register(probe)
    return {c.name for c in probe.registered_commands} | {g.name for g in probe.registered_groups}


def _modules_after(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    listing = tmp_path / "modules.txt"
    result = subprocess.run([sys.executable, "-c", MODULES_AFTER_MAIN, str(listing), *args],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, set(listing.read_text().split())


def test_command_map_names_exactly_what_each_module_registers():
    for module_name in set(COMMANDS.values()):
        assert _registered(module_name) == {name for name, module in COMMANDS.items()
                                            if module == module_name}


def test_every_command_module_is_in_the_command_map():
    modules = {info.name for info in pkgutil.iter_modules(tcgjobs.cli.__path__)}
    registering = {name for name in modules
                   if hasattr(importlib.import_module(f"tcgjobs.cli.{name}"), "register")}
    assert registering == set(COMMANDS.values())


@pytest.mark.parametrize(("args", "needed"), [
    (["run", "backup-database", "--dry-run"], ["run"]),
    (["history", "--help"], ["history"]),
    (["--version", "status"], ["status"]),
    (["--version"], []),
    (["--help"], None),
    (["--help", "run"], None),
    (["--version", "--help"], None),
    ([], None),
    (["--bogus"], None),
    (["vacuum-everything"], None),
])
def test_commands_needed_reads_the_command_word(args, needed):
    assert commands_needed(args) == needed


def test_the_whole_app_lists_every_command_in_the_map_order(cli):
    result = cli.invoke(build_app(), ["--help"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)


def test_top_level_help_of_the_process_lists_every_command():
    result = run_tcgjobs("--help")
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout


def test_a_job_run_imports_only_the_run_command_and_no_other_jobs_services(tmp_path, card_db_path):
    code, modules = _modules_after(tmp_path, "run", "replicate-to-primary", "--dry-run", "--json")
    assert code == ExitCode.SKIPPED  # sync-missing-cards has never succeeded
    assert "tcgjobs.cli.run" in modules
    unwanted = {f"tcgjobs.cli.{name}" for name in ("backup", "notify", "deploy", "status", "config_cmd")}
    unwanted |= {"tcgjobs.services.alerting", "tcgjobs.services.slack", "tcgjobs.backups.catalog",
                 "tcgjobs.backups.names", "tcgjobs.backups.verify", "tcgjobs.backups.create",
                 "tcgjobs.backups.tempfiles",
                 "tcgjobs.sources.layouts", "tcgjobs.sources.card_plan", "tcgjobs.health.checks",
                 "rich.console", "rich.progress", "rich.table",  # output is piped
                 "tcgjobs.cli.completion"}  # shell completion's value lists load on a Tab only
    assert modules & unwanted == set()


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["config"], ["status"], ["deploy", "crontab"],
                                  ["run", "--help"], ["run", "replicate-to-primary", "--dry-run"]])
def test_commands_that_run_no_job_import_no_job_implementation(tmp_path, card_db_path, args):
    code, modules = _modules_after(tmp_path, *args)
    assert code in (0, ExitCode.SKIPPED)
    assert "tcgjobs.registry" in modules
    assert {name for name in modules if name.startswith("tcgjobs.jobs.")} == set()


def test_a_job_run_imports_its_own_implementation_and_no_other(tmp_path, card_db_path):
    code, modules = _modules_after(tmp_path, "run", "cleanup-stale-data", "--dry-run", "--json")
    assert code == 0  # it ran: a run refused before the job would import nothing
    assert {name for name in modules if name.startswith("tcgjobs.jobs.")} == {"tcgjobs.jobs.cleanup_stale_data"}


def test_listing_commands_load_no_backup_or_settings_code_for_completion(tmp_path):
    _, modules = _modules_after(tmp_path, "status", "--json")
    assert "tcgjobs.cli.completion" in modules  # status's JOB argument completes job names...
    assert "tcgjobs.backups.names" not in modules  # ...and the backup names' code waits for a Tab


def test_version_imports_no_command(tmp_path):
    code, modules = _modules_after(tmp_path, "--version")
    assert code == 0
    assert not {f"tcgjobs.cli.{name}" for name in set(COMMANDS.values())} & modules


def test_run_help_lists_every_exit_code_with_its_meaning(cli):
    result = cli.invoke(build_app(["run"]), ["run", "--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Exit codes:\n")[1].splitlines()
    assert [line.split(None, 1) for line in listed] == [[str(int(code)), code.meaning] for code in ExitCode]
