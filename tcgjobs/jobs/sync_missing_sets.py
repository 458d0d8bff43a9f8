"""sync-missing-sets: load new and changed sets from the card data into SQLite.

The original inserted missing sets only (by id, one autocommit insert each, ``OR IGNORE`` hiding
NOT NULL violations) and never updated a set. Here every source set is validated, missing sets
are inserted and sets whose mapped columns differ are updated, all in ONE transaction. Sets that
are only in the database are reported and never deleted. A rejected set record is named (file
and id or position) and makes the run exit 1 after the valid sets were written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.registry import JobResult

if TYPE_CHECKING:
    from peewee import SqliteDatabase


def _changed_columns(new: tuple[Any, ...], old: tuple[Any, ...]) -> list[str]:
    from tcgjobs.sources.rows import SET_COLUMNS

    return [column for column, a, b in zip(SET_COLUMNS, new, old, strict=True) if a != b]


def _plan(records: list[dict[str, Any]], stored: dict[str, tuple[Any, ...]]
          ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, list[str]]]:
    """Rows to insert, rows to update, and the changed columns of each updated set."""
    from tcgjobs.sources.rows import set_row

    inserts, updates, changes = [], [], {}
    for record in records:
        row = set_row(record)
        old = stored.get(row[0])
        if old is None:
            inserts.append(row)
        elif row != old:
            updates.append(row)
            changes[row[0]] = _changed_columns(row, old)
    return inserts, updates, changes


def _write(db: SqliteDatabase, inserts: list[tuple[Any, ...]], updates: list[tuple[Any, ...]]) -> None:
    """Insert and update the sets, all in one transaction."""
    from tcgjobs.sources.rows import SET_ROWS

    with db.atomic():
        connection = db.connection()
        connection.executemany(SET_ROWS.insert, inserts)
        connection.executemany(SET_ROWS.update, map(SET_ROWS.update_parameters, updates))


def _warn(read: Any, source: Any, database_only: list[str]) -> None:
    from tcgjobs.sources.runtime import examples

    for rejection in read.rejected:
        logger.error("rejected set record: {}", rejection)
    for set_id in read.duplicates:
        logger.warning("set {} appears more than once in {}; the last record wins", set_id,
                       source.sets_file)
    if database_only:
        logger.warning("{} set(s) are in the database but not in the source (kept, never deleted): {}",
                       len(database_only), examples(database_only))


def run(ctx: JobContext) -> JobResult:
    from tcgjobs.sources.rows import SET_COLUMNS
    from tcgjobs.sources.runtime import fetch, load_source, refuse_sample_mix, select_list, sync_database

    source = load_source(ctx.settings)
    read = source.read_sets()
    db = sync_database(ctx.card_db, ctx.settings.database_path, ctx.dry_run)
    stored: dict[str, tuple[Any, ...]] = {}
    if db is not None:
        columns = select_list(db, "pokemon_card_sets", SET_COLUMNS)
        stored = {row[0]: row for row in fetch(db, f"SELECT {columns} FROM pokemon_card_sets")}
    source_ids = [record["id"] for record in read.sets]
    refuse_sample_mix(source, source_ids, stored)

    inserts, updates, changes = _plan(read.sets, stored)
    database_only = sorted(set(stored) - set(source_ids))
    _warn(read, source, database_only)

    ctx.check_cancelled()
    if not ctx.dry_run and (inserts or updates):
        assert db is not None
        _write(db, inserts, updates)
        ctx.committed(f"{len(inserts)} sets added and {len(updates)} updated, in one transaction",
                      {"sets_added": len(inserts), "sets_updated": len(updates)})
    for row in inserts:
        logger.info("{}set added: {} ({})", "dry run: " if ctx.dry_run else "", row[1], row[0])
    for set_id, changed in changes.items():
        logger.info("{}set updated: {} (changed: {})", "dry run: " if ctx.dry_run else "", set_id,
                    ", ".join(changed))

    metrics: dict[str, float | int] = {
        "sets_checked": len(read.sets) + len(read.rejected),
        "sets_added": len(inserts),
        "sets_updated": len(updates),
        "sets_unchanged": len(read.sets) - len(inserts) - len(updates),
        "sets_rejected": len(read.rejected),
        "sets_database_only": len(database_only),
        "source_duplicates": len(read.duplicates),
    }
    details = {
        "source": source.describe(),
        "add": [row[0] for row in inserts],
        "update": {set_id: columns for set_id, columns in changes.items()},
        "database_only": database_only,
        "rejected": [str(rejection) for rejection in read.rejected],
    }
    verb = "would add" if ctx.dry_run else "added"
    summary = (f"{'dry run: ' if ctx.dry_run else ''}{verb} {len(inserts)}, "
               f"{'would update' if ctx.dry_run else 'updated'} {len(updates)} of "
               f"{len(read.sets)} sets from {source.describe()}")
    if read.rejected:
        return JobResult.failed(
            f"{len(read.rejected)} set record(s) rejected, nothing written from them: "
            + "; ".join(str(r) for r in read.rejected[:5]), metrics=metrics, summary=summary,
            details=details)
    return JobResult(metrics, summary=summary, details=details)
