"""Scale benchmark: every job and command at 1x, 5x and 10x today's card data (issue 14).

    .venv/bin/python bench/bench_scale.py [--scales 1,5,10] [--data ../shared/data/pokemon-tcg-data-2023]
                                          [--jobs replicate,validate] [--keep]

Needs PostgreSQL on 127.0.0.1:5432 (trust auth; ``--admin`` to change). For each scale N the
script writes a source in the pokemon-tcg-data layout holding N copies of the snapshot: copy 0
keeps the ids, copy k renames every set ``<id>x<k>`` (its card file with it) and every card
``<set id>x<k>-<number>``, so the data grows N times and nothing collides. At 10x: 1,510 sets
and 161,140 card records. Then, on an empty card database, an empty state database, an empty
backup directory and a new empty PostgreSQL database, it runs every step below in order, each as
a whole fresh process of the installed ``tcgjobs`` (as cron runs it), and reports its wall time
(start to exit, start-up included) and peak RSS (``os.wait4``). A step that exits non-zero is
reported with its exit code; the run goes on.

Targets (issue 14): peak RSS < 150 MB for every step at every scale; 10x time <= 11 x the 1x
time; replication with nothing or 1% changed <= 0.3 x the full replication.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_replicate import Primary
from deployed import deployed_env

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pokemon-tcg-data-2023"
TCGJOBS = str(Path(sys.executable).parent / "tcgjobs")
RSS_TARGET_MB = 150


@dataclass
class Scale:
    """One scale's files, database and environment."""

    factor: int
    work: Path
    env: dict[str, str]
    primary: Primary
    notes: list[str] = field(default_factory=list)

    @property
    def card_db(self) -> Path:
        return self.work / "cards.sqlite3"


def _change_one_percent(scale: Scale) -> None:
    with sqlite3.connect(scale.card_db) as connection:
        changed = connection.execute("UPDATE pokemon_cards SET name = name || ' (bench)' "
                                     "WHERE rowid % 100 = 0").rowcount
    connection.close()
    scale.notes.append(f"{changed} cards changed for the 1% replication")


def _settle(scale: Scale) -> None:
    scale.primary.settle()  # no checkpoint of an earlier step's writes lands in the measurement


def _change_and_settle(scale: Scale) -> None:
    _change_one_percent(scale)
    _settle(scale)


@dataclass(frozen=True)
class Step:
    label: str
    args: tuple[str, ...]
    needs: tuple[str, ...] = ()  # labels of the steps whose results this one works on
    before: Callable[[Scale], None] | None = None


SYNC_SETS, SYNC_CARDS, BACKUP, FULL = ("sync-missing-sets", "sync-missing-cards: empty db",
                                       "backup-database", "replicate-to-primary: empty database")
# --ignore-deps on the jobs with dependencies: the dependency rule looks at the schedule, and a run
# of the bench that crosses a scheduled time would otherwise skip them.
STEPS = (
    Step(SYNC_SETS, ("run", "sync-missing-sets")),
    Step(SYNC_CARDS, ("run", "sync-missing-cards", "--ignore-deps"), (SYNC_SETS,)),
    Step("sync-missing-cards: nothing changed", ("run", "sync-missing-cards", "--ignore-deps"), (SYNC_CARDS,)),
    Step("validate-data-integrity: no primary", ("run", "validate-data-integrity", "--no-compare-primary"),
         (SYNC_CARDS,)),
    Step(BACKUP, ("run", "backup-database"), (SYNC_CARDS,)),
    Step("rotate-backups", ("run", "rotate-backups", "--ignore-deps"), (BACKUP,)),
    Step(FULL, ("run", "replicate-to-primary", "--ignore-deps"), (SYNC_CARDS,), _settle),
    Step("replicate-to-primary: nothing changed", ("run", "replicate-to-primary", "--ignore-deps"), (FULL,),
         _settle),
    # before the 1% change: after it the card database differs from its source, and validate says so
    Step("validate-data-integrity: with primary", ("run", "validate-data-integrity", "--compare-primary"),
         (FULL,), _settle),
    Step("replicate-to-primary: 1% changed", ("run", "replicate-to-primary", "--ignore-deps"), (FULL,),
         _change_and_settle),
    Step("database-health-check", ("run", "database-health-check"), (BACKUP,)),
    Step("cleanup-stale-data", ("run", "cleanup-stale-data"), (SYNC_CARDS,)),
    Step("status", ("status",), (SYNC_CARDS,)),
    Step("history", ("history", "sync-missing-cards"), (SYNC_CARDS,)),
    Step("backup list", ("backup", "list"), (BACKUP,)),
    Step("backup verify", ("backup", "verify", "<newest>"), (BACKUP,)),
)


@dataclass(frozen=True)
class Measured:
    wall: float
    rss_mb: float
    exit_code: int
    stdout: str
    stderr: str


def _run(command: list[str], env: dict[str, str], work: Path) -> Measured:
    """Wall seconds, peak RSS MB (os.wait4), exit code and output of one process. Output goes to
    files, so a chatty process never blocks on a full pipe."""
    out_path, err_path = work / "step.out", work / "step.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, usage.ru_maxrss / 1024, process.returncode,
                    out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


def build_source(data: Path, target: Path, copies: int) -> tuple[int, int]:
    """Write ``copies`` renamed copies of ``data`` to ``target``, one card file at a time.
    Returns (sets, cards) written."""
    sets = json.loads((data / "sets" / "en.json").read_bytes())
    (target / "sets").mkdir(parents=True)
    (target / "cards" / "en").mkdir(parents=True)
    all_sets, cards_written = [], 0
    for record in sets:
        raw = data / "cards" / "en" / f"{record['id']}.json"
        cards = json.loads(raw.read_bytes()) if raw.exists() else None
        for k in range(copies):
            set_id = record["id"] if k == 0 else f"{record['id']}x{k}"
            all_sets.append({**record, "id": set_id})
            if cards is None:
                continue
            renamed = [{**card, "id": _card_id(card["id"], record["id"], set_id)} for card in cards]
            for card in renamed:
                if isinstance(card.get("set"), dict):
                    card["set"] = {**card["set"], "id": set_id}
            (target / "cards" / "en" / f"{set_id}.json").write_text(json.dumps(renamed, ensure_ascii=False))
            cards_written += len(renamed)
    (target / "sets" / "en.json").write_text(json.dumps(all_sets, ensure_ascii=False))
    return len(all_sets), cards_written


def _card_id(card_id: str, old_set: str, new_set: str) -> str:
    if old_set == new_set:
        return card_id
    if card_id.startswith(old_set + "-"):
        return new_set + card_id[len(old_set):]
    return f"{card_id}x{new_set}"


def _selected(filters: list[str]) -> tuple[list[Step], set[str]]:
    """(steps to run, labels to report): the steps matching a filter, and everything they need."""
    by_label = {step.label: step for step in STEPS}
    report = {s.label for s in STEPS if not filters or any(f in s.label for f in filters)}
    wanted, todo = set(), list(report)
    while todo:
        label = todo.pop()
        if label not in wanted:
            wanted.add(label)
            todo.extend(by_label[label].needs)
    return [step for step in STEPS if step.label in wanted], report


def _newest_backup(scale: Scale) -> str:
    listed = _run([TCGJOBS, "backup", "list", "--json"], scale.env, scale.work)
    backups = json.loads(listed.stdout)["backups"]
    return max(backups, key=lambda b: b["created_at"])["name"]


def run_scale(factor: int, args: argparse.Namespace, base: dict[str, str], primary: Primary,
              steps: list[Step], work: Path) -> tuple[dict[str, Measured], Scale]:
    source = work / "source"
    sets, cards = build_source(args.data, source, factor)
    env = {**base, "TCGJOBS_DATA_SOURCE": str(source), "DATABASE_PATH": str(work / "cards.sqlite3"),
           "TCGJOBS_STATE_PATH": str(work / "state.sqlite3"), "BACKUP_DIR": str(work / "backups"),
           "TCGJOBS_TMPDIR": str(work), "TCGJOBS_POSTGRES_URL": primary.new(f"scale{factor}x")}
    scale = Scale(factor, work, env, primary, [f"source: {sets} sets, {cards} card records"])
    results: dict[str, Measured] = {}
    for step in steps:
        if step.before is not None:
            step.before(scale)
        command = [TCGJOBS, *step.args]
        if command[-1] == "<newest>":
            command[-1] = _newest_backup(scale)
        results[step.label] = measured = _run(command, env, work)
        if measured.exit_code != 0 and step.label in (SYNC_SETS, SYNC_CARDS):
            raise SystemExit(f"{factor}x: building the card database failed ({measured.exit_code}):\n"
                             f"{measured.stdout[-2000:]}\n{measured.stderr[-3000:]}")
        print(f"{factor}x {step.label}: {measured.wall:.2f} s, {measured.rss_mb:.0f} MB, "
              f"exit {measured.exit_code}", file=sys.stderr, flush=True)
    return results, scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1,5,10", help="comma-separated copy counts")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--jobs", default="", help="comma-separated parts of step labels to report "
                        "(the steps they need run too)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--admin", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parser.parse_args()
    factors = [int(part) for part in args.scales.split(",")]
    steps, report = _selected([part for part in args.jobs.split(",") if part])
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    base = {k: v for k, v in deployed_env(os.environ).items()
            if not k.startswith(("TCGJOBS_", "POSTGRES_", "DATABASE_", "BACKUP_", "SLACK_", "NOTIFICATION"))}
    base.update(TCGJOBS_LOG_LEVEL="warning", TCGJOBS_LOG_FORMAT="json")
    primary = Primary(args.admin)
    results: dict[int, dict[str, Measured]] = {}
    scales: dict[int, Scale] = {}
    try:
        for factor in factors:
            (work / f"{factor}x").mkdir()
            results[factor], scales[factor] = run_scale(factor, args, base, primary, steps, work / f"{factor}x")
            if not args.keep:
                shutil.rmtree(work / f"{factor}x" / "source")
    finally:
        primary.drop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _report(args.data, factors, [s for s in steps if s.label in report], results, scales)
    if args.keep:
        print(f"\nkept: {work}")


def _report(data: Path, factors: list[int], steps: list[Step], results: dict[int, dict[str, Measured]],
            scales: dict[int, Scale]) -> None:
    low, high = factors[0], factors[-1]
    print(f"data: {data} x {', '.join(map(str, factors))}; wall time of the whole process "
          "(start-up included), peak RSS (os.wait4)")
    for factor in factors:
        print(f"{factor}x: " + "; ".join(scales[factor].notes))
    print()
    print("| job / mode | " + " | ".join(f"{f}x time s" for f in factors) + f" | {high}x/{low}x time | "
          + " | ".join(f"{f}x RSS MB" for f in factors) + " | exit codes |")
    print("|---" * (2 * len(factors) + 3) + "|")
    failures = []
    for step in steps:
        row = [results[f][step.label] for f in factors]
        codes = [m.exit_code for m in row]
        print(f"| {step.label} | " + " | ".join(f"{m.wall:.2f}" for m in row)
              + f" | {row[-1].wall / row[0].wall:.2f} | " + " | ".join(f"{m.rss_mb:.0f}" for m in row)
              + f" | {'/'.join(map(str, codes))} |")
        failures += [(f, step.label, m) for f, m in zip(factors, row, strict=True) if m.exit_code != 0]
    print("\nCommands (in each scale's directory, env: TCGJOBS_DATA_SOURCE, DATABASE_PATH, TCGJOBS_STATE_PATH, "
          "BACKUP_DIR, TCGJOBS_TMPDIR, TCGJOBS_POSTGRES_URL, TCGJOBS_LOG_LEVEL=warning, TCGJOBS_LOG_FORMAT=json; "
          "<newest>: the newest name in `tcgjobs backup list --json`):\n")
    for step in steps:
        print(f"    tcgjobs {' '.join(step.args)}    # {step.label}")
    print("\nTargets:")
    peak = max(m.rss_mb for by_label in results.values() for m in by_label.values())
    print(f"* peak RSS < {RSS_TARGET_MB} MB, every step at every scale: highest {peak:.0f} MB "
          f"({'met' if peak < RSS_TARGET_MB else 'NOT met'})")
    limit = 1.1 * high / low
    slow = [s.label for s in steps if results[high][s.label].wall > limit * results[low][s.label].wall]
    print(f"* {high}x time <= {limit:.1f} x the {low}x time: " + (f"NOT met by {', '.join(slow)}" if slow else "met"))
    full = "replicate-to-primary: empty database"
    for factor in factors:
        if full not in results[factor]:
            break
        ratios = [f"{mode} {results[factor][f'replicate-to-primary: {mode}'].wall / results[factor][full].wall:.2f}"
                  for mode in ("nothing changed", "1% changed") if f"replicate-to-primary: {mode}" in results[factor]]
        print(f"* {factor}x replication <= 0.3 x full (wall): {', '.join(ratios)}")
    for factor, label, measured in failures:
        print(f"\n{factor}x {label} exited {measured.exit_code}:\n{measured.stdout[-1500:]}\n{measured.stderr[-1500:]}")


if __name__ == "__main__":
    main()
