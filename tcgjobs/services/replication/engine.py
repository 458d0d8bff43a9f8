"""One replication: plan from per-row digests, stage changed rows with COPY, merge, verify.

1. Inspect the primary's schema (:mod:`.schema`); incompatibilities stop the run before any write.
2. In ONE PostgreSQL transaction: create what is missing, lock both tables against other writers
   (readers are not blocked), and read PostgreSQL's per-row digests computed by the server.
3. Read SQLite in ONE read transaction (a consistent snapshot): map every row, compute its digest,
   and write only new or changed rows to a COPY file.
4. COPY them into a temporary staging table and merge with ``INSERT … ON CONFLICT (id) DO UPDATE …
   WHERE row IS DISTINCT FROM …`` (identical rows are never written, so ``updated_at`` does not
   move); delete rows only PostgreSQL has when asked to; commit.
5. Verify after commit: row counts and checksums of both sides, from the data itself.

Any failure or cancellation before the commit rolls the whole transaction back, so the primary is
exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from loguru import logger
from peewee import SqliteDatabase

from tcgjobs.errors import SchemaError
from tcgjobs.services.replication import schema
from tcgjobs.services.replication.digests import (EXAMPLES, Comparison, compare, primary_digests,
                                                  source_rows)
from tcgjobs.services.replication.mapping import CARDS, SETS, Table, copy_line
from tcgjobs.services.tempfiles import temp_path


@dataclass
class TableStats:
    """What replication did (or would do) to one table."""

    table: str
    source_rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    primary_only: int = 0  # rows only PostgreSQL has (kept unless deletion is on)
    skipped: dict[str, str] = field(default_factory=dict)  # id → reason
    primary_only_ids: list[str] = field(default_factory=list)

    def metrics(self, prefix: str) -> dict[str, int]:
        return {f"{prefix}_inserted": self.inserted, f"{prefix}_updated": self.updated,
                f"{prefix}_unchanged": self.unchanged, f"{prefix}_deleted": self.deleted,
                f"{prefix}_skipped": len(self.skipped),
                f"{prefix}_postgres_only": self.primary_only}

    def skipped_examples(self) -> list[str]:
        return [f"{key}: {reason}" for key, reason in list(self.skipped.items())[:EXAMPLES]]


@dataclass
class Outcome:
    stats: dict[str, TableStats]
    schema_actions: list[str]
    verification: list[Comparison] = field(default_factory=list)
    dry_run: bool = False

    @property
    def verified(self) -> bool:
        return all(c.equal for c in self.verification)


@dataclass
class _Staged:
    stats: TableStats
    digests: dict[str, str]
    path: Path
    rows: int = 0


def _stage_table(db: SqliteDatabase, table: Table, primary: dict[str, str], out: TextIO,
                 valid_sets: set[str] | None, check: Callable[[], None]) -> tuple[TableStats, dict[str, str]]:
    """Classify every SQLite row of ``table`` against ``primary`` digests; write changed rows."""
    stats = TableStats(table.name)
    digests: dict[str, str] = {}
    set_index = table.names.index("set_id") if valid_sets is not None else -1
    for number, row in enumerate(source_rows(db, table)):
        if number % 2000 == 0:
            check()
        stats.source_rows += 1
        if row.digest is None:
            stats.skipped[row.id] = row.reason or "cannot be mapped"
            continue
        if valid_sets is not None and row.values[set_index] not in valid_sets:
            stats.skipped[row.id] = f"its set {row.values[set_index]!r} is not replicated"
            continue
        digests[row.id] = row.digest
        known = primary.get(row.id)
        if known == row.digest:
            stats.unchanged += 1
            continue
        if known is None:
            stats.inserted += 1
        else:
            stats.updated += 1
        out.write(copy_line(table, row.values, row.raw))
    only = sorted(set(primary) - set(digests) - set(stats.skipped))
    stats.primary_only, stats.primary_only_ids = len(only), only
    return stats, digests


def _stage_sql(table: Table) -> str:
    columns = ", ".join(f"{c.name} {c.pg_type}" for c in table.columns)
    return f"CREATE TEMP TABLE stage_{table.name} ({columns}) ON COMMIT DROP"


def _merge_sql(table: Table) -> str:
    names = table.names
    column_list = ", ".join(names)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != "id")
    if table is CARDS:
        updates += ", updated_at = CURRENT_TIMESTAMP"
    compared = ", ".join(f"t.{n}" for n in names if n != "id")
    incoming = ", ".join(f"EXCLUDED.{n}" for n in names if n != "id")
    return (f"WITH merged AS (INSERT INTO {table.name} AS t ({column_list}) "
            f"SELECT {column_list} FROM stage_{table.name} "
            f"ON CONFLICT (id) DO UPDATE SET {updates} "
            f"WHERE ({compared}) IS DISTINCT FROM ({incoming}) "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged")


def _apply(cursor: Any, table: Table, staged: _Staged) -> None:
    cursor.execute(_stage_sql(table))
    with staged.path.open("r", encoding="utf-8") as source:
        cursor.copy_expert(f"COPY stage_{table.name} ({', '.join(table.names)}) FROM STDIN", source)
    cursor.execute(_merge_sql(table))
    inserted, updated = cursor.fetchone()
    stats = staged.stats
    if (inserted, updated) != (stats.inserted, stats.updated):
        logger.warning("{}: planned {} inserts and {} updates, merged {} and {}", table.name,
                       stats.inserted, stats.updated, inserted, updated)
        stats.unchanged += stats.inserted + stats.updated - inserted - updated
        stats.inserted, stats.updated = inserted, updated


def _delete(cursor: Any, cards: TableStats, sets: TableStats) -> None:
    if cards.primary_only_ids:
        cursor.execute("DELETE FROM pokemon_cards WHERE id = ANY(%s)", (cards.primary_only_ids,))
        cards.deleted = cursor.rowcount
    if sets.primary_only_ids:
        cursor.execute("DELETE FROM pokemon_card_sets s WHERE id = ANY(%s) AND NOT EXISTS "
                       "(SELECT 1 FROM pokemon_cards c WHERE c.set_id = s.id) RETURNING id",
                       (sets.primary_only_ids,))
        gone = {row[0] for row in cursor.fetchall()}
        sets.deleted = len(gone)
        for key in sets.primary_only_ids:
            if key not in gone:
                logger.warning("set {} is only in PostgreSQL but still has cards there; kept", key)


def replicate(connection: Any, db: SqliteDatabase, *, temp_dir: Path, delete: bool,
              dry_run: bool, check: Callable[[], None]) -> Outcome:
    """Replicate sets and cards from ``db`` into ``connection``'s database (see module doc).

    Raises SchemaError listing every incompatibility of the existing schema; psycopg2 errors
    (including a cancelled statement) propagate after the transaction is rolled back.
    """
    plan = schema.inspect(connection)
    if plan.problems:
        connection.rollback()
        raise SchemaError([f"PostgreSQL schema is incompatible: {p}" for p in plan.problems])
    staged: dict[str, _Staged] = {}
    try:
        with connection.cursor() as cursor:
            if not dry_run:
                for statement in plan.ddl:
                    logger.info("schema: {}", statement.split("(")[0].strip())
                    cursor.execute(statement)
                cursor.execute("LOCK TABLE pokemon_card_sets, pokemon_cards "
                               "IN SHARE ROW EXCLUSIVE MODE")
            primary = {t.name: ({} if t.name in plan.missing_tables else primary_digests(cursor, t))
                       for t in (SETS, CARDS)}
            check()
            _read_snapshot(db, primary, staged, temp_dir, delete, check)
            sets, cards = staged[SETS.name].stats, staged[CARDS.name].stats
            if dry_run:
                if delete:
                    sets.deleted, cards.deleted = sets.primary_only, cards.primary_only
                connection.rollback()
                return Outcome({"sets": sets, "cards": cards}, plan.actions, dry_run=True)
            for table in (SETS, CARDS):
                check()
                _apply(cursor, table, staged[table.name])
            if delete:
                _delete(cursor, cards, sets)
            check()
        connection.commit()
    except BaseException:
        with suppress(Exception):
            connection.rollback()
        raise
    finally:
        for item in staged.values():
            item.path.unlink(missing_ok=True)
    outcome = Outcome({"sets": sets, "cards": cards}, plan.actions)
    outcome.verification = _verify(connection, staged, delete)
    return outcome


def _read_snapshot(db: SqliteDatabase, primary: dict[str, dict[str, str]],
                   staged: dict[str, _Staged], temp_dir: Path, delete: bool,
                   check: Callable[[], None]) -> None:
    """Classify both tables from one SQLite read transaction, writing COPY files."""
    with db.atomic():  # one read transaction: sets and cards come from the same snapshot
        for table in (SETS, CARDS):
            path = temp_path(temp_dir, f"replicate-{table.name}", ".copy")
            staged[table.name] = _Staged(TableStats(table.name), {}, path)
            valid_sets = None
            if table is CARDS:
                valid_sets = set(staged[SETS.name].digests)
                if not delete:
                    valid_sets |= set(staged[SETS.name].stats.primary_only_ids)
            with path.open("w", encoding="utf-8") as out:
                stats, digests = _stage_table(db, table, primary[table.name], out, valid_sets, check)
            staged[table.name].stats, staged[table.name].digests = stats, digests


def _verify(connection: Any, staged: dict[str, _Staged], delete: bool) -> list[Comparison]:
    """Compare both sides after the commit, excluding skipped rows and kept PostgreSQL-only rows."""
    results = []
    connection.set_session(readonly=True)
    try:
        with connection.cursor() as cursor:
            for table in (SETS, CARDS):
                item = staged[table.name]
                exclude = list(item.stats.skipped)
                if not delete or table is SETS:
                    exclude += item.stats.primary_only_ids
                results.append(compare(cursor, table, item.digests, exclude))
        connection.rollback()
    finally:
        connection.set_session(readonly=False)
    return results
