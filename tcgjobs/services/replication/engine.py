"""One replication: plan from per-row digests, stage changed rows with COPY, merge, verify.

1. Inspect the primary's schema (:mod:`.schema`); incompatibilities stop the run before any write.
2. In ONE PostgreSQL transaction: create what is missing (the keys and index of a table created
   here come after its rows, in step 4), lock both tables against other writers
   (readers are not blocked).
3. Read SQLite in ONE read transaction (a consistent snapshot), a chunk of rows at a time. Every
   row's (rowid, id, fingerprint) streams into PostgreSQL, which compares them with tcgjobs'
   bookkeeping table (``tcgjobs_replication_rows``: per row, the fingerprint of the SQLite row
   last sent and its canonical digest; :mod:`.bookkeeping`): a row whose fingerprint is
   unchanged and whose id PostgreSQL has is not sent (its digest is known: it is a pure function
   of the raw values), and only the sums of those digests come back. Every other row is read
   again by rowid, mapped and streamed into COPY. The rowids to read and what the run keeps of
   each row it sends live in SQLite scratch tables (:mod:`.scratch`), never in Python: memory
   does not grow with rows.
4. COPY them straight into an empty table, else into a temporary staging table and merge with
   ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE row IS DISTINCT FROM …`` (identical rows are never
   written, so ``updated_at`` does not move); delete rows only PostgreSQL has when asked to;
   update the bookkeeping; add the keys and index of the tables created in step 2; commit.
5. Verify after commit (:mod:`.verification`), from the data itself: row counts and checksums
   of both sides (SQLite's from the snapshot's rows, PostgreSQL's computed by the server over its rows). While SQLite is
   read, a second connection already scans PostgreSQL and computes its checksums; the tables are
   locked against other writers from before that scan until the commit, so the committed state
   is that scan's state plus what this run changed. When the run changed few rows (at most a
   quarter of a table, or 100) and no trigger or rule can change rows its statements do not
   name, the committed checksum is that scan's, minus the digests PostgreSQL computed over the
   changed rows before the change (before the merge; ``DELETE … RETURNING``), plus those it
   computes over the same rows after the commit. Otherwise every row is scanned again after the
   commit, as also when such a result disagrees (the full scan then names the rows). A mismatch
   fails the run naming example ids and forgets their bookkeeping, so the next run sends them
   again. What the verification found is recorded with the tables' row versions at the commit
   (:mod:`.row_versions`): while they stay the same, the next run's early scan reads nothing,
   and its comparison of fingerprints looks up only the rows it does not find unchanged.

Any failure or cancellation before the commit rolls the whole transaction back, so the primary is
exactly as before; one after it leaves the committed replication, which the caller was told about
(``committed``) and the next run verifies.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from loguru import logger
from peewee import SqliteDatabase

from tcgjobs.errors import JobFailed, SchemaError, first_line
from tcgjobs.services.replication import bookkeeping, row_versions, schema, verification
from tcgjobs.services.replication.bookkeeping import Primary
from tcgjobs.services.replication.digests import (
    EXAMPLES,
    ID_BATCH,
    SUMS,
    Checksum,
    Comparison,
    Totals,
    load_primary_digests,
    plus,
    totals_of,
)
from tcgjobs.services.replication.pgcopy import CoercedValues, copy_lines
from tcgjobs.services.replication.pgrows import CARDS, SETS, Table, canonical_sql
from tcgjobs.services.replication.scratch import Scratch
from tcgjobs.services.replication.source import (
    Recorder,
    SourceRow,
    changed_rows,
    fingerprint_lines,
    source_rows,
)


class UnverifiedCommit(JobFailed):
    """The run committed its changes, but the verification after the commit could not run."""


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
    coerced: CoercedValues = field(default_factory=CoercedValues)  # replicated as the columns can

    def metrics(self, prefix: str) -> dict[str, int]:
        return {f"{prefix}_inserted": self.inserted, f"{prefix}_updated": self.updated,
                f"{prefix}_unchanged": self.unchanged, f"{prefix}_deleted": self.deleted,
                f"{prefix}_skipped": len(self.skipped),
                f"{prefix}_postgres_only": self.primary_only, f"{prefix}_coerced": self.coerced.rows}

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


#: The transaction-level advisory lock every (non-dry) run takes first, before it inspects the
#: schema: two runs from different hosts would otherwise both plan to create the missing tables.
RUN_LOCK = 0x7463676A6F6273  # "tcgjobs"

#: A run that changes more than this share of a table's rows (and more than DELTA_MIN_ROWS)
#: scans it again after the commit: reading the changed rows by id would cost about as much.
DELTA_LIMIT = 0.25
DELTA_MIN_ROWS = 100


def _few(changed: int, source_rows: int) -> bool:
    return changed <= max(DELTA_MIN_ROWS, DELTA_LIMIT * source_rows)


@dataclass
class _Staged:
    stats: TableStats
    rows: Recorder  # what the run keeps of the rows it sends
    primary: Primary  # what PostgreSQL has: its rows, their bookkeeping, the unchanged ones
    #: The scratch table of the rows PostgreSQL did not find unchanged (rowid_, id, in_primary);
    #: None when PostgreSQL's table was empty (every row is new).
    changed: str | None = None
    #: PostgreSQL's totals of the rows this run changed, as they were before (None: not kept,
    #: the verification scans the table again).
    before: Totals | None = None

    def few_changes(self, more: int = 0) -> bool:
        return _few(self.rows.sent + more, self.stats.source_rows)


def _classify(db: SqliteDatabase, table: Table, staged: _Staged, valid_sets: set[str] | None,
              check: Callable[[], None], early: verification.EarlyScan | None) -> Iterator[str]:
    """Classify every SQLite row of ``table`` into ``staged``; yield COPY lines of rows to send.
    Rows PostgreSQL lacks are sent whatever the bookkeeping says. ``early``: the early
    verification, which also knows whether the table is as the last run left it."""
    stats, recorder, primary = staged.stats, staged.rows, staged.primary
    check()
    rows: Iterator[SourceRow]
    if primary.has_rows:  # PostgreSQL compares every row's fingerprint with the bookkeeping
        changed = recorder.scratch.table(f"changed_{table.name}",
                                         "rowid_ INTEGER, id TEXT, in_primary INTEGER")
        known = early.kept(table, check) if early is not None else None
        primary.classify(fingerprint_lines(db, table, valid_sets, primary.remembered, check),
                         recorder.scratch, changed, known)
        recorder.add_unchanged(primary.unchanged)
        staged.changed = changed
        rows = changed_rows(db, table, changed, check) if recorder.unchanged else source_rows(
            db, table, check)
    else:
        rows = source_rows(db, table, check)
    for row in rows:
        stats.source_rows += 1
        if row.digest is None:
            stats.skipped[row.id] = row.reason or "cannot be mapped"
            continue
        if valid_sets is not None and row.set_id not in valid_sets:
            stats.skipped[row.id] = f"its set {row.set_id!r} is not replicated"
            continue
        if row.coerced:  # no fingerprint in the bookkeeping: read (and reported) on every run
            stats.coerced.add(row.id, row.coerced)
        recorder.add(row.id, "" if row.coerced else row.fingerprint or "", row.digest, True)
        assert row.line is not None  # a row with a digest always has its COPY line
        yield row.line
    recorder.flush()
    stats.source_rows += recorder.unchanged
    stats.unchanged += recorder.unchanged


def _primary_only(staged: _Staged) -> None:
    """Count (and keep the ids of) the rows only PostgreSQL has, once the table was classified
    and its COPY is over (the query runs on the same connection)."""
    stats = staged.stats
    only = [key for key in staged.primary.only_here() if key not in stats.skipped]
    stats.primary_only, stats.primary_only_ids = len(only), only


def _copy(cursor: Any, target: str, table: Table, lines: Iterator[str]) -> None:
    """COPY ``lines`` into ``target`` (``table``'s columns)."""
    copy_lines(cursor, f"COPY {target} ({', '.join(table.names)}) FROM STDIN", lines)


def _stage_sql(table: Table) -> str:
    columns = ", ".join(f"{c.name} {c.pg_type}" for c in table.columns)
    return f"CREATE TEMP TABLE stage_{table.name} ({columns}) ON COMMIT DROP"


def _merge_sql(table: Table) -> str:
    names = table.names
    column_list = ", ".join(names)
    updates = ", ".join([f"{n} = EXCLUDED.{n}" for n in names if n != "id"]
                        + [f"{n} = CURRENT_TIMESTAMP" for n in table.touched])
    compared = ", ".join(f"t.{n}" for n in names if n != "id")
    incoming = ", ".join(f"EXCLUDED.{n}" for n in names if n != "id")
    return (f"WITH merged AS (INSERT INTO {table.name} AS t ({column_list}) "
            f"SELECT {column_list} FROM stage_{table.name} "
            f"ON CONFLICT (id) DO UPDATE SET {updates} "
            f"WHERE ({compared}) IS DISTINCT FROM ({incoming}) "
            "RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged")


def _send(cursor: Any, table: Table, lines: Iterator[str], staged: _Staged, empty: bool,
          keep_before: bool) -> None:
    """COPY the rows to send: straight into an empty table, else into a staging table and merge.

    ``keep_before``: record PostgreSQL's totals of the rows about to change (for the
    verification), unless the run changes too many of them for that to pay."""
    first = next(lines, None)
    if first is None:  # nothing to send (the generator has run to its end)
        staged.before = (0, 0, 0) if keep_before else None
        return
    lines = itertools.chain((first,), lines)
    if empty:
        _copy(cursor, table.name, table, lines)
        staged.stats.inserted = staged.rows.sent
        staged.before = (0, 0, 0) if keep_before and staged.few_changes() else None
        return
    cursor.execute(_stage_sql(table))
    _copy(cursor, f"stage_{table.name}", table, lines)
    if keep_before and staged.few_changes():
        staged.before = totals_of(cursor, table, f"JOIN stage_{table.name} s ON s.id = t.id")
    cursor.execute(_merge_sql(table))
    inserted, updated = cursor.fetchone()
    stats = staged.stats
    stats.inserted, stats.updated = inserted, updated
    stats.unchanged += staged.rows.sent - inserted - updated


def _classify_dry_run(cursor: Any, table: Table, staged: _Staged, exists: bool,
                      absent: list[str]) -> None:
    """Counts for a dry run: compare the rows it would send with PostgreSQL's digests."""
    stats, rows = staged.stats, staged.rows
    if not rows.sent:
        return
    if staged.changed is None:  # PostgreSQL's table is empty or missing: every row is new
        stats.inserted += rows.sent
        return
    current = load_primary_digests(cursor, table, rows.scratch, absent=absent) if exists else None
    differs = "c.digest IS NOT r.digest" if current else "1"
    inserted, updated = rows.scratch.execute(
        f"SELECT count(*) FILTER (WHERE NOT p.in_primary), "
        f"count(*) FILTER (WHERE p.in_primary AND {differs}) "
        f"FROM {rows.name} r JOIN (SELECT DISTINCT id, in_primary FROM {staged.changed}) p "
        f"ON p.id = r.id " + (f"LEFT JOIN {current} c ON c.id = r.id " if current else "")
        + "WHERE r.sent").fetchone()
    stats.inserted += inserted
    stats.updated += updated
    stats.unchanged += rows.sent - inserted - updated


def _delete(cursor: Any, staged: dict[str, _Staged]) -> None:
    """Delete the rows only PostgreSQL has (sets only once no card refers to them), keeping
    their totals as they were for the verification."""
    cards, sets = staged[CARDS.name], staged[SETS.name]
    for start in range(0, len(cards.stats.primary_only_ids), ID_BATCH):
        cursor.execute(f"WITH gone AS (DELETE FROM pokemon_cards t WHERE id = ANY(%s) "
                       f"RETURNING md5({canonical_sql(CARDS, 't')}) AS d) SELECT {SUMS} FROM gone",
                       (cards.stats.primary_only_ids[start:start + ID_BATCH],))
        count, first, second = cursor.fetchone()
        _deleted(cards, (count, int(first), int(second)))
    if sets.stats.primary_only_ids:
        cursor.execute(f"DELETE FROM pokemon_card_sets t WHERE id = ANY(%s) AND NOT EXISTS "
                       f"(SELECT 1 FROM pokemon_cards c WHERE c.set_id = t.id) "
                       f"RETURNING id, md5({canonical_sql(SETS, 't')})",
                       (sets.stats.primary_only_ids,))
        rows = cursor.fetchall()
        checksum = Checksum()
        for _, digest in rows:
            checksum.add(digest)
        _deleted(sets, checksum.totals)
        gone = {key for key, _ in rows}
        for key in sets.stats.primary_only_ids:
            if key not in gone:
                logger.warning("set {} is only in PostgreSQL but still has cards there; kept", key)


def _deleted(staged: _Staged, totals: Totals) -> None:
    staged.stats.deleted += totals[0]
    if staged.before is not None:
        if staged.few_changes(staged.stats.deleted):
            staged.before = plus(staged.before, totals)
        else:
            staged.before = None


def replicate(connect: Callable[[], Any], db: SqliteDatabase, *, delete: bool, dry_run: bool,
              check: Callable[[], None],
              committed: Callable[[Outcome], None] = lambda outcome: None) -> Outcome:
    """Replicate sets and cards from ``db`` into the primary (see the module docstring).

    ``connect`` opens a connection to the primary (called once, and once more for the early
    verification). ``committed`` is told right after the COMMIT, before the verification, so
    that a run stopped from then on reports what it committed. A run waits for any other run to
    commit first (:data:`RUN_LOCK`). Raises
    SchemaError listing every incompatibility of the existing schema; psycopg2 errors (including
    a cancelled statement) propagate after the rollback.
    """
    connection = connect()
    scratch = Scratch(db)
    staged: dict[str, _Staged] = {}
    speculation: verification.EarlyScan | None = None
    try:
        if not dry_run:
            _wait_for_other_runs(connection)
        plan = schema.inspect(connection)  # in the same transaction, under that lock
        if plan.problems:
            raise SchemaError([f"PostgreSQL schema is incompatible: {p}" for p in plan.problems])
        with connection.cursor() as cursor:
            if not dry_run:
                speculation = _prepare(cursor, plan, connect)
            if speculation is not None:  # the server scans while the bookkeeping streams
                speculation.start()
            primary = bookkeeping.load(cursor, plan, (SETS, CARDS))
            check()
            # The changed rows' totals are only worth keeping when the early scan's result can
            # be used: no trigger or rule may change rows the run's statements do not name.
            keep_before = speculation is not None and not plan.row_hooks
            _read_snapshot(db, cursor if not dry_run else None, scratch, primary, staged, delete,
                           check, keep_before, speculation)
            if dry_run:
                return _dry_run_outcome(cursor, plan, staged, delete)
            if delete:
                _delete(cursor, staged)
            if speculation is not None and all(i.before is None for i in staged.values()):
                speculation.abandon()
            bookkeeping.record(cursor, {n: (i.rows, i.primary) for n, i in staged.items()},
                               created=schema.MEMO_TABLE in plan.missing_tables)
            for statement in plan.after_load:
                logger.info("schema: {}", statement.split("(")[0].strip())
                cursor.execute(statement)
            check()
            versions = _row_versions(cursor, staged, speculation, check)
            if speculation is not None:
                speculation.join()
        connection.commit()
        sets, cards = staged[SETS.name].stats, staged[CARDS.name].stats
        outcome = Outcome({"sets": sets, "cards": cards}, plan.actions)
        committed(outcome)
        early = speculation.found if speculation is not None else None
        try:
            outcome.verification, known = verification.verify(connection, _sent(staged, delete),
                                                              early, check)
        except Exception as exc:  # a cancellation is still reported as one by the runner
            raise UnverifiedCommit("the replication was committed, but its verification could "
                                   f"not run: {first_line(exc)}") from exc
        corrected = True
        if not outcome.verified:
            try:
                bookkeeping.forget(connection, outcome.verification)
            except Exception as exc:  # noqa: BLE001 - the differences found are still the run's result
                logger.warning("could not drop the bookkeeping of the rows that differ ({}); the "
                               "next run finds them again and retries", exc)
                corrected = False
        # Recorded last, once the bookkeeping holds only rows PostgreSQL has (which a run that
        # finds the row versions unchanged relies on); otherwise what was recorded is dropped.
        row_versions.record(connection, {name: (versions[name] if corrected else None, totals)
                                         for name, totals in known.items()})
        return outcome
    except BaseException:
        if speculation is not None:  # its scan would outlive the run on the server
            speculation.abandon()
        with suppress(Exception):
            connection.rollback()
        raise
    finally:
        connection.close()
        scratch.close()


def _row_versions(cursor: Any, staged: dict[str, _Staged], early: verification.EarlyScan | None,
                  check: Callable[[], None]) -> dict[str, str | None]:
    """Per table, the signature of its row versions at this transaction's end, which the
    tables' lock keeps until the commit: what the verification finds is recorded with it. A
    table the run wrote nothing to still has the one the early scan saw. A signature the server
    cannot compute is None (nothing is recorded; the next run scans), never the run's failure."""
    versions: dict[str, str | None] = {}
    for table in (SETS, CARDS):
        item = staged[table.name]
        if (early is not None and table.name in early.signatures and not item.rows.sent
                and not item.stats.deleted):
            versions[table.name] = early.signatures[table.name]
            continue
        cursor.execute("SAVEPOINT tcgjobs_row_versions")
        try:
            versions[table.name] = row_versions.signature(cursor, table)
        except psycopg2.Error as exc:
            cursor.execute("ROLLBACK TO SAVEPOINT tcgjobs_row_versions")
            check()  # a cancelled run stops here
            logger.warning("the row versions of {} could not be read ({}); the next replication "
                           "scans its rows", table.name, first_line(exc))
            versions[table.name] = None
        cursor.execute("RELEASE SAVEPOINT tcgjobs_row_versions")
    return versions


def _wait_for_other_runs(connection: Any) -> None:
    """Take :data:`RUN_LOCK` for this transaction, waiting (and saying so) while another
    replication, from wherever it runs, holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (RUN_LOCK,))
        if not cursor.fetchone()[0]:
            logger.info("another replication into this primary is running; waiting for it to "
                        "finish (at most the statement timeout)")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (RUN_LOCK,))


def _prepare(cursor: Any, plan: schema.SchemaPlan,
             connect: Callable[[], Any]) -> verification.EarlyScan | None:
    """Create what is missing, lock the tables against other writers (readers still read) and,
    when the tables already existed, prepare the early verification (started by the caller)."""
    for statement in plan.ddl:
        logger.info("schema: {}", statement.split("(")[0].strip())
        cursor.execute(statement)
    cursor.execute(f"LOCK TABLE pokemon_card_sets, pokemon_cards, {schema.MEMO_TABLE} "
                   "IN SHARE ROW EXCLUSIVE MODE")
    if plan.ddl:
        return None
    return verification.EarlyScan(connect)


def _dry_run_outcome(cursor: Any, plan: schema.SchemaPlan, staged: dict[str, _Staged],
                     delete: bool) -> Outcome:
    for table in (SETS, CARDS):
        _classify_dry_run(cursor, table, staged[table.name], table.name not in plan.missing_tables,
                          list(plan.absent.get(table.name, ())))
    sets, cards = staged[SETS.name].stats, staged[CARDS.name].stats
    if delete:
        sets.deleted, cards.deleted = sets.primary_only, cards.primary_only
    cursor.connection.rollback()
    return Outcome({"sets": sets, "cards": cards}, plan.actions, dry_run=True)


def _read_snapshot(db: SqliteDatabase, cursor: Any | None, scratch: Scratch,
                   primary: dict[str, Primary], staged: dict[str, _Staged], delete: bool,
                   check: Callable[[], None], keep_before: bool,
                   early: verification.EarlyScan | None) -> None:
    """Classify both tables from one SQLite read transaction, sending rows through ``cursor``
    (None: a dry run, which only counts); ``keep_before``: see :func:`_send`; ``early``: the
    early verification, if it runs."""
    with db.atomic():  # one read transaction: sets and cards come from the same snapshot
        for table in (SETS, CARDS):
            staged[table.name] = item = _Staged(TableStats(table.name), Recorder(scratch, table),
                                                primary[table.name])
            valid_sets = None
            if table is CARDS:
                valid_sets = staged[SETS.name].rows.ids() | set(
                    staged[SETS.name].primary.unchanged_ids())
                if not delete:
                    valid_sets |= set(staged[SETS.name].stats.primary_only_ids)
            lines = _classify(db, table, item, valid_sets, check, early)
            if cursor is None:
                for _ in lines:
                    pass
            else:
                _send(cursor, table, lines, item, not item.primary.has_rows, keep_before)
            _primary_only(item)


def _sent(staged: dict[str, _Staged], delete: bool) -> list[verification.Sent]:
    """What the verification needs of each table; it leaves out skipped rows and the
    PostgreSQL-only rows that were kept."""
    sent = []
    for table in (SETS, CARDS):
        item = staged[table.name]
        exclude = list(item.stats.skipped)
        if not delete or table is SETS:
            exclude += item.stats.primary_only_ids
        digests = item.rows.digests
        digests.complete = functools.partial(item.primary.unchanged_digests,
                                             scratch=item.rows.scratch, target=item.rows.name)
        sent.append(verification.Sent(table, digests, exclude, item.rows.sent_ids, item.before))
    return sent
