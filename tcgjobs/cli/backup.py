"""``tcgjobs backup list | verify | restore``: look at, prove and use the backups.

Each command's exit codes are declared once below (``LIST_EXIT_CODES`` ...) and shown in its
``--help``; docs/backups.md lists the same codes (a test checks both).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from tcgjobs.backups.catalog import Backup, list_backups, list_safety_snapshots
from tcgjobs.backups.names import backup_name, is_restorable_name
from tcgjobs.backups.retention import CORRUPT, SOUND, Candidate, plan
from tcgjobs.backups.verify import Unverifiable, record_verification, verify_file
from tcgjobs.cli import common, completion
from tcgjobs.cli.common import JsonOption, WideOption
from tcgjobs.cli.output import Column, print_table, reporter_for
from tcgjobs.config import Settings
from tcgjobs.errors import ConfigError, ExitCode, JobFailed, UsageError
from tcgjobs.registry import Resource, get_job, restore_operation
from tcgjobs.services.locks import hold, lock_dir_for, resource_lock
from tcgjobs.times import utcnow

backup_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="List, verify and restore backups of the card database.")

#: On a narrow terminal the name (to copy into restore) and the status always show.
LIST_COLUMNS = [Column("name", essential=True), Column("created", rank=3), Column("size", rank=1),
                Column("compression", rank=4), Column("status", essential=True),
                Column("retention", rank=2, wrap=True)]
VERIFY_COLUMNS = [Column("name", essential=True), Column("status", essential=True),
                  Column("detail", rank=1, wrap=True, note=True)]
RemoteOption = Annotated[bool, typer.Option(
    "--remote", help="The off-site copies in TCGJOBS_OFFSITE_URL instead of BACKUP_DIR.")]
#: What the off-site forms (--remote) add to each command's exit codes.
REMOTE_EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.UNAVAILABLE: "--remote: the store could not be reached (refused, DNS, timeout, 5xx)",
    ExitCode.CONFIG: "invalid configuration; --remote: TCGJOBS_OFFSITE_URL unset, or the store "
                     "refused us (no such bucket, access denied, a bad key or signature)",
}

LIST_EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "listed (also when there are no backups)",
    **REMOTE_EXIT_CODES,
}
VERIFY_EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "every backup checked is verified",
    ExitCode.FAILED: "a backup could not be checked (no room or no access for the temporary copy), "
                     "or there are no backups",
    ExitCode.USAGE: "no such backup, a file that is not a backup, or both FILE and --all",
    ExitCode.PROBLEMS: "a backup is corrupt (takes precedence over 1)",
    ExitCode.SKIPPED: "a running job holds the backup directory; nothing was checked",
    **REMOTE_EXIT_CODES,
}
RESTORE_EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "restored and checked",
    ExitCode.FAILED: "not restored: the target exists and --force was not given, the backup could "
                     "not be verified, the safety snapshot failed, or not enough disk space",
    ExitCode.USAGE: "no such backup, a file that is not a backup, or a target that is a directory",
    ExitCode.PROBLEMS: "the backup is corrupt; nothing was changed",
    ExitCode.SKIPPED: "a running job holds the card database or backup directory; nothing was changed",
    **REMOTE_EXIT_CODES,
    ExitCode.TIMEOUT: "stopped by the deadline (TCGJOBS_RESTORE_TIMEOUT or --timeout): nothing was "
                      "changed unless the message says what was committed before the stop",
    ExitCode.INTERRUPTED_SIGINT: "stopped by SIGINT: nothing was changed unless the message says what "
                                 "was committed before the stop",
    ExitCode.INTERRUPTED_SIGTERM: "stopped by SIGTERM: nothing was changed unless the message says "
                                  "what was committed before the stop",
}


def with_exit_codes(text: str, codes: dict[ExitCode, str]) -> str:
    """A command's help: ``text`` and then one line per exit code (kept as is by click's ``\\b``)."""
    lines = [textwrap.fill(meaning, 76, initial_indent=f"  {int(code):>2}  ", subsequent_indent=" " * 6)
             for code, meaning in sorted(codes.items())]
    return f"{text}\n\n\b\nExit codes:\n" + "\n".join(lines)


def _holder(action: str) -> dict[str, Any]:
    return {"job": f"backup {action}", "run_id": "cli", "since": utcnow().isoformat(timespec="seconds")}


def retention_reasons(settings: Settings, backups: list[Backup]) -> dict[str, str]:
    """What rotate-backups would decide for each backup with its current settings, taking
    unverified backups as sound (rotation verifies them first)."""
    from tcgjobs.jobs.rotate_backups import policy_from

    policy = policy_from(dict(settings.job(get_job("rotate-backups")).options))
    candidates = [Candidate(item.name, item.created_at, CORRUPT if item.status == "corrupt" else SOUND)
                  for item in backups]
    try:
        decisions = plan(candidates, policy, utcnow())
    except ConfigError as exc:
        return {item.name: f"({exc})" for item in backups}
    return {d.key: f"{d.action}: {', '.join(d.reasons)}" for d in decisions}


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


SAFETY_RETENTION = "safety snapshot: never rotated, delete by hand"


def list_command(as_json: JsonOption = False, wide: WideOption = False,
                 remote: RemoteOption = False) -> None:
    """Every backup: name, created, size, compression, status and what rotation would do; then
    the safety snapshots taken by ``restore --force``."""
    if remote:
        from tcgjobs.cli.backup_remote import list_remote

        return list_remote(as_json)
    settings = common.settings()
    backups = list_backups(settings.backup_dir)
    safety = list_safety_snapshots(settings.backup_dir)
    reasons = retention_reasons(settings, backups)
    reasons.update({item.name: SAFETY_RETENTION for item in safety})
    if as_json:
        common.print_json({"backup_dir": str(settings.backup_dir),
                           "backups": [{**item.as_json(), "retention": reasons[item.name]}
                                       for item in backups],
                           "safety_snapshots": [{**item.as_json(), "retention": reasons[item.name]}
                                                for item in safety]})
        return
    if not backups and not safety:
        common.print_text(f"no backups in {settings.backup_dir}")
        return
    rows = [(item.name, item.created_at, _size(item.size_bytes), item.compression, item.status,
             reasons[item.name]) for item in [*backups, *safety]]
    print_table(LIST_COLUMNS, rows, zone=settings.timezone, wide=wide)


def resolve_backup(settings: Settings, file: str) -> Path:
    """``file`` as a path, or a name in BACKUP_DIR. Raises UsageError when it is neither."""
    candidates = [Path(file), settings.backup_dir / file]
    for candidate in candidates:
        if candidate.is_file():
            if not is_restorable_name(candidate.name):
                raise UsageError(f"{candidate} is not a backup (expected a name like "
                                 f"{backup_name(utcnow())})")
            return candidate
    raise UsageError(f"no backup {file!r} (neither a file nor a name in {settings.backup_dir}); "
                     "see `tcgjobs backup list`")


def verify_command(
    file: Annotated[str | None, typer.Argument(autocompletion=completion.backup_names,
        help="Backup file or name (default: the newest).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every backup and safety snapshot.")] = False,
    as_json: JsonOption = False,
    remote: RemoteOption = False,
) -> None:
    """Checksum, decompress, integrity check and row counts; records the result. Exit 3 if any
    backup is corrupt, 1 if one could not be checked."""
    if remote:
        from tcgjobs.cli.backup_remote import verify_remote

        return verify_remote(file, all_, as_json)
    settings = common.settings()
    with common.errors_exit():
        if file and all_:
            raise UsageError("give a FILE or --all, not both")
        if file:
            targets = [resolve_backup(settings, file)]
        else:
            listed = list_backups(settings.backup_dir)
            if all_:
                listed += list_safety_snapshots(settings.backup_dir)
            if not listed:
                raise JobFailed(f"no backups in {settings.backup_dir}")
            targets = [item.path for item in (listed if all_ else listed[:1])]
        results = []
        with hold(lock_dir_for(settings.state_path), [resource_lock(Resource.BACKUP_DIR)], _holder("verify")):
            for path in targets:
                results.append(_verify_one(settings, path))
    corrupt = [r["name"] for r in results if r["status"] == "corrupt"]
    failed = [r["name"] for r in results if r["status"] == "unverifiable"]
    code = ExitCode.PROBLEMS if corrupt else ExitCode.FAILED if failed else ExitCode.OK
    if as_json:
        error = f"corrupt: {', '.join(corrupt)}" if corrupt else f"could not be checked: {', '.join(failed)}"
        common.print_json({"results": results}, exit_code=code, error=error)
    else:
        print_table(VERIFY_COLUMNS, [(r["name"], r["status"], r["reason"] or "ok") for r in results])
    common.exit_code(code)


def _verify_one(settings: Settings, path: Path) -> dict[str, Any]:
    try:
        result = verify_file(path, settings.temp_dir)
    except Unverifiable as exc:
        return {"name": path.name, "status": "unverifiable", "reason": str(exc)}
    try:
        record_verification(path, result)
    except OSError as exc:
        common.stderr().print(f"warning: could not record the result for {path.name}: {exc}", markup=False)
    return {"name": path.name, "status": "verified" if result.ok else "corrupt", "reason": result.reason,
            "sha256": result.sha256, "row_counts": result.row_counts}


def row_counts_text(counts: dict[str, int]) -> str:
    """``pokemon_card_sets 5, pokemon_cards 24, users 0``: each table and its rows, as people read."""
    return ", ".join(f"{table} {count:,}" for table, count in counts.items()) or "no tables"


def restore_command(
    file: Annotated[str, typer.Argument(
        help="Backup file or name in BACKUP_DIR; with --remote a name off-site; or s3://bucket/prefix/NAME.",
        autocompletion=completion.backup_names)],
    to: Annotated[Path | None, typer.Option(
        "--to", help="Restore here (default: DATABASE_PATH, the live database).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing database.")] = False,
    no_safety_snapshot: Annotated[bool, typer.Option(
        "--no-safety-snapshot", help="Do not back up the current database first (e.g. when it is "
        "damaged beyond a backup).")] = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", metavar="SECONDS", help="Deadline of this restore (default: "
        "TCGJOBS_RESTORE_TIMEOUT, 1800 s).")] = None,
    as_json: JsonOption = False,
    remote: RemoteOption = False,
) -> None:
    """Verify a backup, then restore it (atomically to a new file, or through SQLite's backup API
    over an existing database, under the card-database lock, after a safety snapshot). Recorded in
    the ledger as ``backup-restore``, under a deadline, stopped cleanly by SIGTERM/SIGINT."""
    if remote or file.startswith("s3://"):
        from tcgjobs.cli.backup_remote import restore_remote

        return restore_remote(file, to, force, no_safety_snapshot, timeout, as_json, restore_from)
    settings = common.settings()
    if timeout is not None and timeout <= 0:
        raise typer.BadParameter("must be greater than 0", param_hint="--timeout")
    with common.errors_exit():
        source = resolve_backup(settings, file)
    restore_from(settings, source, to, force, no_safety_snapshot, timeout, as_json)


def restore_from(settings: Settings, source: Path, to: Path | None, force: bool,
                 no_safety_snapshot: bool, timeout: float | None, as_json: bool) -> None:
    """Restore the backup file ``source`` (in BACKUP_DIR, or a downloaded off-site copy) through
    the runner; prints the result and exits with its code when it is not 0."""
    from tcgjobs.cancel import SignalRouter
    from tcgjobs.observers import restore_observers
    from tcgjobs.runner import RunRequest, run_job

    with common.errors_exit():
        target = to if to is not None else settings.database_path
        if target.is_dir():
            raise UsageError(f"{target} is a directory; give the database file's path")
    live = target.resolve() == settings.database_path.resolve()
    options = {"backup": str(source), "target": str(target), "force": force, "live": live,
               "safety_snapshot": live and not no_safety_snapshot}
    signals = SignalRouter.installed()  # as for `run JOB`: the signals belong to the restore until exit
    try:
        with common.errors_exit():
            outcome = run_job(RunRequest(job=restore_operation(live), settings=settings, options=options,
                                         timeout=timeout, reporter=reporter_for(as_json, settings)),
                              observers=restore_observers(settings), signals=signals)
        _show_restore(outcome, source, target, as_json)
    finally:
        if signals is not None:
            signals.ignore_until_exit()
    if outcome.exit_code is not ExitCode.OK:
        common.exit_code(outcome.exit_code)


def _show_restore(outcome: Any, source: Path, target: Path, as_json: bool) -> None:
    """A finished restore: as before it ran through the runner, ``error: ...`` on stderr when it
    did not succeed, what it committed when it was stopped after the copy committed."""
    if outcome.exit_code is not ExitCode.OK:
        common.stderr().print(f"error: {outcome.error}", markup=False)
        if as_json:  # a script gets the failed run, with the error and exit code on top
            common.print_json({"run": outcome.as_json()}, exit_code=outcome.exit_code, error=outcome.error)
        return
    report = outcome.details
    if as_json:
        common.print_json({"restore": report, "run": outcome.as_json()})
        return
    lines = [f"restored {source.name} to {target} ({report['method']})",
             f"rows: {row_counts_text(report['row_counts'])}"]
    if report.get("safety_snapshot"):
        lines.append(f"safety snapshot of the previous database: {report['safety_snapshot']}")
    common.print_text("\n".join(lines))


backup_app.command("list", help=with_exit_codes(
    "Every backup: name, created, size, compression, status and what rotation would do; with "
    "--remote, every off-site copy, its proof and what off-site retention would do.",
    LIST_EXIT_CODES))(list_command)
backup_app.command("verify", help=with_exit_codes(
    "Checksum, decompress, integrity check and row counts of one backup (default: the newest) or "
    "all; records the result in the manifest. With --remote: an off-site copy (default: the newest) "
    "or all, downloaded into TCGJOBS_TMPDIR; the result is written beside it in the bucket.",
    VERIFY_EXIT_CODES))(verify_command)
backup_app.command("restore", help=with_exit_codes(
    "Verify a backup, then restore it: atomically to a new file, or through SQLite's backup API over "
    "an existing database (--force), under the card-database lock, after a safety snapshot. With "
    "--remote (or an s3:// URL) the copy is first downloaded into TCGJOBS_TMPDIR.",
    RESTORE_EXIT_CODES))(restore_command)


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")

