"""Benchmark: backup-database (snapshot, checks, compression, sidecars and full verification)
against the same steps done by a shell pipeline, on a card database built from the shared
pokemon-tcg-data 2023 snapshot.

    .venv/bin/python bench/bench_backup.py [--data ../shared/data/pokemon-tcg-data-2023] [--runs 5]

The pipeline (issue 4): ``sqlite3 DB ".backup X"``, ``sqlite3 X "pragma integrity_check"``,
``gzip -6 -k X``, ``sha256sum X.gz``, ``gunzip -c X.gz > Y``, ``sqlite3 Y "pragma integrity_check"``.
Both sides run as separate processes (``tcgjobs run backup-database`` includes interpreter start-up
and the run ledger); medians of ``--runs`` runs are compared as ratios measured in the same run.
Peak memory is each child's maximum resident set size (GNU time ``%M``), the largest over the runs.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployed import deployed_env  # noqa: E402

from tcgjobs.db.card_schema import POKEMON_CARDS  # noqa: E402
from tcgjobs.db.cards import open_card_database  # noqa: E402
from tcgjobs.sources.rows import CARD_ROWS, SET_ROWS, card_row, for_insert, set_row  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pokemon-tcg-data-2023"

PIPELINE = """set -e
sqlite3 "$DB" ".backup '$W/x.db'"
sqlite3 "$W/x.db" "pragma integrity_check" >/dev/null
gzip -6 -k "$W/x.db"
sha256sum "$W/x.db.gz" >/dev/null
gunzip -c "$W/x.db.gz" > "$W/y.db"
sqlite3 "$W/y.db" "pragma integrity_check" >/dev/null
"""


def build_database(data: Path, path: Path, scale: int = 1) -> dict[str, int]:
    """Load sets/en.json and cards/en/*.json into the card tables with the sync's own row mapping
    (no validation, no change detection: a quick loader, not the sync), then repeat the cards
    ``scale`` times with renamed ids for a bigger database of the same shape."""
    open_card_database(path, create=True).close()
    conn = sqlite3.connect(path)
    sets = json.loads((data / "sets" / "en.json").read_text(encoding="utf-8"))
    with conn:
        conn.executemany(SET_ROWS.insert, [for_insert(set_row(record)) for record in sets])
        for file in sorted((data / "cards" / "en").glob("*.json")):
            cards = {card["id"]: card for card in json.loads(file.read_text(encoding="utf-8"))}
            conn.executemany(CARD_ROWS.insert.replace("INSERT", "INSERT OR REPLACE", 1),
                             [for_insert(card_row(card, file.stem)) for card in cards.values()])
    columns = ", ".join(column.name for column in POKEMON_CARDS.columns if column.sqlite)
    copied = columns.replace("id, ", "id || ?, ", 1)
    with conn:
        for copy in range(1, scale):
            conn.execute(f"INSERT INTO pokemon_cards ({columns}) SELECT {copied} FROM pokemon_cards "
                         "WHERE id NOT LIKE '%#%'", (f"#{copy}",))
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("pokemon_card_sets", "pokemon_cards")}
    conn.close()
    return counts


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process; exits if it fails.

    The peak comes from GNU time's ``%M``: ``wait4`` in this (large) benchmark process would also
    count the pages the child shares with it between fork and exec.
    """
    wrapper = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    start = time.perf_counter()
    done = subprocess.run(wrapper + command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")
    peak = int(done.stderr.strip().splitlines()[-1]) * 1024 if wrapper else 0
    return elapsed, peak


def in_process(db: Path, root: Path, compression: str) -> float:
    """Seconds for snapshot, checks, compression, sidecars and verification, without the CLI."""
    from tcgjobs.backups.create import create_backup

    conn = sqlite3.connect(db)
    start = time.perf_counter()
    report = create_backup(conn, db, root / "backups", root / "tmp", compression=compression)
    elapsed = time.perf_counter() - start
    conn.close()
    assert report.verified
    shutil.rmtree(root / "backups")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=1, help="copies of every card (a bigger database)")
    args = parser.parse_args()
    for tool in ("sqlite3", "gzip", "gunzip", "sha256sum"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the baseline pipeline")

    with tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch:
        root = Path(scratch)
        db = root / "db" / "pokemon-data.sqlite3.db"
        counts = build_database(args.data, db, args.scale)
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        size = db.stat().st_size
        (root / "tmp").mkdir()
        env = {**deployed_env(os.environ), "DATABASE_PATH": str(db), "BACKUP_DIR": str(root / "backups"),
               "TCGJOBS_TMPDIR": str(root / "tmp"), "TCGJOBS_LOG_FORMAT": "json", "DB": str(db)}
        results: dict[str, list[tuple[float, int]]] = {
            "pipeline": [], "gzip": [], "zstd": [], "work-gzip": [], "work-zstd": [], "fixed": []}
        for _ in range(args.runs):
            work = root / "pipeline"
            work.mkdir()
            results["pipeline"].append(timed(["bash", "-c", PIPELINE], {**env, "W": str(work)}))
            shutil.rmtree(work)
            results["fixed"].append(timed(
                [sys.executable, "-m", "tcgjobs", "run", "backup-database", "--dry-run"], env))
            for compression in ("gzip", "zstd"):
                results[compression].append(timed(
                    [sys.executable, "-m", "tcgjobs", "run", "backup-database", "--compression", compression],
                    env))
                shutil.rmtree(root / "backups")
                results[f"work-{compression}"].append((in_process(db, root, compression), 0))
        startup, _ = timed([sys.executable, "-m", "tcgjobs", "--version"], env)

    median = {name: statistics.median(t for t, _ in runs) for name, runs in results.items()}
    peak = {name: max(m for _, m in runs) for name, runs in results.items()}
    print(f"database: {size / 1e6:.1f} MB, {counts['pokemon_card_sets']} sets, "
          f"{counts['pokemon_cards']} cards; "
          f"{args.runs} runs each, medians")
    print(f"python: {sys.version.split()[0]}, sqlite: {sqlite3.sqlite_version}, cpus: {os.cpu_count()}")
    print()
    print("| what | median seconds | ratio to pipeline | peak RSS |")
    print("|---|---|---|---|")
    for name, label in (("pipeline", "shell pipeline (sqlite3 .backup, integrity_check, gzip -6, sha256sum, "
                                      "gunzip, integrity_check)"),
                        ("work-gzip", "the same steps in tcgjobs (create_backup, gzip), in-process"),
                        ("work-zstd", "the same steps in tcgjobs (create_backup, zstd), in-process"),
                        ("gzip", "`tcgjobs run backup-database` (gzip), whole process"),
                        ("zstd", "`tcgjobs run backup-database --compression zstd`, whole process"),
                        ("fixed", "`tcgjobs run backup-database --dry-run` (start-up, runner, ledger)")):
        # max over the runs; not shown for the pipeline, where it would be bash's own
        memory = f"{peak[name] / 2**20:.0f} MiB" if peak[name] and name != "pipeline" else "-"
        print(f"| {label} | {median[name]:.3f} | {median[name] / median['pipeline']:.2f}x | {memory} |")
    print()
    print(f"(tcgjobs interpreter start-up alone, `tcgjobs --version`: {startup:.3f} s)")


if __name__ == "__main__":
    main()
