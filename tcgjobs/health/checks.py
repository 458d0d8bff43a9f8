"""The named health checks. Each returns :class:`CheckResult` objects graded against settings.

Every check is read-only: the card database is opened with ``mode=ro`` (never created), files are
only ``stat``-ed, PostgreSQL gets one ``SELECT 1``. A check that raises is reported as critical
with the error, so one broken check never hides the others.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger
from peewee import SqliteDatabase

from tcgjobs import jobstatus
from tcgjobs.config import Settings
from tcgjobs.db.sqlite import integrity_problems
from tcgjobs.db.state import StateView, StoredCheck
from tcgjobs.errors import ServiceRefused, ServiceUnavailable, first_line
from tcgjobs.jobstatus import job_status
from tcgjobs.levels import Level, grade_above, grade_below
from tcgjobs.logging import redact
from tcgjobs.registry import all_jobs

MIB = 1024 * 1024
SELF = "database-health-check"


@dataclass
class CheckResult:
    """The outcome of one named check. ``value`` is its main number (MiB, hours, ms, count)."""

    name: str
    level: Level
    detail: str
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "level": self.level.value, "detail": self.detail,
                "value": self.value, **({"data": self.data} if self.data else {})}


@dataclass
class CheckEnv:
    """What the checks may look at."""

    settings: Settings
    now: datetime
    open_card_db: Callable[[], SqliteDatabase]
    history: StateView
    previous: Mapping[str, StoredCheck]
    #: Opens a connection to the primary with the given connect timeout; a run passes its own,
    #: bounded by its deadline and cancelled with it (``JobContext.postgres``).
    connect_postgres: Callable[[int], Any] | None = None


def card_database(env: CheckEnv) -> Iterator[CheckResult]:
    """card-database (opens read-only), quick-check and card-counts, on one connection."""
    path = env.settings.database_path
    if not path.exists():
        yield CheckResult("card-database", Level.CRITICAL, f"{path} does not exist")
        return
    try:
        db = env.open_card_db()
    except Exception as exc:  # noqa: BLE001 - ConfigError, SchemaError, sqlite errors: all mean "cannot use it"
        yield CheckResult("card-database", Level.CRITICAL, f"cannot open {path} read-only: {exc}")
        return
    yield CheckResult("card-database", Level.OK, f"{path} opens read-only")
    yield _quick_check(db)
    yield _card_counts(env, db)


def _quick_check(db: SqliteDatabase) -> CheckResult:
    try:
        problems = integrity_problems(db.connection(), quick=True, limit=5)
    except Exception as exc:  # noqa: BLE001 - any failure is a critical result
        return CheckResult("quick-check", Level.CRITICAL, f"PRAGMA quick_check failed: {exc}")
    if not problems:
        return CheckResult("quick-check", Level.OK, "PRAGMA quick_check: ok")
    return CheckResult("quick-check", Level.CRITICAL, "PRAGMA quick_check: " + "; ".join(problems))


def _card_counts(env: CheckEnv, db: SqliteDatabase) -> CheckResult:
    s = env.settings
    try:
        counts = {"sets": db.execute_sql("SELECT count(*) FROM pokemon_card_sets").fetchone()[0],
                  "cards": db.execute_sql("SELECT count(*) FROM pokemon_cards").fetchone()[0]}
    except Exception as exc:  # noqa: BLE001 - any failure is a critical result
        return CheckResult("card-counts", Level.CRITICAL, f"cannot count sets and cards: {exc}")
    text = f"{counts['sets']} sets, {counts['cards']} cards"
    empty = [kind for kind, count in counts.items() if count == 0]
    if empty:
        return CheckResult("card-counts", Level.CRITICAL, f"{text}: no {' and no '.join(empty)}",
                           counts["cards"], counts)
    before = env.previous.get("card-counts")
    level, notes = Level.OK, []
    if before is not None:
        for kind, count in counts.items():
            old = before.data.get(kind)
            if not old or count >= old:
                continue
            drop = 100.0 * (old - count) / old
            kind_level = grade_above(drop, s.health_count_drop_warning_percent,
                                     s.health_count_drop_critical_percent)
            notes.append(f"{kind} dropped {drop:.1f}% ({old} -> {count}) since the previous check")
            level = Level.worst([level, kind_level])
    return CheckResult("card-counts", level, text + ("; " + "; ".join(notes) if notes else ""),
                       counts["cards"], counts)


def file_sizes(env: CheckEnv) -> Iterator[CheckResult]:
    """database-size and wal-size, from ``stat`` alone."""
    s = env.settings
    path = s.database_path
    try:
        size = path.stat().st_size / MIB
    except FileNotFoundError:
        return
    yield CheckResult("database-size", grade_above(size, s.health_db_size_warning_mb, s.health_db_size_critical_mb),
                      f"{size:.1f} MiB (warning at {s.health_db_size_warning_mb:g}, critical at "
                      f"{s.health_db_size_critical_mb:g})", round(size, 3))
    wal = path.with_name(path.name + "-wal")
    wal_size = wal.stat().st_size / MIB if wal.exists() else 0.0
    yield CheckResult("wal-size", grade_above(wal_size, s.health_wal_warning_mb, s.health_wal_critical_mb),
                      f"{wal_size:.1f} MiB (warning at {s.health_wal_warning_mb:g}, critical at "
                      f"{s.health_wal_critical_mb:g})", round(wal_size, 3))


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def disk_free(env: CheckEnv) -> Iterator[CheckResult]:
    """disk-free-database and disk-free-backups: free space on each volume."""
    s = env.settings
    for name, directory in (("disk-free-database", s.database_path.parent), ("disk-free-backups", s.backup_dir)):
        free = shutil.disk_usage(_existing(directory)).free / MIB
        level = grade_below(free, s.health_disk_free_warning_mb, s.health_disk_free_critical_mb)
        yield CheckResult(name, level, f"{free:.0f} MiB free on the volume of {directory} (warning below "
                          f"{s.health_disk_free_warning_mb:g}, critical below {s.health_disk_free_critical_mb:g})",
                          round(free, 1))


def backups(env: CheckEnv) -> Iterator[CheckResult]:
    """backup-age (newest *verified* backup) and backup-corrupt (any backup recorded corrupt).

    Uses the cheap listing (names, stat, sidecars): verification itself is backup-database's and
    rotate-backups' work, never repeated here.
    """
    from tcgjobs.backups.catalog import list_backups

    s = env.settings
    listed = list_backups(s.backup_dir)
    verified = [b for b in listed if b.status == "verified"]
    if not verified:
        others = f" ({len(listed)} unverified or corrupt)" if listed else ""
        yield CheckResult("backup-age", Level.CRITICAL, f"no verified backup in {s.backup_dir}{others}")
    else:
        newest = verified[0]
        hours = (env.now - newest.created_at).total_seconds() / 3600
        level = grade_above(hours, s.health_backup_age_warning_hours, s.health_backup_age_critical_hours)
        yield CheckResult("backup-age", level, f"newest verified backup {newest.name} is {hours:.1f}h old "
                          f"(warning at {s.health_backup_age_warning_hours:g}h, critical at "
                          f"{s.health_backup_age_critical_hours:g}h)", round(hours, 3))
    corrupt = [b for b in listed if b.status == "corrupt"]
    if corrupt:
        names = "; ".join(f"{b.name}: {b.reason or 'corrupt'}" for b in corrupt[:5])
        yield CheckResult("backup-corrupt", Level.CRITICAL, f"{len(corrupt)} corrupt backup(s): {names}",
                          len(corrupt))
    else:
        yield CheckResult("backup-corrupt", Level.OK, f"{len(listed)} backup(s), none recorded corrupt", 0)


def postgres(env: CheckEnv) -> Iterator[CheckResult]:
    """postgres: connect and ``SELECT 1`` with a short timeout; only when a primary is configured."""
    s = env.settings
    if not s.postgres_configured:
        return
    import psycopg2

    from tcgjobs.services.postgres import connect, describe_target

    target = describe_target(s)
    opener = env.connect_postgres or (lambda timeout: connect(s, timeout=timeout))
    started = time.monotonic()
    try:
        connection = opener(s.health_postgres_timeout)
    except ServiceUnavailable as exc:
        reason = redact(first_line(exc).split(f"{target}: ", 1)[-1])
        yield CheckResult("postgres", Level.CRITICAL, f"{target} unreachable within "
                          f"{s.health_postgres_timeout}s: {reason}")
        return
    except ServiceRefused as exc:  # it answered: unknown database or role, credentials, ...
        reason = redact(first_line(exc).split("refused the connection: ", 1)[-1])
        yield CheckResult("postgres", Level.CRITICAL, f"{target} refused the connection: {reason}")
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latency = (time.monotonic() - started) * 1000
    except psycopg2.Error as exc:
        yield CheckResult("postgres", Level.CRITICAL, f"{target}: SELECT 1 failed: {redact(str(exc).strip())}")
        return
    finally:
        connection.close()
    level = grade_above(latency, s.health_postgres_latency_warning_ms, s.health_postgres_latency_critical_ms)
    yield CheckResult("postgres", level, f"{target} answered in {latency:.0f} ms (warning at "
                      f"{s.health_postgres_latency_warning_ms:g}, critical at "
                      f"{s.health_postgres_latency_critical_ms:g})", round(latency, 1))


def jobs(env: CheckEnv) -> Iterator[CheckResult]:
    """job:<name> for each job: late against its schedule or failing (warning), failing repeatedly (critical)."""
    s = env.settings
    for job in all_jobs().values():
        name = f"job:{job.name}"
        if job.name == SELF:
            continue  # its own exit 3 counts as a failure; its absence is the dead-man ping's job
        status = job_status(job, s, env.history, env.now)
        if not status.enabled:
            yield CheckResult(name, Level.OK, "disabled")
            continue
        notes, level = [], Level.OK
        if status.late:
            level = Level.WARNING
            notes.append(f"late: has not succeeded since it was due at {status.late_since:%Y-%m-%d %H:%M} UTC")
        if status.consecutive_failures:
            notes.append(f"{status.consecutive_failures} failure(s) in a row")
            if status.consecutive_failures >= s.health_job_failures_critical:
                level = Level.CRITICAL
            elif status.consecutive_failures >= s.health_job_failures_warning:
                level = Level.WARNING
        if status.last_run and status.last_run.error and status.consecutive_failures:
            notes.append(f"last error: {status.last_run.error[:200]}")
        last = f"last run {status.last_status.value}" if status.last_status else "never run"
        yield CheckResult(name, level, "; ".join(notes) or last,
                          status.consecutive_failures)


def abandoned_runs(env: CheckEnv) -> Iterator[CheckResult]:
    """abandoned-runs: runs whose process vanished (kill -9, OOM, node loss) within the window."""
    s = env.settings
    found = jobstatus.abandoned_runs(env.history, env.now, timedelta(hours=s.health_abandoned_window_hours))
    level = Level.OK if not found else (Level.CRITICAL if len(found) >= s.health_abandoned_critical
                                        else Level.WARNING)
    listed = ", ".join(f"{run.job} {run.run_id[:8]} at {run.started_at:%H:%M}" for run in found[:5])
    detail = (f"{len(found)} abandoned run(s) in the last {s.health_abandoned_window_hours:g}h: {listed}"
              if found else f"none in the last {s.health_abandoned_window_hours:g}h")
    yield CheckResult("abandoned-runs", level, detail, len(found))


def offsite(env: CheckEnv) -> Iterator[CheckResult]:
    """offsite-age: the newest verified off-site copy, as the ledger's upload-backups runs recorded
    it (never asking the store). Nothing while off-site is off."""
    from tcgjobs.offsite.status import offsite_status

    s = env.settings
    if s.offsite_url is None:
        return
    status = offsite_status(env.history)
    if status is None or status.newest_verified_at is None:
        why = "no upload-backups run has listed it yet" if status is None else \
            f"{status.copies} copies, none verified"
        yield CheckResult("offsite-age", Level.CRITICAL, f"no verified off-site copy in {s.offsite_url} ({why})")
        return
    hours = (env.now - status.newest_verified_at).total_seconds() / 3600
    level = grade_above(hours, s.health_offsite_age_warning_hours, s.health_offsite_age_critical_hours)
    yield CheckResult("offsite-age", level, f"newest verified off-site copy is {hours:.1f}h old; "
                      f"{status.verified} of {status.copies} copies verified, "
                      f"{status.size_bytes / 2**20:.1f} MiB in {s.offsite_url} (seen "
                      f"{status.seen_at:%Y-%m-%d %H:%M} UTC; warning at "
                      f"{s.health_offsite_age_warning_hours:g}h, critical at "
                      f"{s.health_offsite_age_critical_hours:g}h)", round(hours, 3))


CHECKS: tuple[Callable[[CheckEnv], Iterator[CheckResult]], ...] = (
    card_database, file_sizes, disk_free, backups, offsite, postgres, jobs, abandoned_runs,
)


def run_checks(env: CheckEnv, checks: tuple[Callable[[CheckEnv], Iterator[CheckResult]], ...] = CHECKS,
               check_cancelled: Callable[[], None] = lambda: None) -> list[CheckResult]:
    """Run every check; a check that raises becomes one critical result named after it."""
    results: list[CheckResult] = []
    for check in checks:
        check_cancelled()
        try:
            found = list(check(env))
        except Exception as exc:  # noqa: BLE001 - any failure is a critical result
            found = [CheckResult(check.__name__.replace("_", "-"), Level.CRITICAL,
                                 f"the check itself failed: {type(exc).__name__}: {redact(str(exc))}")]
            check_cancelled()  # a check cut short by the cancel failed for that reason alone
            logger.warning("health check {} raised: {}", check.__name__, redact(str(exc)))
        check_cancelled()  # nor is what it found while the run was cancelled a result
        results.extend(found)
    return results
