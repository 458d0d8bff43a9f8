"""Benchmark: whole-process wall time of short ``tcgjobs`` invocations (interpreter and import
start-up, settings, and for ``run`` the runner and ledger), which every cron invocation pays, and
of two shell-completion requests (what a Tab costs).

Usage:
    .venv/bin/python bench/bench_startup.py [--rounds 11] [--against DIR]

``--against DIR`` also times the ``tcgjobs`` package in the source tree DIR (for example an export
of another commit: ``git archive COMMIT tcgjobs | tar -x -C DIR``) with the same interpreter,
interleaved with this checkout's runs so that both see the same machine load. Every run uses a
fresh temporary environment without PostgreSQL, so ``run replicate-to-primary`` stops early (75
without ``--ignore-deps``, 78 with it), like an unconfigured cron run. Both trees are byte-compiled
first, as an installed package is: otherwise a stale or missing ``__pycache__`` (for example with
PYTHONDONTWRITEBYTECODE set) would time the compiler.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deployed import deployed_env

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    ("--version",),
    ("run", "replicate-to-primary", "--dry-run"),
    ("run", "replicate-to-primary", "--dry-run", "--ignore-deps"),
    ("run", "backup-database", "--dry-run", "--json"),
    ("status", "--json"),
    ("list",),
    ("<Tab>", "run", "sync-"),
    ("<Tab>", "backup", "restore", ""),
)
#: A command starting with <Tab> is a bash completion request for the words after it, as the
#: script of `tcgjobs --show-completion bash` sends it (how long a Tab takes to answer).
TAB = "<Tab>"


def _request(command: tuple[str, ...], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one timed invocation. A completion request runs the
    CLI under the console script's name, which names its variable (_TCGJOBS_COMPLETE)."""
    if command[0] != TAB:
        return ["-m", "tcgjobs", *command], env
    words = ["tcgjobs", *command[1:]]
    return (["-c", "import sys; from tcgjobs.cli import main; sys.argv[0] = 'tcgjobs'; main()"],
            {**env, "_TCGJOBS_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(words),
             "COMP_CWORD": str(len(words) - 1)})


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(tree: Path, command: tuple[str, ...], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and exit code of ``python -m tcgjobs COMMAND`` importing tcgjobs
    from ``tree``."""
    args, env = _request(command, env)
    cpu, started = _cpu_of_children(), time.perf_counter()
    result = subprocess.run([sys.executable, *args], env={**env, "PYTHONPATH": str(tree)},
                            cwd=env["TCGJOBS_TMPDIR"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, _cpu_of_children() - cpu, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--against", type=Path, help="another source tree holding a tcgjobs package")
    args = parser.parse_args()
    trees = {"this checkout": ROOT} | ({str(args.against): args.against.resolve()} if args.against else {})
    work = Path(tempfile.mkdtemp(prefix="tcgjobs-bench-startup-"))
    env = {k: v for k, v in deployed_env(os.environ, trees.values()).items()
           if not k.startswith(("TCGJOBS_", "POSTGRES_", "SLACK_", "NOTIFICATION", "DATABASE_", "BACKUP_"))}
    env.update(DATABASE_PATH=str(work / "pokemon-data.sqlite3.db"), BACKUP_DIR=str(work / "backups"),
               TCGJOBS_STATE_PATH=str(work / "state.sqlite3"), TCGJOBS_TMPDIR=str(work))
    walls: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    cpus: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    codes: dict[tuple[str, tuple[str, ...]], int] = {}
    try:
        for _ in range(args.rounds + 1):  # the first round only warms the caches
            for command in COMMANDS:
                for name, tree in trees.items():
                    wall, cpu, codes[name, command] = timed(tree, command, env)
                    walls.setdefault((name, command), []).append(wall)
                    cpus.setdefault((name, command), []).append(cpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"python {sys.version.split()[0]}, cpus: {os.cpu_count()}, {args.rounds} rounds, medians "
          "of wall and CPU (user+sys) seconds")
    print(f"{'command':48} " + " ".join(f"{name[-30:]:>30}" for name in trees))
    for command in COMMANDS:
        cells = [f"{statistics.median(walls[name, command][1:]):.3f} wall "
                 f"{statistics.median(cpus[name, command][1:]):.3f} cpu (exit {codes[name, command]})"
                 for name in trees]
        print(f"{' '.join(command):48} " + " ".join(f"{cell:>30}" for cell in cells))


if __name__ == "__main__":
    main()
