"""Per-row digests of both sides, and the comparison of the two (verification and parity).

A row's digest is the md5 of its canonical text (:mod:`.pgrows`): computed from the SQLite
values (:mod:`.source`), and here by PostgreSQL over its actual columns. A table's checksum combines its rows' digests
order-independently: two sums, each of a 60-bit slice of every row's digest (so PostgreSQL can
compute it with a parallel scan), printed as ``<sum1>-<sum2>``. Both sides compute it the same way
from the data itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from tcgjobs.services.replication.pgrows import Table, canonical_sql

EXAMPLES = 10


def with_digests(totals: tuple[int, int, int], removed: Iterable[str] = (),
                 added: Iterable[str] = ()) -> tuple[int, int, int]:
    """``totals`` (row count, sum 1, sum 2) without the rows whose digests are ``removed`` and
    with those whose digests are ``added`` (each sum adds a 60-bit slice of every digest)."""
    count, first, second = totals
    for digest in removed:
        count, first, second = count - 1, first - int(digest[:15], 16), second - int(digest[15:30], 16)
    for digest in added:
        count, first, second = count + 1, first + int(digest[:15], 16), second + int(digest[15:30], 16)
    return count, first, second


def table_checksum(digests: dict[str, str]) -> str:
    """The checksum of a table from its per-row digests (see the module docstring)."""
    _, first, second = with_digests((0, 0, 0), added=digests.values())
    return f"{first}-{second}"


def primary_digests(cursor: Any, table: Table, exclude: Collection[str] = (),
                    only: Collection[str] | None = None, *,
                    absent: Collection[str] = ()) -> dict[str, str]:
    """id → digest of the PostgreSQL rows of ``table`` (all, or ``only`` these, minus ``exclude``),
    computed by the server (``absent``: columns the table lacks yet, read as NULL)."""
    where, params = "NOT (id = ANY(%s))", [list(exclude)]
    if only is not None:
        where, params = where + " AND id = ANY(%s)", params + [list(only)]
    cursor.execute(f"SELECT id, md5({canonical_sql(table, absent=absent)}) FROM {table.name} "
                   f"WHERE {where}", params)
    return dict(cursor.fetchall())


def primary_totals(cursor: Any, table: Table, parallel: bool = True, *,
                   absent: Collection[str] = ()) -> tuple[int, int, int]:
    """(row count, sum 1, sum 2) of ``table`` in PostgreSQL, computed by the server from its rows.

    ``parallel`` lets the server use two workers (about 1.5x faster when nothing else runs);
    ``absent``: see :func:`primary_digests`.
    """
    if parallel:  # the settings last until the transaction ends
        cursor.execute(
            "SET LOCAL max_parallel_workers_per_gather = 2; SET LOCAL parallel_setup_cost = 0; "
            "SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0")
    cursor.execute(
        f"SELECT count(*), coalesce(sum(('x' || substr(d, 1, 15))::bit(60)::bigint::numeric), 0), "
        f"coalesce(sum(('x' || substr(d, 16, 15))::bit(60)::bigint::numeric), 0) "
        # OFFSET 0 keeps the subquery from being flattened, which would compute the md5 of every
        # row twice (once per sum): the scan takes about 60% of the time.
        f"FROM (SELECT md5({canonical_sql(table, absent=absent)}) AS d FROM {table.name} "
        "OFFSET 0) AS rows")
    count, first, second = cursor.fetchone()
    return count, int(first), int(second)


def primary_checksum(cursor: Any, table: Table, exclude: Collection[str] = (),
                     totals: tuple[int, int, int] | None = None, *,
                     absent: Collection[str] = ()) -> tuple[int, str]:
    """(row count, checksum) of ``table`` in PostgreSQL without the ``exclude`` rows, from
    ``totals`` (of :func:`primary_totals`) when given (``absent``: see :func:`primary_digests`)."""
    totals = totals if totals is not None else primary_totals(cursor, table, absent=absent)
    if exclude:
        totals = with_digests(totals, removed=primary_digests(cursor, table, only=exclude,
                                                              absent=absent).values())
    count, first, second = totals
    return count, f"{first}-{second}"


@dataclass
class Comparison:
    """Both sides of one table: counts, checksums and example ids that differ."""

    table: str
    source_rows: int
    primary_rows: int
    source_checksum: str
    primary_checksum: str
    missing: list[str] = field(default_factory=list)  # in SQLite, not in PostgreSQL
    extra: list[str] = field(default_factory=list)  # in PostgreSQL, not in SQLite
    different: list[str] = field(default_factory=list)
    unmappable: list[str] = field(default_factory=list)  # "id: reason" of SQLite rows not mappable
    #: How PostgreSQL's side was computed (see the engine's docstring).
    method: str = "scan"

    @property
    def equal(self) -> bool:
        return (self.source_rows == self.primary_rows and not self.unmappable
                and self.source_checksum == self.primary_checksum)

    def describe(self) -> str:
        parts = [f"{self.table}: SQLite {self.source_rows} rows (checksum "
                 f"{self.source_checksum[:12]}), PostgreSQL {self.primary_rows} rows (checksum "
                 f"{self.primary_checksum[:12]})"]
        for label, ids in (("different", self.different), ("missing in PostgreSQL", self.missing),
                           ("only in PostgreSQL", self.extra),
                           ("not mappable", self.unmappable)):
            if ids:
                parts.append(f"{label}: {', '.join(ids[:EXAMPLES])}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "equal": self.equal, "sqlite_rows": self.source_rows,
                "postgres_rows": self.primary_rows, "sqlite_checksum": self.source_checksum,
                "postgres_checksum": self.primary_checksum,
                "different": self.different[:EXAMPLES], "missing_in_postgres": self.missing[:EXAMPLES],
                "only_in_postgres": self.extra[:EXAMPLES],
                "unmappable": self.unmappable[:EXAMPLES], "method": self.method}


def compare(cursor: Any, table: Table, source: dict[str, str], exclude: Collection[str] = (),
            totals: tuple[int, int, int] | None = None, *,
            absent: Collection[str] = ()) -> Comparison:
    """Compare SQLite digests ``source`` with PostgreSQL's rows of ``table`` (minus ``exclude``;
    ``absent``: see :func:`primary_digests`).

    Cheap when equal (one aggregate query, or none given ``totals``); on a mismatch the per-row
    digests are fetched to name example ids.
    """
    count, checksum = primary_checksum(cursor, table, exclude, totals, absent=absent)
    result = Comparison(table.name, len(source), count, table_checksum(source), checksum)
    if not result.equal:
        primary = primary_digests(cursor, table, exclude, absent=absent)
        result.missing = sorted(set(source) - set(primary))
        result.extra = sorted(set(primary) - set(source))
        result.different = sorted(k for k in set(source) & set(primary) if source[k] != primary[k])
    return result
