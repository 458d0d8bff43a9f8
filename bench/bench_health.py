"""Benchmark: database-health-check on a card database synced from the 2023 snapshot.

Usage:
    .venv/bin/python bench/bench_health.py [--database PATH] [--runs 20]

Without ``--database`` the script syncs ../shared/data/pokemon-tcg-data-2023 into a temporary
database with ``tcgjobs run sync-missing-sets`` and ``sync-missing-cards`` (needs the sync jobs).
It copies the database into a temporary directory, takes one real backup, then reports medians:

* in-process: one whole ``run_job`` of database-health-check (ledger row, locks, every check,
  recording, alert evaluation) against the baseline of the raw SQLite work alone (open read-only,
  ``PRAGMA quick_check``, two counts) on the same file;
* as a process: ``python -m tcgjobs run database-health-check`` against ``python -m tcgjobs --version``
  (interpreter and import start-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deployed import deployed_env

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT.parent / "shared" / "data" / "pokemon-tcg-data-2023"


def tcgjobs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcgjobs", *args], env=env, capture_output=True, text=True)


def median_seconds(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def raw_sqlite(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.execute("PRAGMA quick_check(5)").fetchall()
    connection.execute("SELECT count(*) FROM pokemon_card_sets").fetchone()
    connection.execute("SELECT count(*) FROM pokemon_cards").fetchone()
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tcgjobs-bench-health-"))
    env = {k: v for k, v in deployed_env(os.environ).items()
           if not k.startswith(("TCGJOBS_", "SLACK_", "NOTIFICATION"))}
    env.update(DATABASE_PATH=str(work / "db" / "pokemon-data.sqlite3.db"), BACKUP_DIR=str(work / "backups"),
               TCGJOBS_TMPDIR=str(work), TCGJOBS_LOG_LEVEL="error", TCGJOBS_LOG_FORMAT="json")
    database = Path(env["DATABASE_PATH"])
    database.parent.mkdir(parents=True)
    try:
        if args.database:
            shutil.copyfile(args.database, database)
        else:
            env["TCGJOBS_DATA_SOURCE"] = str(SNAPSHOT)
            for job in ("sync-missing-sets", "sync-missing-cards"):
                result = tcgjobs("run", job, env=env)
                if result.returncode:
                    sys.exit(f"{job} failed ({result.returncode}): {result.stderr[-500:]}")
        backup = tcgjobs("run", "backup-database", env=env)
        if backup.returncode:
            sys.exit(f"backup-database failed: {backup.stderr[-500:]}")
        os.environ.update(env)
        from loguru import logger

        logger.remove()  # in-process runs would otherwise log every check to stderr
        from tcgjobs.config import load_settings
        from tcgjobs.registry import get_job
        from tcgjobs.runner import RunRequest, run_job

        settings = load_settings(os.environ)
        job = get_job("database-health-check")
        outcome = run_job(RunRequest(job=job, settings=settings))
        counts = sqlite3.connect(database).execute(
            "SELECT (SELECT count(*) FROM pokemon_card_sets), (SELECT count(*) FROM pokemon_cards)").fetchone()
        in_process = median_seconds(lambda: run_job(RunRequest(job=job, settings=settings)), args.runs)
        baseline = median_seconds(lambda: raw_sqlite(database), args.runs)
        process = median_seconds(lambda: tcgjobs("run", "database-health-check", env=env), max(5, args.runs // 4))
        start_up = median_seconds(lambda: tcgjobs("--version", env=env), max(5, args.runs // 4))
        print(f"database: {counts[0]} sets, {counts[1]} cards, {database.stat().st_size / 2**20:.1f} MiB; "
              f"first run exit {int(outcome.exit_code)} ({outcome.summary})")
        print(f"{'measure':55} {'median':>9} {'ratio':>7}")
        print(f"{'raw SQLite: open ro + quick_check + 2 counts (baseline)':55} {baseline * 1000:7.1f}ms {1:7.2f}")
        print(f"{'run_job(database-health-check), in process':55} {in_process * 1000:7.1f}ms "
              f"{in_process / baseline:7.2f}")
        print(f"{'python -m tcgjobs --version (baseline)':55} {start_up * 1000:7.1f}ms {1:7.2f}")
        print(f"{'python -m tcgjobs run database-health-check':55} {process * 1000:7.1f}ms "
              f"{process / start_up:7.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
