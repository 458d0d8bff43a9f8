"""``tcgjobs backup list | verify | restore --remote``: the off-site copies.

Imported by :mod:`tcgjobs.cli.backup` only when ``--remote`` (or an ``s3://`` URL) is given, so
the other backup commands never load boto3. Failures follow the rule for remote services: the
store unreachable 69, refusing us 78; with ``--json`` the error is a JSON object on stdout too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from tcgjobs.backups.catalog import list_backups
from tcgjobs.cli import common
from tcgjobs.cli.output import print_table
from tcgjobs.config import Settings
from tcgjobs.errors import ConfigError, ExitCode, JobFailed, TcgjobsError, UsageError
from tcgjobs.offsite.catalog import CORRUPT, VERIFIED, Catalog, RemoteCopy, read_catalog
from tcgjobs.offsite.location import split_remote
from tcgjobs.offsite.store import Store
from tcgjobs.registry import get_job
from tcgjobs.times import utcnow


@contextmanager
def failures(as_json: bool) -> Iterator[None]:
    """A TcgjobsError becomes its exit code and its message (on stderr, and with ``--json`` also
    the JSON error object on stdout: :func:`tcgjobs.cli.common.exit_with`)."""
    try:
        yield
    except TcgjobsError as exc:
        common.exit_with(exc)


def open_store(settings: Settings) -> Store:
    """The configured store. Raises ConfigError when TCGJOBS_OFFSITE_URL is unset."""
    if settings.offsite_url is None:
        raise ConfigError("TCGJOBS_OFFSITE_URL is not set: off-site copies are off (set it to "
                          "s3://bucket/prefix, or give a full s3:// URL to restore)")
    return Store.open(settings)


def _retention(settings: Settings, catalog: Catalog) -> dict[str, dict[str, Any]]:
    """What upload-backups' retention would decide for each copy now."""
    from tcgjobs.offsite.retention import plan_rows, policy_from

    options = settings.job(get_job("upload-backups")).options
    local = {item.name: item for item in list_backups(settings.backup_dir)}
    try:
        rows = plan_rows(catalog, local, policy_from(options), utcnow())
    except ConfigError as exc:
        return {copy.name: {"action": "keep", "reasons": [f"({exc})"]} for copy in catalog.copies}
    return {row["name"]: row for row in rows}


def list_remote(as_json: bool) -> None:
    settings = common.settings()
    with failures(as_json):
        store = open_store(settings)
        catalog = read_catalog(store)
    retention = _retention(settings, catalog)
    if as_json:
        common.print_json({"location": str(store.location), "copies": [
            {**copy.as_json(), "retention": f"{retention[copy.name]['action']}: "
             + ", ".join(retention[copy.name]["reasons"])} for copy in catalog.copies]})
        return
    if not catalog.copies:
        common.print_text(f"no off-site copies in {store.location}")
        return
    rows = [{"name": copy.name, "status": copy.status, "retention": retention[copy.name]["action"],
             "size": f"{copy.size_bytes / 2**20:.1f} MiB",
             "created (UTC)": copy.created_at.strftime("%Y-%m-%d %H:%M")} for copy in catalog.copies]
    if not common.is_terminal():
        columns = ["name", "created (UTC)", "size", "status", "retention"]
        print_table(columns, [[row[column] for column in columns] for row in rows])
        return
    _print_fitted(rows, str(store.location))


def _print_fitted(rows: list[dict[str, str]], title: str) -> None:
    """A table as wide as the terminal that never cuts a name (the one thing to copy into
    ``restore``): size and creation time (also in the name) are left out when they do not fit."""
    from rich import box
    from rich.table import Table

    width = common.stdout().width
    columns = ["name", "status", "retention"]
    for optional in ("size", "created (UTC)"):
        wanted = columns + [optional]
        needed = sum(max(len(c), *(len(row[c]) for row in rows)) + 3 for c in wanted)
        if needed <= width:
            columns = wanted
    table = Table(title=title, box=box.SIMPLE)
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*(row[column] for column in columns))
    common.stdout().print(table)


def verify_remote(name: str | None, all_: bool, as_json: bool) -> None:
    """Download, checksum, decompress, integrity_check and row counts; the new proof is written
    beside each copy. Exit 3 when one is corrupt, 1 when one could not be checked."""
    from tcgjobs.backups.verify import Unverifiable
    from tcgjobs.offsite.prove import prove_in_full, write_proof
    from tcgjobs.offsite.uploads import extra_args

    settings = common.settings()
    results = []
    with failures(as_json):
        if name and all_:
            raise UsageError("give a NAME or --all, not both")
        store = open_store(settings)
        for copy in _chosen(read_catalog(store), name, all_, store):
            try:
                record = prove_in_full(store, copy, settings.temp_dir)
            except Unverifiable as exc:
                results.append({"name": copy.name, "status": "unverifiable", "reason": str(exc)})
                continue
            write_proof(store, copy.name, record, algorithm=settings.offsite_checksum,
                        extra=extra_args(settings))
            results.append({"name": copy.name, "status": record["status"], "reason": record["reason"],
                            "sha256": record["sha256"], "row_counts": record["row_counts"]})
    if as_json:
        common.print_json({"location": str(store.location), "results": results})
    else:
        print_table(["name", "status", "detail"],
                    [(r["name"], r["status"], r["reason"] or "ok") for r in results])
    if any(r["status"] == CORRUPT for r in results):
        common.exit_code(ExitCode.PROBLEMS)
    if any(r["status"] == "unverifiable" for r in results):
        common.exit_code(ExitCode.FAILED)


def _chosen(catalog: Catalog, name: str | None, all_: bool, store: Store) -> list[RemoteCopy]:
    if name:
        copy = catalog.get(name)
        if copy is None:
            raise UsageError(f"no off-site copy {name!r} in {store.location}; see "
                             "`tcgjobs backup list --remote`")
        return [copy]
    if not catalog.copies:
        raise JobFailed(f"no off-site copies in {store.location}")
    return catalog.copies if all_ else [catalog.copies[0]]


def restore_remote(name: str, to: Path | None, force: bool, no_safety_snapshot: bool,
                   timeout: float | None, as_json: bool, restore_from: Callable[..., None]) -> None:
    """Download a copy into TCGJOBS_TMPDIR (after a disk-space check), then exactly the local
    restore, ``restore_from`` (:func:`tcgjobs.cli.backup.restore_from`, passed in so the two
    modules do not import each other: the runner, verification, safety snapshot, card-database
    lock, SQLite's backup API). The download is removed afterwards."""
    from tcgjobs.offsite.fetch import fetched, require_copy

    settings = common.settings()
    if timeout is not None and timeout <= 0:
        raise typer.BadParameter("must be greater than 0", param_hint="--timeout")
    with failures(as_json):
        location, name = split_remote(name, settings.offsite_url)
        target = to if to is not None else settings.database_path
        if target.is_dir():
            raise UsageError(f"{target} is a directory; give the database file's path")
        if target.exists() and not force:  # before the download, not after it
            raise JobFailed(f"{target} exists; refusing to overwrite it without --force")
        store = Store.open(settings, location)
        copy = require_copy(store, name)
        if copy.status != VERIFIED:
            common.stderr().print(f"warning: {copy.name} off-site is {copy.status}; it is verified "
                                  "before the restore all the same", markup=False)
        with fetched(store, copy, settings.temp_dir) as path:
            common.stderr().print(f"downloaded {location.url(name)}", markup=False)
            restore_from(settings, path, to, force, no_safety_snapshot, timeout, as_json)
