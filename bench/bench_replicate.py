"""Replication benchmark: replicate-to-primary against pgloader, measured side by side.

    .venv/bin/python bench/bench_replicate.py [--data ../shared/data/pokemon-tcg-data-2023] [--rounds 3]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth; ``--admin`` to change) and ``pgloader`` on PATH.
The card database is built once with ``sync-missing-sets`` + ``sync-missing-cards`` from the
snapshot. Every measurement runs in a fresh process; reported are the process's wall time (start
to exit, interpreter or SBCL start-up included), for tcgjobs also the job's own duration from the
run ledger (imports excluded), and the peak RSS (``os.wait4``). Per round:

* full — ``tcgjobs run replicate-to-primary`` into a new, empty database (schema created,
  every row sent, verified);
* pgloader — ``pgloader sqlite://<file> postgresql://.../<new empty database>`` (its default:
  creates the tables and indexes, COPYs every row; no mapping and no verification);
* unchanged — replicate-to-primary again with nothing changed;
* 1% changed — after changing the name of every 100th card (161 cards) in SQLite.

Each of these runs twice per round: unconstrained, and with the client process confined to one
CPU (``taskset -c 0``, as in the rendered CronJob's pod with ``cpu: '1'``; PostgreSQL itself is
not confined, as it runs elsewhere there).

Before each measured process the script runs CHECKPOINT and waits a second, so work PostgreSQL
left over from the previous step (a new database, a load) does not land in the measurement.

Targets (issues 5 and 14): full ≤ pgloader in both modes; 1% and unchanged ≤ 0.3 × full; peak
RSS < 150 MB.
The median and the fastest of ``--rounds`` rounds are reported, as Markdown tables (on a
shared machine the fastest round is the one least disturbed by other work).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2
from deployed import deployed_env

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pokemon-tcg-data-2023"


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of one process, measured with os.wait4."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n"
                         f"{out.decode()}\n{err.decode()}")
    return wall, usage.ru_maxrss / 1024, out.decode()


class Primary:
    def __init__(self, admin: str) -> None:
        self.admin = psycopg2.connect(admin)
        self.admin.autocommit = True
        self.created: list[str] = []

    def new(self, label: str) -> str:
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        with self.admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql://postgres@127.0.0.1:5432/{name}"

    def settle(self) -> None:
        """Before each measurement: write out what earlier steps left in PostgreSQL's buffers
        (new databases, loads), so no checkpoint lands in the measured process, then let the
        machine go idle for a moment."""
        with self.admin.cursor() as cursor:
            cursor.execute("CHECKPOINT")
        time.sleep(1.0)

    def drop_all(self) -> None:
        with self.admin.cursor() as cursor:
            for name in self.created:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()


#: The client process confined to one CPU, unconfined.
MODES = {"1 CPU": ["taskset", "-c", "0"], "all CPUs": []}


def _replicate(env: dict[str, str], url: str, primary: Primary,
               prefix: list[str]) -> tuple[float, float, float, dict]:
    primary.settle()
    wall, rss, out = _run([*prefix, sys.executable, "-m", "tcgjobs", "run", "replicate-to-primary",
                           "--json", "--ignore-deps"], {**env, "TCGJOBS_POSTGRES_URL": url})
    run = json.loads(out)["run"]
    assert run["metrics"]["verified"] == 1, run
    return wall, run["duration_s"], rss, run["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--admin", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parser.parse_args()
    for tool in ("pgloader", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH (Debian: apt-get install pgloader util-linux)")
    work = Path(tempfile.mkdtemp(prefix="bench-replicate-"))
    base = {k: v for k, v in deployed_env(os.environ).items()
            if not k.startswith(("TCGJOBS_", "POSTGRES_"))}
    env = {**base, "DATABASE_PATH": str(work / "cards.sqlite3"), "TCGJOBS_STATE_PATH":
           str(work / "state.sqlite3"), "TCGJOBS_DATA_SOURCE": str(args.data),
           "TCGJOBS_TMPDIR": str(work), "TCGJOBS_LOG_LEVEL": "warning", "TCGJOBS_LOG_FORMAT": "json"}
    for job in ("sync-missing-sets", "sync-missing-cards"):
        _run([sys.executable, "-m", "tcgjobs", "run", job], env)
    primary = Primary(args.admin)
    results: dict[str, dict[str, list[float]]] = {}
    changed = 0

    try:
        for round_number in range(args.rounds):
            for mode, prefix in MODES.items():
                def record(key: str, value: float, mode: str = mode) -> None:
                    results.setdefault(mode, {}).setdefault(key, []).append(value)

                changed = _round(work, round_number, mode, prefix, env, base, primary, record)
    finally:
        primary.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(f"rounds: {args.rounds}; data: {args.data}; changed cards in the 1% run: {changed}\n")
    for mode, measured in results.items():
        for label, pick in (("median", statistics.median), ("fastest (min)", min)):
            _table(f"{mode}, {label}", {key: pick(values) for key, values in measured.items()})


def _round(work: Path, number: int, mode: str, prefix: list[str], env: dict[str, str],
           base: dict[str, str], primary: Primary, record: Callable[[str, float], None]) -> int:
    """One round in one mode; the number of cards changed for the 1% run."""
    source = work / f"round{number}-{mode.replace(' ', '')}.sqlite3"
    shutil.copy(work / "cards.sqlite3", source)
    round_env = {**env, "DATABASE_PATH": str(source)}
    url = primary.new("full")
    wall, job_s, rss, metrics = _replicate(round_env, url, primary, prefix)
    assert metrics["cards_inserted"] > 0
    record("full wall", wall), record("full job", job_s), record("full rss", rss)
    pg_url = primary.new("pgloader")
    primary.settle()
    wall, rss, _ = _run([*prefix, "pgloader", "--quiet", f"sqlite://{source}", pg_url], base)
    record("pgloader wall", wall), record("pgloader rss", rss)
    wall, job_s, rss, metrics = _replicate(round_env, url, primary, prefix)
    assert metrics["cards_updated"] == metrics["cards_inserted"] == 0
    record("unchanged wall", wall), record("unchanged job", job_s), record("unchanged rss", rss)
    with sqlite3.connect(source) as connection:
        changed = connection.execute("UPDATE pokemon_cards SET name = name || ' (bench)' "
                                     "WHERE rowid % 100 = 0").rowcount
    connection.close()
    wall, job_s, rss, metrics = _replicate(round_env, url, primary, prefix)
    assert metrics["cards_updated"] == changed, metrics
    record("1% wall", wall), record("1% job", job_s), record("1% rss", rss)
    return changed


def _table(label: str, value: dict[str, float]) -> None:
    print(f"{label} of the rounds:\n")
    print("| measurement | process wall s | job s (ledger) | peak RSS MB | ratio |")
    print("|---|---|---|---|---|")
    print(f"| pgloader into an empty database | {value['pgloader wall']:.2f} | – | "
          f"{value['pgloader rss']:.0f} | baseline |")
    print(f"| full replication into an empty database | {value['full wall']:.2f} | "
          f"{value['full job']:.2f} | {value['full rss']:.0f} | "
          f"{value['full wall'] / value['pgloader wall']:.2f} × pgloader (wall) |")
    for key, name in (("1%", "1% of the cards changed"), ("unchanged", "nothing changed")):
        print(f"| {name} | {value[key + ' wall']:.2f} | {value[key + ' job']:.2f} | "
              f"{value[key + ' rss']:.0f} | {value[key + ' job'] / value['full job']:.2f} × full "
              f"(job), {value[key + ' wall'] / value['full wall']:.2f} × full (wall) |")
    print()


if __name__ == "__main__":
    main()
