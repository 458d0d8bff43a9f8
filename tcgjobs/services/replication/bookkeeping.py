"""tcgjobs' bookkeeping in the primary: which SQLite row version was last sent.

``tcgjobs_replication_rows`` holds, per replicated row, the fingerprint of its SQLite values when
it was last sent and its canonical digest: exactly the rows the last run found unchanged or
sent, all of which PostgreSQL then had. It decides which rows a run sends and, while the table's
row versions are as the last run recorded them (:mod:`.row_versions`), which rows PostgreSQL
has; the verification never reads it. It stays where it is: a run streams every SQLite row's (rowid, id,
fingerprint) into a temporary table beside it with ``COPY`` and PostgreSQL compares them there
(:meth:`Primary.classify`), so what comes back is the rowids of the rows to read in full and
the sums of the unchanged rows' digests, never a row per unchanged row. It is written in the
same transaction as the data, so it cannot disagree with what was committed; rows that fail
verification are forgotten, so the next run sends them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tcgjobs.services.replication import schema
from tcgjobs.services.replication.digests import SUMS, Comparison, Totals
from tcgjobs.services.replication.pgcopy import copy_lines
from tcgjobs.services.replication.pgrows import Table
from tcgjobs.services.replication.row_versions import Known
from tcgjobs.services.replication.scratch import Scratch
from tcgjobs.services.replication.source import COPY_ESCAPES, Recorder

#: PostgreSQL's ``work_mem`` while the fingerprints are compared: its hash joins hold every id
#: and fingerprint of the cards (about 30 MB at ten times today's data).
COMPARE_WORK_MEM = "64MB"


class Primary:
    """What PostgreSQL has of one table of the run: whether it has rows and bookkeeping, and,
    once :meth:`classify` ran, which of SQLite's rows it has and which it has unchanged (in the
    temporary table :attr:`rows`, which lasts as long as the connection: the verification may
    need it after the commit)."""

    def __init__(self, cursor: Any, table: Table, plan: schema.SchemaPlan) -> None:
        self.cursor, self.table = cursor, table
        self.rows = f"tcgjobs_classified_{table.name}"
        self.unchanged: Totals = (0, 0, 0)
        self.classified = self._completed = False
        self._matched = 0  # how many of PostgreSQL's rows SQLite has
        self._count: int | None = None  # how many rows PostgreSQL has, when known
        self._incoming = f"tcgjobs_fingerprints_{table.name}"
        #: Whether the bookkeeping holds entries of the table (when the table is empty too).
        self.bookkept = False
        if schema.MEMO_TABLE not in plan.missing_tables:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {schema.MEMO_TABLE} WHERE table_name = %s)",
                           (table.name,))
            self.bookkept = bool(cursor.fetchone()[0])
        self.has_rows = False
        if table.name not in plan.missing_tables:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table.name})")
            self.has_rows = bool(cursor.fetchone()[0])
        #: Whether the fingerprints are compared with the bookkeeping.
        self.remembered = self.has_rows and self.bookkept

    def classify(self, lines: Iterator[str], scratch: Scratch, changed: str,
                 known: Known | None = None) -> None:
        """Compare SQLite's rows (``lines`` of :func:`.source.fingerprint_lines`) with what
        PostgreSQL has: a row is unchanged when PostgreSQL has its id and the bookkeeping's
        fingerprint equals its own. Every other row's (rowid, id, whether PostgreSQL has the id)
        is streamed into the scratch table ``changed``; :attr:`unchanged` gets the count and
        digest sums of the unchanged ones. ``work_mem`` is raised to :data:`COMPARE_WORK_MEM`
        (never lowered) for these statements: the default 4 MB splits the joins into batches on
        disk at ten times today's data.

        ``known``: what the last run recorded of the table, when its rows are still the row
        versions it was recorded with (:mod:`.row_versions`). Then the table is as that run
        committed it, and every row the bookkeeping holds is in it (the bookkeeping keeps only
        rows that run found unchanged or sent): only the rows it does not find unchanged are
        looked up in the table (by its primary key), and its row count is known."""
        cursor, name = self.cursor, self.table.name
        cursor.execute(f"CREATE TEMP TABLE {self._incoming} (rowid_ BIGINT, id TEXT, "
                       "fingerprint TEXT) ON COMMIT DROP")
        copy_lines(cursor, f"COPY {self._incoming} FROM STDIN", lines)
        cursor.execute("SELECT current_setting('work_mem'), current_setting('enable_nestloop')")
        work_mem, nestloop = cursor.fetchone()
        cursor.execute("SELECT set_config('work_mem', %s, true) "
                       "WHERE pg_size_bytes(%s) < pg_size_bytes(%s)",
                       (COMPARE_WORK_MEM, work_mem, COMPARE_WORK_MEM))
        # Every row is joined: a nested loop of index lookups, which the planner picks when the
        # bookkeeping has no statistics yet (just created, autovacuum off), costs 0.5 s more at
        # ten times today's data than the hash joins.
        cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")

        def memo_join(key: str) -> str:
            return (f"LEFT JOIN {schema.MEMO_TABLE} m ON m.table_name = %s AND m.id = {key} "
                    "AND m.source_fingerprint = i.fingerprint" if self.remembered
                    else "LEFT JOIN (SELECT NULL::text AS digest) m ON false")

        # One pass: whether PostgreSQL has the row, and the bookkeeping's digest when the row
        # is unchanged (the column is NOT NULL: a digest means unchanged).
        cursor.execute(f"DROP TABLE IF EXISTS {self.rows}")
        if known is not None and self.remembered:
            self._count = known.totals[0]
            cursor.execute(f"CREATE TEMP TABLE {self.rows} AS SELECT i.rowid_, i.id, "
                           f"m.digest IS NOT NULL AS in_primary, m.digest FROM {self._incoming} i "
                           f"{memo_join('i.id')}", (name,))
            # Only the rows not found unchanged are looked up, by the table's primary key (the
            # planner's usual choice for the few rows of a run that changed little).
            cursor.execute("SELECT set_config('enable_nestloop', %s, true)", (nestloop,))
            cursor.execute(f"UPDATE {self.rows} c SET in_primary = true WHERE c.digest IS NULL "
                           f"AND EXISTS (SELECT 1 FROM {name} t WHERE t.id = c.id)")
        else:
            cursor.execute(f"CREATE TEMP TABLE {self.rows} AS SELECT i.rowid_, i.id, "
                           f"t.id IS NOT NULL AS in_primary, m.digest FROM {self._incoming} i "
                           f"LEFT JOIN {name} t ON t.id = i.id {memo_join('t.id')}",
                           (name,) if self.remembered else ())
        cursor.execute(f"SELECT {SUMS} FROM (SELECT digest AS d FROM {self.rows} "
                       "WHERE digest IS NOT NULL) AS same")
        count, first, second = cursor.fetchone()
        self.unchanged = (int(count), int(first), int(second))
        with cursor.connection.cursor(name=f"tcgjobs_changed_{name}") as rows:
            rows.itersize = 10_000
            rows.execute(f"SELECT rowid_, id, in_primary FROM {self.rows} WHERE digest IS NULL")
            scratch.fill(changed, rows, 3)
        self._matched = self.unchanged[0] + int(scratch.execute(
            f"SELECT count(DISTINCT id) FROM {changed} WHERE in_primary").fetchone()[0])
        cursor.execute("SELECT set_config('work_mem', %s, true), set_config('enable_nestloop', %s, true)",
                       (work_mem, nestloop))
        self.classified = True

    def only_here(self) -> list[str]:
        """The ids of PostgreSQL's rows SQLite has no row of, in order (none when the table is
        empty; run after :meth:`classify` otherwise)."""
        if not self.has_rows:
            return []
        count = self._count
        if count is None:
            self.cursor.execute(f"SELECT count(*) FROM {self.table.name}")
            count = self.cursor.fetchone()[0]
        if count == self._matched:  # every row of PostgreSQL's is SQLite's
            return []
        self.cursor.execute(f"SELECT t.id FROM {self.table.name} t WHERE NOT EXISTS "
                            f"(SELECT 1 FROM {self._incoming} i WHERE i.id = t.id) ORDER BY t.id COLLATE \"C\"")
        return [key for (key,) in self.cursor.fetchall()]

    def unchanged_ids(self) -> Iterator[str]:
        """The ids of the rows found unchanged (for the sets: a few thousand at most)."""
        if not self.classified:
            return iter(())
        self.cursor.execute(f"SELECT id FROM {self.rows} WHERE digest IS NOT NULL")
        return (key for (key,) in self.cursor.fetchall())

    def unchanged_digests(self, cursor: Any, scratch: Scratch, target: str) -> None:
        """Stream the (id, digest) of the rows found unchanged into the scratch table ``target``
        (a :class:`.source.Recorder`'s, as rows not sent): only a verification that has to name
        the rows that differ needs them. ``cursor``: on the run's connection (the temporary
        table is its)."""
        if not self.classified or self._completed:
            return
        self._completed = True
        with cursor.connection.cursor(name=f"tcgjobs_same_{self.table.name}") as rows:
            rows.itersize = 10_000
            rows.execute(f"SELECT id, NULL, digest, 0 FROM {self.rows} WHERE digest IS NOT NULL")
            scratch.fill(target, rows, 4)


def load(cursor: Any, plan: schema.SchemaPlan, tables: Iterable[Table]) -> dict[str, Primary]:
    """Per table, what PostgreSQL has (:class:`Primary`)."""
    return {table.name: Primary(cursor, table, plan) for table in tables}


def record(cursor: Any, tables: dict[str, tuple[Recorder, Primary]], created: bool) -> None:
    """Record the rows sent (per table: the run's Recorder, and what PostgreSQL had at its start);
    forget rows SQLite no longer has or cannot replicate: those the run neither found unchanged
    nor sent. ``created``: this run created the bookkeeping table (nothing to merge with)."""
    sent = any(recorder.sent for recorder, _ in tables.values())
    if sent:
        lines = (f"{name}\t{key.translate(COPY_ESCAPES)}\t{fp}\t{digest}\n"
                 for name, (recorder, _) in tables.items()
                 for key, fp, digest in recorder.sent_rows())
        if created:
            copy_lines(cursor, f"COPY {schema.MEMO_TABLE} FROM STDIN", lines)
            return
        cursor.execute("CREATE TEMP TABLE stage_memo (table_name TEXT, id TEXT, "
                       "source_fingerprint TEXT, digest TEXT) ON COMMIT DROP")
        copy_lines(cursor, "COPY stage_memo FROM STDIN", lines)
        cursor.execute(f"INSERT INTO {schema.MEMO_TABLE} SELECT * FROM stage_memo "
                       "ON CONFLICT (table_name, id) DO UPDATE SET "
                       "source_fingerprint = EXCLUDED.source_fingerprint, digest = EXCLUDED.digest")
    if created:
        return
    for name, (recorder, primary) in tables.items():
        if not primary.bookkept:  # no bookkeeping of its rows before this run: none stale
            continue
        # Each row kept has one entry: more entries than rows kept means stale ones. (A table
        # that was empty has none kept: every entry of its not sent again is stale.)
        cursor.execute(f"SELECT count(*) FROM {schema.MEMO_TABLE} WHERE table_name = %s", (name,))
        if cursor.fetchone()[0] == primary.unchanged[0] + recorder.sent:
            continue
        kept = ([f"EXISTS (SELECT 1 FROM {primary.rows} s WHERE s.id = m.id AND s.digest IS NOT NULL)"]
                if primary.classified else [])
        if sent:
            kept.append("EXISTS (SELECT 1 FROM stage_memo s WHERE s.table_name = m.table_name "
                        "AND s.id = m.id)")
        cursor.execute(f"DELETE FROM {schema.MEMO_TABLE} m WHERE m.table_name = %s"
                       + "".join(f" AND NOT {condition}" for condition in kept), (name,))


def forget(connection: Any, comparisons: list[Comparison]) -> None:
    """Drop the bookkeeping of rows that failed verification, so the next run sends them again."""
    with connection.cursor() as cursor:
        for comparison in comparisons:
            ids = comparison.different + comparison.missing
            if ids:
                cursor.execute(f"DELETE FROM {schema.MEMO_TABLE} WHERE table_name = %s "
                               "AND id = ANY(%s)", (comparison.table, ids))
    connection.commit()
