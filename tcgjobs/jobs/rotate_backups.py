"""rotate-backups: calendar-based retention that never loses the last good backup.

The original kept seven arbitrary files and could delete the newest backups. Here, before the
policy is applied, every backup's state is established: unverified backups (the original's, or
interrupted verifications) are verified in full, verified ones are re-hashed against their recorded
checksum. Then :func:`tcgjobs.backups.retention.plan` decides, with reasons, and only files
matching the backup name pattern (with their sidecars) are deleted. Leftovers of interrupted
backups (temporary files, orphaned sidecars, the original's uncompressed copies whose compressed
twin is sound) are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.backups.retention import CORRUPT, SOUND, UNVERIFIABLE, Candidate, Decision, Policy, plan
from tcgjobs.context import JobContext
from tcgjobs.registry import JobResult

if TYPE_CHECKING:
    from tcgjobs.backups.catalog import Backup


@dataclass
class _Checked:
    backup: Backup
    status: str  # verified | unverifiable | corrupt
    note: str | None = None


def policy_from(options: dict) -> Policy:
    return Policy(daily=options["daily"], weekly=options["weekly"], monthly=options["monthly"],
                  yearly=options["yearly"], minimum=options["minimum"])


def _record(backup: Backup, write: Callable[[], None]) -> None:
    """Store a verification result; a failure to store it is a warning, never the run's end."""
    try:
        write()
    except OSError as exc:
        logger.warning("could not record the verification result of {}: {}", backup.name, exc)


def _check(ctx: JobContext, backup: Backup) -> _Checked:
    """The backup's state for rotation; records new verification results unless dry run."""
    from tcgjobs.backups.catalog import write_manifest
    from tcgjobs.backups.verify import (
        Unverifiable,
        checksum_mismatch,
        hash_file,
        record_verification,
        verify_file,
    )

    if backup.status == "corrupt":
        return _Checked(backup, CORRUPT, backup.reason)
    if backup.status == "verified":
        if not ctx.options["recheck"] or not backup.checksum:
            return _Checked(backup, SOUND)
        digest = hash_file(backup.path)
        if digest == backup.checksum:
            return _Checked(backup, SOUND)
        reason = checksum_mismatch(backup.checksum, digest)
        if not ctx.dry_run:
            manifest = dict(backup.manifest or {})
            manifest.pop("format", None)
            manifest["verification"] = {**manifest.get("verification", {}), "status": "corrupt",
                                        "reason": reason}
            _record(backup, lambda: write_manifest(backup.path, manifest))
        return _Checked(backup, CORRUPT, reason)
    try:
        result = verify_file(backup.path, ctx.settings.temp_dir, check=ctx.check_cancelled)
    except Unverifiable as exc:
        logger.warning("{} could not be verified; keeping it: {}", backup.name, exc)
        return _Checked(backup, UNVERIFIABLE, str(exc))
    if not ctx.dry_run:
        _record(backup, lambda: record_verification(backup.path, result))
    if result.ok:
        logger.info("{} verified (it had not been before)", backup.name)
        return _Checked(backup, SOUND)
    return _Checked(backup, CORRUPT, result.reason)


def _uncompressed_twins(checked: list[_Checked]) -> list[Backup]:
    """The original's uncompressed copies whose compressed version exists and is sound."""
    from tcgjobs.backups.names import BASE_SUFFIX

    sound_stamps = {c.backup.name.split(BASE_SUFFIX)[0] for c in checked
                    if c.status == SOUND and c.backup.compression != "none"}
    return [c.backup for c in checked if c.backup.compression == "none"
            and c.backup.name.split(BASE_SUFFIX)[0] in sound_stamps]


def _plan_rows(checked: list[_Checked], decisions: dict[str, Decision], twin_names: set[str],
               verb: str) -> tuple[list[dict[str, Any]], list[Backup]]:
    """One row per backup (name, status, action, reasons), each logged, and the backups to delete."""
    rows, doomed = [], []
    for item in checked:
        backup = item.backup
        if backup.name in twin_names:
            action, reasons = "delete", ["leftover: uncompressed copy of a sound compressed backup"]
        else:
            decision = decisions[backup.name]
            action, reasons = decision.action, decision.reasons
        if item.note and item.status != SOUND:
            reasons = [*reasons, item.note]
        rows.append({"name": backup.name, "created_at": backup.created_at.isoformat(),
                     "status": item.status, "size_bytes": backup.size_bytes, "action": action,
                     "reasons": reasons})
        log = logger.warning if item.status == CORRUPT and action == "delete" else logger.info
        log("{} {} ({}): {}", "keep" if action == "keep" else verb, backup.name, item.status,
            ", ".join(reasons))
        if action == "delete":
            doomed.append(backup)
    return rows, doomed


def _delete(doomed: list[Backup], orphans: list[Path]) -> tuple[int, int, list[str]]:
    """Delete ``doomed`` backups with their sidecars, then orphaned sidecars.

    Returns ``(backups deleted, bytes freed, failure messages)``; a failure does not stop the rest.
    """
    from tcgjobs.backups.catalog import remove_backup

    deleted, freed = 0, 0
    failures: list[str] = []
    for backup in doomed:
        try:
            freed += remove_backup(backup.path)
            deleted += 1
        except OSError as exc:
            failures.append(f"{backup.name}: {exc.strerror or exc}")
    for orphan in orphans:
        logger.info("removing orphaned sidecar {}", orphan.name)
        orphan.unlink(missing_ok=True)
    return deleted, freed, failures


def run(ctx: JobContext) -> JobResult:
    from tcgjobs.backups.catalog import list_backups, orphan_sidecars
    from tcgjobs.backups.tempfiles import cleanup_leftovers

    policy = policy_from(dict(ctx.options))
    policy.check()
    backup_dir = ctx.settings.backup_dir
    verb = "would delete" if ctx.dry_run else "deleting"
    leftovers: list[Path] = []
    if not ctx.dry_run:
        leftovers = cleanup_leftovers(backup_dir, ctx.settings.temp_dir)
    checked = []
    listed = list_backups(backup_dir)
    with ctx.reporter.progress("checking backups", total=len(listed)) as bar:
        for backup in listed:
            ctx.check_cancelled()
            checked.append(_check(ctx, backup))
            bar.advance()
    twins = _uncompressed_twins(checked)
    twin_names = {t.name for t in twins}
    candidates = [Candidate(c.backup.name, c.backup.created_at, c.status) for c in checked
                  if c.backup.name not in twin_names]
    decisions = {d.key: d for d in plan(candidates, policy, ctx.started_at)}
    rows, doomed = _plan_rows(checked, decisions, twin_names, verb)
    orphans = orphan_sidecars(backup_dir) if backup_dir.is_dir() else []
    deleted, freed = 0, 0
    failures: list[str] = []
    if not ctx.dry_run:
        deleted, freed, failures = _delete(doomed, orphans)
        ctx.committed(f"{deleted} backups deleted ({freed} bytes freed)",
                      {"deleted": deleted, "bytes_freed": freed})
    unverifiable = [c.backup.name for c in checked if c.status == UNVERIFIABLE]
    corrupt = [c.backup.name for c in checked if c.status == CORRUPT]
    metrics: dict[str, float | int] = {"backups_total": len(checked), "kept": len(checked) - len(doomed),
               "deleted": deleted if not ctx.dry_run else 0, "would_delete": len(doomed),
               "corrupt": len(corrupt), "unverifiable": len(unverifiable), "bytes_freed": freed,
               "leftovers_removed": len(leftovers) + (0 if ctx.dry_run else len(orphans))}
    table = {"columns": ["backup", "status", "action", "reasons"],
             "rows": [[r["name"], r["status"], r["action"] if not ctx.dry_run or r["action"] == "keep"
                       else "would delete", ", ".join(r["reasons"])] for r in rows]}
    details = {"policy": vars(policy), "backups": rows, "dry_run": ctx.dry_run, "table": table}
    prefix = "dry run: " if ctx.dry_run else ""
    summary = (f"{prefix}{metrics['kept']} kept, {len(doomed)} {'to delete' if ctx.dry_run else 'deleted'}"
               f" of {len(checked)} backups; {len(corrupt)} corrupt, {len(unverifiable)} unverifiable")
    if failures:
        return JobResult.failed("could not delete " + "; ".join(failures), metrics=metrics,
                                summary=summary, details=details)
    if unverifiable:
        return JobResult.problems(f"{len(unverifiable)} backup(s) could not be verified and were kept: "
                                  + ", ".join(unverifiable), metrics=metrics, summary=summary,
                                  details=details)
    return JobResult(metrics, summary=summary, details=details)
