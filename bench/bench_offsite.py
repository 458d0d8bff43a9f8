"""Benchmark: upload-backups against a plain boto3 script doing the same uploads, side by side,
on backups of a card database built from the shared pokemon-tcg-data 2023 snapshot, into moto's
S3 server on 127.0.0.1.

    .venv/bin/python bench/bench_offsite.py [--data ../shared/data/pokemon-tcg-data-2023] [--runs 5]
        [--backups 5] [--big-mb 400]

* copy: ``tcgjobs run upload-backups`` (TCGJOBS_OFFSITE_VERIFY_SAMPLE=0) into a fresh prefix,
  against a plain boto3 script that uploads the same files (each backup, its ``.sha256`` and its
  manifest, with ``upload_file``) and HEADs each; both whole processes, alternating, medians.
* nothing to copy: the same run again (everything is off-site already), against
  ``python3 -c 'import boto3; boto3.client("s3")'``.
* peak RSS (GNU time ``%M``) of upload-backups copying one backup of ``--big-mb`` MiB of random
  bytes (a synthetic database several times the real one): memory does not grow with the backup.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_backup import DEFAULT_DATA, build_database  # noqa: E402
from deployed import deployed_env  # noqa: E402

from tests.support.s3 import MotoServer  # noqa: E402

KEY, SECRET = "AKIABENCHMARK0000001", "bench-secret-key-0000000000000000000000"

PLAIN = """
import sys
from pathlib import Path
import boto3
from botocore.config import Config

bucket, prefix, endpoint, directory = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
for path in sorted(Path(directory).iterdir()):
    key = prefix + path.name
    s3.upload_file(str(path), bucket, key)
    s3.head_object(Bucket=bucket, Key=key)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes, GNU time) of one child process; exits if it fails."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, int(done.stderr.strip().splitlines()[-1]) * 1024


def make_backups(db: Path, backup_dir: Path, count: int) -> int:
    """``count`` verified backups of ``db`` a day apart; returns their total size."""
    from tcgjobs.backups.create import create_backup

    now = datetime.now(UTC)
    for day in range(count):
        conn = sqlite3.connect(db)
        create_backup(conn, db, backup_dir, backup_dir.parent / "tmp", now=now - timedelta(days=day))
        conn.close()
    return sum(path.stat().st_size for path in backup_dir.iterdir())


def big_database(path: Path, megabytes: int) -> None:
    """A card database plus ``megabytes`` MiB of random bytes (they do not compress)."""
    from tcgjobs.db.cards import open_card_database

    open_card_database(path, create=True).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE ballast (id INTEGER PRIMARY KEY, data BLOB)")
        for _ in range(megabytes):
            conn.execute("INSERT INTO ballast (data) VALUES (?)", (os.urandom(1 << 20),))
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backups", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=400)
    args = parser.parse_args()
    server = MotoServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-offsite-") as scratch:
            run(Path(scratch), server, args)
    finally:
        server.stop()


def run(root: Path, server: MotoServer, args: argparse.Namespace) -> None:
    import boto3

    db = root / "db" / "pokemon-data.sqlite3.db"
    counts = build_database(args.data, db)
    (root / "tmp").mkdir()
    total = make_backups(db, root / "backups", args.backups)
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=KEY,
                 aws_secret_access_key=SECRET).create_bucket(Bucket="bench")
    base = {**deployed_env(os.environ), "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1"}
    env = {**base, "DATABASE_PATH": str(db), "BACKUP_DIR": str(root / "backups"),
           "TCGJOBS_TMPDIR": str(root / "tmp"), "TCGJOBS_LOG_FORMAT": "json",
           "TCGJOBS_STATE_PATH": str(root / "state.sqlite3"),
           "TCGJOBS_OFFSITE_ENDPOINT_URL": server.url, "TCGJOBS_OFFSITE_REGION": "us-east-1",
           "TCGJOBS_OFFSITE_ADDRESSING_STYLE": "path", "TCGJOBS_OFFSITE_VERIFY_SAMPLE": "0"}
    job = [sys.executable, "-m", "tcgjobs", "run", "upload-backups", "--ignore-deps"]
    results: dict[str, list[tuple[float, int]]] = {"plain": [], "job": [], "idle": [], "import": []}
    for index in range(args.runs):
        results["plain"].append(timed([sys.executable, "-c", PLAIN, "bench", f"plain-{index}/",
                                       server.url, str(root / "backups")], base))
        prefixed = {**env, "TCGJOBS_OFFSITE_URL": f"s3://bench/job-{index}"}
        results["job"].append(timed(job, prefixed))
        results["idle"].append(timed(job, prefixed))  # everything is off-site now
        results["import"].append(timed([sys.executable, "-c", 'import boto3; boto3.client("s3")'], base))
    big = root / "big" / "pokemon-data.sqlite3.db"
    big_database(big, args.big_mb)
    big_total = make_backups(big, root / "big" / "backups", 1)
    big_env = {**env, "DATABASE_PATH": str(big), "BACKUP_DIR": str(root / "big" / "backups"),
               "TCGJOBS_OFFSITE_URL": "s3://bench/big"}
    big_run = timed(job, big_env)
    report(counts, total, big_total, results, big_run, args)


def report(counts: dict[str, int], total: int, big_total: int,
           results: dict[str, list[tuple[float, int]]], big_run: tuple[float, int],
           args: argparse.Namespace) -> None:
    median = {name: statistics.median(t for t, _ in runs) for name, runs in results.items()}
    peak = {name: max(m for _, m in runs) for name, runs in results.items()}
    print(f"{args.backups} backups of a {counts['pokemon_card_sets']}-set, {counts['pokemon_cards']}-card "
          f"database, {total / 2**20:.1f} MiB with sidecars; {args.runs} runs each, medians")
    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, moto's server on 127.0.0.1")
    print()
    print("| what | median seconds | ratio | peak RSS |")
    print("|---|---|---|---|")
    rows = (("plain", "plain boto3 script: upload_file and head_object per file", "plain"),
            ("job", "`tcgjobs run upload-backups` (sample 0), whole process", "plain"),
            ("import", "`python3 -c 'import boto3; boto3.client(\"s3\")'`", "import"),
            ("idle", "`tcgjobs run upload-backups`, nothing to copy", "import"))
    for name, label, against in rows:
        print(f"| {label} | {median[name]:.3f} | {median[name] / median[against]:.2f}x "
              f"(vs {against}) | {peak[name] / 2**20:.0f} MiB |")
    print()
    print(f"one {big_total / 2**20:.0f} MiB backup: {big_run[0]:.2f} s, peak RSS "
          f"{big_run[1] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
