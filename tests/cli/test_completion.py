"""Shell completion for bash, zsh and fish: the scripts ``--show-completion`` prints are valid for
their shell, and a real shell completes commands, job names and backup file names with them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, invoke

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def need(shell: str) -> None:
    """Skip without ``shell``, except in CI, which installs it (.ci/run)."""
    if not shutil.which(shell):
        if IN_CI:
            pytest.fail(f"CI installs {shell} for these tests and it is not there")
        pytest.skip(f"{shell} is not installed")


def tcgjobs_env(env: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
            "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}  # --show-completion SHELL, not detection


def script(shell: str, env: dict[str, str]) -> str:
    result = subprocess.run([str(BIN / "tcgjobs"), "--show-completion", shell], env=tcgjobs_env(env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "_TCGJOBS_COMPLETE" in result.stdout
    return result.stdout


def with_backups(cli) -> list[str]:
    import json

    for job in ("sync-missing-sets", "sync-missing-cards", "backup-database"):
        assert invoke(cli, "run", job).exit_code == 0
    return [b["name"] for b in json.loads(invoke(cli, "backup", "list", "--json").stdout)["backups"]]


def bash_complete(line: str, env: dict[str, str]) -> list[str]:
    """What bash offers on Tab after ``line``, through the script tcgjobs prints."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    program = (f'eval "$(tcgjobs --show-completion bash)"\n'
               f"COMP_WORDS=({' '.join(repr(w) for w in words)})\nCOMP_CWORD={len(words) - 1}\n"
               f"_tcgjobs_completion tcgjobs\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    result = subprocess.run(["bash", "-c", program], env=tcgjobs_env(env), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_is_valid_for_its_shell(env, shell):
    need(shell)
    text = script(shell, env)
    check = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    result = subprocess.run([*check], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_bash_completes_commands_jobs_and_options(env):
    assert {"run", "status", "history", "backup"} <= set(bash_complete("tcgjobs ", env))
    assert bash_complete("tcgjobs run sync-", env) == ["sync-missing-sets", "sync-missing-cards"]
    assert "--ignore-deps" in bash_complete("tcgjobs run sync-missing-cards --", env)
    assert bash_complete("tcgjobs status valid", env) == ["validate-data-integrity"]
    assert bash_complete("tcgjobs history rot", env) == ["rotate-backups"]


def test_bash_completes_backup_file_names_for_verify_and_restore(cli, env):
    names = with_backups(cli)
    assert bash_complete("tcgjobs backup verify ", env) == names
    assert bash_complete("tcgjobs backup restore pokemon-", env) == names


def test_fish_completes_jobs_and_backup_names(cli, env):
    need("fish")
    names = with_backups(cli)

    def complete(line: str) -> list[str]:
        program = f"tcgjobs --show-completion fish | source; complete --do-complete '{line}'"
        result = subprocess.run(["fish", "--no-config", "-c", program], env=tcgjobs_env(env),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return [line.split("\t")[0] for line in result.stdout.splitlines() if line]

    assert complete("tcgjobs run sync-") == ["sync-missing-cards", "sync-missing-sets"]
    assert complete("tcgjobs backup restore ") == sorted(names)


def test_zsh_gets_jobs_and_backup_names_from_the_command_its_script_runs(cli, env):
    """zsh's completion widget needs a terminal; this runs, in zsh, what the script's function runs."""
    need("zsh")
    names = with_backups(cli)

    def complete(line: str) -> str:
        words = line.split() + ([""] if line.endswith(" ") else [])
        program = (f"words=({' '.join(repr(w) for w in words)}); CURRENT={len(words)}\n"
                   'env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _TCGJOBS_COMPLETE=complete_zsh tcgjobs\n')
        result = subprocess.run(["zsh", "-f", "-c", program], env=tcgjobs_env(env), capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    jobs = complete("tcgjobs run sync-")
    assert "sync-missing-sets" in jobs and "sync-missing-cards" in jobs and "backup-database" not in jobs
    backups = complete("tcgjobs backup verify ")
    assert all(name in backups for name in names)
