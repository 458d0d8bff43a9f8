"""tcgjobs' bookkeeping in the primary: which SQLite row version was last sent.

``tcgjobs_replication_rows`` holds, per replicated row, the fingerprint of its SQLite values when
it was last sent and its canonical digest. It only decides which rows a run sends (a row whose
fingerprint is unchanged and whose id PostgreSQL has is not read again); the verification never
reads it. It is written in the same transaction as the data, so it cannot disagree with what was
committed; rows that fail verification are forgotten, so the next run sends them again.
"""

from __future__ import annotations

import io
from typing import Any

from tcgjobs.services.replication import schema
from tcgjobs.services.replication.digests import Comparison
from tcgjobs.services.replication.pgrows import CARDS, SETS

Memo = dict[str, dict[str, tuple[str, str]]]  # table → id → (fingerprint, digest)


def record(cursor: Any, sent: dict[str, tuple[list[tuple[str, str, str]], dict[str, str]]],
           memo: Memo, created: bool) -> None:
    """Record the rows sent (table → ([(id, fingerprint, digest)], id → digest of every row
    replicated)); forget rows SQLite no longer has or cannot replicate. ``created``: this run
    created the bookkeeping table (an empty ``memo`` alone does not say the table is empty: it
    only holds the bookkeeping of rows PostgreSQL still has)."""
    rows = [(name, key, fp, digest) for name, (items, _) in sent.items() for key, fp, digest in items]
    stale = [(name, key) for name, (_, digests) in sent.items() for key in memo.get(name, {})
             if key not in digests]
    if stale:
        cursor.execute(f"DELETE FROM {schema.MEMO_TABLE} WHERE (table_name, id) IN "
                       f"(SELECT * FROM unnest(%s::text[], %s::text[]))",
                       ([n for n, _ in stale], [k for _, k in stale]))
    if not rows:
        return
    escapes = _MEMO_ESCAPES  # fingerprints and digests are hex, table names plain: only ids
    text = io.StringIO("".join([f"{name}\t{key.translate(escapes)}\t{fp}\t{digest}\n"
                                for name, key, fp, digest in rows]))
    if created:  # nothing to merge with
        cursor.copy_expert(f"COPY {schema.MEMO_TABLE} FROM STDIN", text)
        return
    cursor.execute("CREATE TEMP TABLE stage_memo (table_name TEXT, id TEXT, "
                   "source_fingerprint TEXT, digest TEXT) ON COMMIT DROP")
    cursor.copy_expert("COPY stage_memo FROM STDIN", text)
    cursor.execute(f"INSERT INTO {schema.MEMO_TABLE} SELECT * FROM stage_memo "
                   "ON CONFLICT (table_name, id) DO UPDATE SET "
                   "source_fingerprint = EXCLUDED.source_fingerprint, digest = EXCLUDED.digest")


_MEMO_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def read(cursor: Any, plan: schema.SchemaPlan) -> tuple[Memo, dict[str, set[str]]]:
    """(the bookkeeping of the rows PostgreSQL has, the ids it has) per table; empty for tables
    still missing. (Bookkeeping of rows deleted from PostgreSQL by others is left alone: it is
    never read, and overwritten if the row is sent again.)"""
    memo: Memo = {SETS.name: {}, CARDS.name: {}}
    ids: dict[str, set[str]] = {SETS.name: set(), CARDS.name: set()}
    with_memo = schema.MEMO_TABLE not in plan.missing_tables
    for table in (SETS, CARDS):
        if table.name in plan.missing_tables:
            continue
        if not with_memo:
            cursor.execute(f"SELECT id FROM {table.name}")
            ids[table.name] = {row[0] for row in cursor}
            continue
        cursor.execute(f"SELECT t.id, m.source_fingerprint, m.digest FROM {table.name} t "
                       f"LEFT JOIN {schema.MEMO_TABLE} m ON m.table_name = %s AND m.id = t.id",
                       (table.name,))
        rows = cursor.fetchall()
        ids[table.name] = {key for key, _, _ in rows}
        memo[table.name] = {key: (fp, digest) for key, fp, digest in rows if fp is not None}
    return memo, ids


def forget(connection: Any, comparisons: list[Comparison]) -> None:
    """Drop the bookkeeping of rows that failed verification, so the next run sends them again."""
    with connection.cursor() as cursor:
        for comparison in comparisons:
            ids = comparison.different + comparison.missing
            if ids:
                cursor.execute(f"DELETE FROM {schema.MEMO_TABLE} WHERE table_name = %s "
                               "AND id = ANY(%s)", (comparison.table, ids))
    connection.commit()
