"""sync-missing-sets: load new and changed sets from the card data into SQLite.

The original inserted missing sets only (by id, one autocommit insert each, ``OR IGNORE`` hiding
NOT NULL violations) and never updated a set. Here every source set is validated, missing sets
are inserted and sets whose mapped columns differ are updated, all in ONE transaction. Sets that
are only in the database are reported and never deleted. A rejected set record is named (file
and id or position) and makes the run exit 1 after the valid sets were written. An update that
would empty a column most of the stored sets hold (a field renamed upstream:
:mod:`tcgjobs.sources.drift`) writes nothing and exits 1, unless that field is accepted
(``--accept-drift``); fields under names no column has are reported (kept in ``extra``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.registry import JobResult

if TYPE_CHECKING:
    from peewee import SqliteDatabase

    from tcgjobs.sources.layouts import SetsRead, Source


def _changed_columns(new: tuple[Any, ...], old: tuple[Any, ...]) -> list[str]:
    from tcgjobs.sources.rows import SET_COLUMNS

    return [column for column, a, b in zip(SET_COLUMNS, new, old, strict=True) if a != b]


def _plan(rows: list[tuple[Any, ...]], stored: dict[str, tuple[Any, ...]]
          ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, list[str]]]:
    """Rows to insert, rows to update, and the changed columns of each updated set."""
    inserts, updates, changes = [], [], {}
    for row in rows:
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


def _drift(ctx: JobContext, rows: list[tuple[Any, ...]], stored: dict[str, tuple[Any, ...]],
           updates: list[tuple[Any, ...]]) -> str | None:
    """Why the sets must not be written (their update would empty a column most stored sets
    hold, and that field is not accepted), or None. Accepted drift is logged."""
    from tcgjobs.sources.drift import drifts, filled, held, watched_columns
    from tcgjobs.sources.rows import SET_ROWS
    from tcgjobs.sources.runtime import accepted_drift

    accepted = accepted_drift(ctx.options["accept_drift"], SET_ROWS, ctx.job.env_prefix + "ACCEPT_DRIFT")
    if not updates:  # inserts alone never empty a stored row
        return None
    watched = watched_columns(SET_ROWS)
    found = drifts(watched, len(stored), held(stored.values(), watched), len(rows), filled(rows, watched))
    for drift in found:
        if drift.accepted_by(accepted):
            logger.warning("accepted drift (accept_drift), the column is emptied: {}", drift)
    refused = [drift for drift in found if not drift.accepted_by(accepted)]
    if not refused:
        return None
    return ("nothing written: the update would empty what most stored sets hold (drift: a field "
            "renamed upstream?): " + "; ".join(map(str, refused)) + ". Accept with --accept-drift "
            f"{','.join(d.field for d in refused)} ({ctx.job.env_prefix}ACCEPT_DRIFT)")


def run(ctx: JobContext) -> JobResult:
    from tcgjobs.sources.drift import unknown_fields
    from tcgjobs.sources.rows import SET_COLUMNS, set_row
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

    rows = [set_row(record) for record in read.sets]
    inserts, updates, changes = _plan(rows, stored)
    unchanged = len(rows) - len(inserts) - len(updates)
    database_only = sorted(set(stored) - set(source_ids))
    _warn(read, source, database_only)
    refusal = _drift(ctx, rows, stored, updates)
    if refusal is not None:
        logger.error("{}{}", "dry run: " if ctx.dry_run else "", refusal)
        inserts, updates, changes = [], [], {}

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
    return _result(ctx, source, read, _Outcome(inserts, updates, changes, unchanged, database_only,
                                                refusal, unknown_fields(rows, SET_COLUMNS.index("extra"))))


@dataclass
class _Outcome:
    """What the run did: the rows inserted and updated (none when refused for drift) with each
    update's changed columns, how many sets were unchanged, the database-only sets, why it was
    refused (drift) and the unknown fields of the records."""

    inserts: list[tuple[Any, ...]]
    updates: list[tuple[Any, ...]]
    changes: dict[str, list[str]]
    unchanged: int
    database_only: list[str]
    refusal: str | None
    unknown: Counter[str]


def _result(ctx: JobContext, source: Source, read: SetsRead, done: _Outcome) -> JobResult:
    from tcgjobs.sources.runtime import report_unknown_fields

    metrics: dict[str, float | int] = {
        "sets_checked": len(read.sets) + len(read.rejected),
        "sets_added": len(done.inserts),
        "sets_updated": len(done.updates),
        "sets_unchanged": done.unchanged,
        "sets_rejected": len(read.rejected),
        "sets_database_only": len(done.database_only),
        "source_duplicates": len(read.duplicates),
        "sets_drifted": int(done.refusal is not None),
        "unknown_fields": len(done.unknown),
    }
    details = {
        "source": source.describe(),
        "add": [row[0] for row in done.inserts],
        "update": done.changes,
        "database_only": done.database_only,
        "rejected": [str(rejection) for rejection in read.rejected],
        "drifted": done.refusal,
        "unknown_fields": dict(done.unknown),
    }
    verb = "would add" if ctx.dry_run else "added"
    summary = (f"{'dry run: ' if ctx.dry_run else ''}{verb} {len(done.inserts)}, "
               f"{'would update' if ctx.dry_run else 'updated'} {len(done.updates)} of "
               f"{len(read.sets)} sets from {source.describe()}")
    summary += report_unknown_fields("set", done.unknown)
    if done.refusal is not None:
        return JobResult.failed(done.refusal, metrics=metrics, summary=summary, details=details)
    if read.rejected:
        return JobResult.failed(
            f"{len(read.rejected)} set record(s) rejected, nothing written from them: "
            + "; ".join(str(r) for r in read.rejected[:5]), metrics=metrics, summary=summary,
            details=details)
    return JobResult(metrics, summary=summary, details=details)
