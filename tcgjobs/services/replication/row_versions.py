"""What a checksum scan of PostgreSQL found, kept with the row versions it was found over.

PostgreSQL writes every change of a row as a new row version, stamped with the id of the
transaction that wrote it (the ``xmin`` system column) and put in a free slot (its ``ctid``): an
UPDATE, even to the same value, an INSERT, a rewrite by ``ALTER … TYPE``. Freezing keeps both;
``VACUUM FULL`` and ``CLUSTER`` keep the transaction id and may move a row (one scan more). So
while a table holds the same row versions in the same places, its rows hold the same values,
and its checksum (:mod:`.digests`) is the one computed over them.

After each verification the run records, per table, the **signature** of its row versions at
the commit (the server's version, the canonical form's, the table's oid and columns, the row
count and two sums of 64-bit hashes of every row's ``xmin`` and ``ctid``, which one pass over
the table's heap computes: about 0.05 s for 161,000 cards, where the checksum scan takes 1.3 s)
together with the whole table's checksum totals and when a scan last computed them
(:data:`STATE_TABLE`). The next run's early scan (:class:`.verification.EarlyScan`) compares the
signature first and scans only when it differs, or when the last scan is older than
:data:`RESCAN_AFTER`: a row changed by anyone, a column added, dropped or retyped, a restore from
a dump, a server upgrade all change it. A partitioned table, or one with inheritance children,
has no signature (its children's columns can change under it): it is always scanned. What a
signature cannot see is damage below SQL (a page changed on disk): the weekly rescan and
validate-data-integrity's comparison read every row.

The totals recorded were computed by the server over the rows, or derived exactly from such a
scan while the tables were locked against other writers (:mod:`.verification`). A signature
recorded with the totals of a later state (another writer between the commit and the scan
after it) is not met again: that writer's row versions stay in the table, and a transaction id
comes back only after 2^32 others, which a table scanned at least weekly would need at 7,000
transactions a second, and then in the same slot.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from tcgjobs.services.replication.digests import Totals, primary_totals
from tcgjobs.services.replication.pgrows import CANONICAL_VERSION, Table

STATE_TABLE = "tcgjobs_replication_state"
STATE_DDL = f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
  table_name TEXT PRIMARY KEY, signature TEXT NOT NULL, row_count BIGINT NOT NULL,
  sum1 NUMERIC NOT NULL, sum2 NUMERIC NOT NULL, scanned_at TIMESTAMPTZ NOT NULL)"""

#: A table's checksum is computed from its rows again at least this often, whatever its row
#: versions say.
RESCAN_AFTER = timedelta(days=7)

#: The table itself (oid, kind, whether it has inheritance children) and its columns.
_TABLE_SQL = """
SELECT c.oid, c.relkind, c.relhassubclass,
       (SELECT string_agg(a.attname || '/' || a.attnum || '/' || a.atttypid || '/' || a.atttypmod
                          || '/' || a.attcollation, ',' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
FROM pg_class c WHERE c.oid = %s::regclass
"""
#: Its row versions: two sums of 64-bit hashes of every row's (xmin, ctid).
_VERSIONS_SQL = """
SELECT count(*), coalesce(sum(hashtextextended(v, 0)::numeric), 0),
       coalesce(sum(hashtextextended(v, 1)::numeric), 0)
FROM (SELECT xmin::text || ctid::text AS v FROM {table}) AS versions
"""


@dataclass(frozen=True)
class Known:
    """PostgreSQL's checksum totals of a whole table, and when a scan of its rows last computed
    them (kept since through the row versions, or derived from the rows a run changed)."""

    totals: Totals
    scanned_at: datetime
    #: Kept from an earlier run (:func:`kept`) rather than scanned in this one.
    kept: bool = False

    @property
    def method(self) -> str:
        """How a verification that started from these totals describes them."""
        if not self.kept:
            return "scan before the writes"
        return (f"row versions unchanged since the scan of "
                f"{self.scanned_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


def signature(cursor: Any, table: Table) -> str | None:
    """The signature of ``table``'s row versions as ``cursor``'s statement sees them; None for a
    partitioned table or one with inheritance children (their children are not covered)."""
    cursor.execute(_TABLE_SQL, (table.name,))
    oid, kind, children, columns = cursor.fetchone()
    if kind != "r" or children:
        return None
    cursor.execute(_VERSIONS_SQL.format(table=table.name))
    count, first, second = cursor.fetchone()
    server = cursor.connection.server_version
    return f"{server}:{CANONICAL_VERSION}:{oid}:{columns}:{count}:{first}:{second}"


def scan(cursor: Any, table: Table, *, parallel: bool) -> Known:
    """``table``'s totals, computed now by the server over every row
    (:func:`.digests.primary_totals`)."""
    cursor.execute("SELECT now()")
    scanned_at = cursor.fetchone()[0]
    return Known(primary_totals(cursor, table, parallel=parallel), scanned_at)


def kept(cursor: Any, table: Table) -> tuple[str | None, Known | None]:
    """(the signature of ``table``'s row versions now, the totals recorded for it when its row
    versions are still those recorded with them and their scan is recent enough, else None: a
    scan is needed). Call with the tables locked against other writers (the row versions may
    not move between here and the scan), on a primary that has :data:`STATE_TABLE`."""
    current = signature(cursor, table)
    if current is None:
        return None, None
    cursor.execute(f"SELECT signature, row_count, sum1, sum2, scanned_at FROM {STATE_TABLE} "
                   "WHERE table_name = %s AND scanned_at > now() - %s", (table.name, RESCAN_AFTER))
    row = cursor.fetchone()
    if row is None or row[0] != current:
        return current, None
    return current, Known((int(row[1]), int(row[2]), int(row[3])), row[4], kept=True)


def record(connection: Any, found: dict[str, tuple[str | None, Known]]) -> None:
    """Record per table (name → (signature at the commit, its totals)) and commit; a table
    without a signature forgets what was recorded of it. A failure is only logged: the next run
    then scans."""
    try:
        with connection.cursor() as cursor:
            for name, (versions, state) in found.items():
                if versions is None:
                    cursor.execute(f"DELETE FROM {STATE_TABLE} WHERE table_name = %s", (name,))
                    continue
                count, first, second = state.totals
                cursor.execute(
                    f"INSERT INTO {STATE_TABLE} (table_name, signature, row_count, sum1, sum2, "
                    "scanned_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE "
                    "SET signature = EXCLUDED.signature, row_count = EXCLUDED.row_count, "
                    "sum1 = EXCLUDED.sum1, sum2 = EXCLUDED.sum2, scanned_at = EXCLUDED.scanned_at",
                    (name, versions, count, first, second, state.scanned_at))
        connection.commit()
    except Exception as exc:  # noqa: BLE001 - the run's result stands; the next run scans
        logger.warning("could not record the verified checksums ({}); the next replication "
                       "scans every row", exc)
        with suppress(Exception):
            connection.rollback()
