"""tcgjobs' bookkeeping in the primary: which SQLite row version was last sent.

``tcgjobs_replication_rows`` holds, per replicated row, the fingerprint of its SQLite values when
it was last sent and its canonical digest. It only decides which rows a run sends (a row whose
fingerprint is unchanged and whose id PostgreSQL has is not read again); the verification never
reads it. A run reads it, with the ids PostgreSQL has, into a scratch table (:mod:`.scratch`).
It is written in the same transaction as the data, so it cannot disagree with what was
committed; rows that fail verification are forgotten, so the next run sends them again.
"""

from __future__ import annotations

from typing import Any

from tcgjobs.services.replication import schema
from tcgjobs.services.replication.digests import ID_BATCH, Comparison
from tcgjobs.services.replication.pgcopy import copy_lines
from tcgjobs.services.replication.pgrows import CARDS, SETS
from tcgjobs.services.replication.scratch import Scratch
from tcgjobs.services.replication.source import Recorder

#: PostgreSQL's ``work_mem`` while the bookkeeping is read: its hash join holds every id and
#: digest of the cards (about 30 MB at ten times today's data).
LOAD_WORK_MEM = "64MB"


def load(cursor: Any, plan: schema.SchemaPlan, scratch: Scratch) -> dict[str, Primary]:
    """Per table, the rows PostgreSQL has, with the bookkeeping of each (fingerprint and digest
    when it has one), streamed through a server-side cursor into a scratch table (empty for
    tables still missing). (Bookkeeping of rows deleted from PostgreSQL by others is left alone:
    it is never read, and overwritten if the row is sent again.)

    Unordered, so rows flow while the server still reads (the scratch table is keyed by id
    either way), with :data:`LOAD_WORK_MEM` for the join: the default 4 MB split it into batches
    on disk at ten times today's data (the load took 1.0-1.1 s there, 0.7 s like this)."""
    with_memo = schema.MEMO_TABLE not in plan.missing_tables
    # Raised (never lowered) for these statements only, then set back as it was.
    cursor.execute("SELECT current_setting('work_mem')")
    work_mem = cursor.fetchone()[0]
    cursor.execute("SELECT set_config('work_mem', %s, true) WHERE pg_size_bytes(%s) < pg_size_bytes(%s)",
                   (LOAD_WORK_MEM, work_mem, LOAD_WORK_MEM))
    loaded = {}
    for table in (SETS, CARDS):
        name = scratch.table(f"primary_{table.name}", "id TEXT, fingerprint TEXT, digest TEXT")
        loaded[table.name] = Primary(name, scratch)
        if table.name in plan.missing_tables:
            continue
        if with_memo:
            sql = (f"SELECT t.id, m.source_fingerprint, m.digest FROM {table.name} t "
                   f"LEFT JOIN {schema.MEMO_TABLE} m ON m.table_name = %s AND m.id = t.id")
        else:
            sql = f"SELECT id, NULL, NULL FROM {table.name}"
        with cursor.connection.cursor(name=f"tcgjobs_primary_{table.name}") as rows:
            rows.itersize = 10_000
            rows.execute(sql, (table.name,) if with_memo else ())
            scratch.fill(name, rows, 3)
    cursor.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
    return loaded


class Primary:
    """The ids of one table PostgreSQL has, and their bookkeeping, in a scratch table."""

    def __init__(self, name: str, scratch: Scratch) -> None:
        self.name, self.scratch = name, scratch

    def count(self) -> int:
        return int(self.scratch.execute(f"SELECT count(*) FROM {self.name}").fetchone()[0])

    def remembered(self) -> bool:
        """Whether any of its rows has bookkeeping."""
        return self.scratch.execute(
            f"SELECT 1 FROM {self.name} WHERE fingerprint IS NOT NULL LIMIT 1").fetchone() is not None

    def only_here(self, source_table: str) -> list[str]:
        """The ids SQLite's ``source_table`` has no row of, in order."""
        return [key for (key,) in self.scratch.execute(
            f"SELECT p.id FROM {self.name} p WHERE NOT EXISTS "
            f"(SELECT 1 FROM main.{source_table} s WHERE s.id = p.id) ORDER BY p.id")]


def record(cursor: Any, tables: dict[str, tuple[Recorder, Primary]], created: bool) -> None:
    """Record the rows sent (per table: the run's Recorder, and the bookkeeping read at its start);
    forget rows SQLite no longer has or cannot replicate. ``created``: this run created the
    bookkeeping table (nothing to merge with)."""
    for name, (recorder, primary) in tables.items():
        stale = [key for (key,) in recorder.scratch.execute(
            f"SELECT p.id FROM {primary.name} p WHERE p.fingerprint IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {recorder.name} r WHERE r.id = p.id)")]
        for start in range(0, len(stale), ID_BATCH):
            cursor.execute(f"DELETE FROM {schema.MEMO_TABLE} WHERE table_name = %s AND id = ANY(%s)",
                           (name, stale[start:start + ID_BATCH]))
    if not any(recorder.sent for recorder, _ in tables.values()):
        return
    escapes = _MEMO_ESCAPES  # fingerprints and digests are hex, table names plain: only ids
    lines = (f"{name}\t{key.translate(escapes)}\t{fp}\t{digest}\n"
             for name, (recorder, _) in tables.items() for key, fp, digest in recorder.sent_rows())
    if created:
        copy_lines(cursor, f"COPY {schema.MEMO_TABLE} FROM STDIN", lines)
        return
    cursor.execute("CREATE TEMP TABLE stage_memo (table_name TEXT, id TEXT, "
                   "source_fingerprint TEXT, digest TEXT) ON COMMIT DROP")
    copy_lines(cursor, "COPY stage_memo FROM STDIN", lines)
    cursor.execute(f"INSERT INTO {schema.MEMO_TABLE} SELECT * FROM stage_memo "
                   "ON CONFLICT (table_name, id) DO UPDATE SET "
                   "source_fingerprint = EXCLUDED.source_fingerprint, digest = EXCLUDED.digest")


_MEMO_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def forget(connection: Any, comparisons: list[Comparison]) -> None:
    """Drop the bookkeeping of rows that failed verification, so the next run sends them again."""
    with connection.cursor() as cursor:
        for comparison in comparisons:
            ids = comparison.different + comparison.missing
            if ids:
                cursor.execute(f"DELETE FROM {schema.MEMO_TABLE} WHERE table_name = %s "
                               "AND id = ANY(%s)", (comparison.table, ids))
    connection.commit()
