"""Card sync benchmark: tcgjobs' sync against a plain sqlite3 floor, measured in the same run.

    .venv/bin/python bench/bench_sync.py [--data ../shared/data/pokemon-tcg-data-2023] [--rounds 3]

Each measurement runs in a fresh subprocess (so caches and memory do not carry over) and reports
its wall time for the work alone (imports excluded) and the process's peak RSS
(``resource.getrusage``):

* floor — a plain script: read and parse every card file, map the same columns with the same
  encodings (tcgjobs' own mapping function), ``executemany`` the rows into an empty database
  (same schema) in one transaction; run twice, with Python's cyclic garbage collector on (a
  plain script) and off (as the sync job runs), and both ratios are reported;
* full — ``sync-missing-sets`` then ``sync-missing-cards`` through the runner on an empty
  database (the time is the card job's);
* repeat — ``sync-missing-cards`` again with nothing changed.

Targets (issue 3): full ≤ 1.5 × floor, repeat ≤ 0.5 × full, full peak RSS < 150 MB. Times are the
median of ``--rounds`` rounds; ratios the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from deployed import deployed_env

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pokemon-tcg-data-2023"

FLOOR = r'''
import gc, json, resource, sqlite3, sys, time
from pathlib import Path
if sys.argv[3] == "gc-off":
    gc.disable()
from tcgjobs.db.cards import open_card_database
from tcgjobs.sources.rows import CARD_COLUMNS, card_row, for_insert
data, db_path = Path(sys.argv[1]), Path(sys.argv[2])
open_card_database(db_path, create=True).close()          # same schema, created before timing
set_ids = [s["id"] for s in json.loads((data / "sets" / "en.json").read_bytes())]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, cpu_started = time.perf_counter(), cpu()
connection = sqlite3.connect(db_path, isolation_level=None)
connection.execute("PRAGMA journal_mode = wal")
connection.execute("PRAGMA foreign_keys = ON")
connection.execute("BEGIN")
connection.executemany("INSERT INTO pokemon_card_sets (id, name, series) VALUES (?, ?, ?)",
                       [(s, s, s) for s in set_ids])
sql = f"INSERT OR REPLACE INTO pokemon_cards ({', '.join(CARD_COLUMNS)}) VALUES ({', '.join('?' * len(CARD_COLUMNS))})"
for set_id in set_ids:
    cards = json.loads((data / "cards" / "en" / f"{set_id}.json").read_bytes())
    connection.executemany(sql, [for_insert(card_row(card, set_id)) for card in cards])
connection.execute("COMMIT")
elapsed, cpu_elapsed = time.perf_counter() - started, cpu() - cpu_started
rows = connection.execute("SELECT count(*) FROM pokemon_cards").fetchone()[0]
print(json.dumps({"seconds": elapsed, "cpu": cpu_elapsed, "rows": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

SYNC = r'''
import json, os, resource, sys, time
from tcgjobs.config import load_settings
from tcgjobs.registry import get_job
from tcgjobs.runner import RunRequest, run_job
settings = load_settings(os.environ)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
timings, cpu_times = {}, {}
for name in sys.argv[1:]:
    started, cpu_started = time.perf_counter(), cpu()
    outcome = run_job(RunRequest(job=get_job(name), settings=settings, ignore_deps=True))
    timings[name], cpu_times[name] = time.perf_counter() - started, cpu() - cpu_started
    assert int(outcome.exit_code) == 0, (name, outcome.error)
    last = outcome
print(json.dumps({"seconds": timings["sync-missing-cards"], "cpu": cpu_times["sync-missing-cards"],
                  "metrics": last.metrics,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _run(code: str, *args: str, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, check=False, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def one_round(data: Path) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="tcgjobs-bench-") as tmp:
        env = {**deployed_env(os.environ), "TCGJOBS_LOG_LEVEL": "error", "TCGJOBS_LOG_FORMAT": "json",
               "TCGJOBS_DATA_SOURCE": str(data),
               "DATABASE_PATH": str(Path(tmp) / "sync" / "pokemon-data.sqlite3.db")}
        floor = _run(FLOOR, str(data), str(Path(tmp) / "floor.sqlite3"), "gc-on", env=env)
        floor_gc_off = _run(FLOOR, str(data), str(Path(tmp) / "floor-gc-off.sqlite3"), "gc-off", env=env)
        full = _run(SYNC, "sync-missing-sets", "sync-missing-cards", env=env)
        repeat = _run(SYNC, "sync-missing-cards", env=env)
    return {"floor": floor, "floor_gc_off": floor_gc_off, "full": full, "repeat": repeat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round(args.data) for _ in range(args.rounds)]

    def median(step: str, key: str = "seconds") -> float:
        return statistics.median(r[step][key] for r in rounds)

    def ratio(step: str, base: str, key: str = "seconds") -> float:
        # per-round ratios, then the median: steadier than a ratio of medians when the machine's
        # load drifts between rounds
        return statistics.median(r[step][key] / r[base][key] for r in rounds)

    peak = max(r["full"]["peak_rss_mb"] for r in rounds)
    metrics = rounds[-1]["full"]["metrics"]
    print(f"data: {args.data} ({rounds[-1]['floor']['rows']} rows by the floor; full sync added "
          f"{metrics['cards_added']} cards), {args.rounds} rounds; median times, median per-round ratios")
    print(f"floor (plain sqlite3 executemany): {median('floor'):.3f} s")
    print(f"floor with the cyclic GC off:      {median('floor_gc_off'):.3f} s  (the sync job turns it off too)")
    print(f"full sync:                         {median('full'):.3f} s  = {ratio('full', 'floor'):.2f} x floor, "
          f"{ratio('full', 'floor_gc_off'):.2f} x floor with GC off   (target <= 1.5)")
    print(f"repeat sync (nothing changed):     {median('repeat'):.3f} s  = {ratio('repeat', 'full'):.2f} x full"
          "    (target <= 0.5)")
    print(f"CPU time (user+sys): floor {median('floor', 'cpu'):.3f} s, full {median('full', 'cpu'):.3f} s "
          f"= {ratio('full', 'floor', 'cpu'):.2f} x floor, repeat {median('repeat', 'cpu'):.3f} s "
          f"= {ratio('repeat', 'full', 'cpu'):.2f} x full")
    print(f"peak RSS of the full sync process: {peak:.1f} MB   (target < 150; floor process "
          f"{max(r['floor']['peak_rss_mb'] for r in rounds):.1f} MB)")


if __name__ == "__main__":
    main()
