"""Per-row digests of both sides, and the comparison of the two (verification and parity).

A row's digest is the md5 of its canonical text (:mod:`.pgrows`): computed from the SQLite
values (:mod:`.source`), and here by PostgreSQL over its actual columns. A table's checksum combines its rows' digests
order-independently: two sums, each of a 60-bit slice of every row's digest (so PostgreSQL can
compute it with a parallel scan), printed as ``<sum1>-<sum2>``. Both sides compute it the same way
from the data itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from tcgjobs.services.replication.pgrows import Table, canonical_sql
from tcgjobs.services.replication.scratch import Scratch

EXAMPLES = 10

Totals = tuple[int, int, int]  # (row count, sum 1, sum 2)


class Checksum:
    """A table's (row count, sum 1, sum 2), one digest at a time (see the module docstring)."""

    __slots__ = ("count", "first", "second")

    def __init__(self) -> None:
        self.count = self.first = self.second = 0

    def add(self, digest: str) -> None:
        self.count += 1
        self.first += int(digest[:15], 16)
        self.second += int(digest[15:30], 16)

    def add_totals(self, totals: Totals) -> None:
        self.count += totals[0]
        self.first += totals[1]
        self.second += totals[2]

    @property
    def totals(self) -> Totals:
        return self.count, self.first, self.second

    @property
    def text(self) -> str:
        return f"{self.first}-{self.second}"


@dataclass
class SourceDigests:
    """SQLite's side of one table: the checksum of the rows replicated, and the scratch table
    (``id`` key, ``digest``) holding their digests, read only to name the rows that differ.
    ``complete`` (given a cursor on the run's connection) first adds the digests that are not
    there yet: a replication keeps those of the unchanged rows in PostgreSQL until then."""

    table: str
    checksum: Checksum
    scratch: Scratch
    complete: Callable[[Any], None] = lambda cursor: None


#: (row count, sum 1, sum 2) over a column ``d`` of digests, in PostgreSQL.
SUMS = ("count(*), coalesce(sum(('x' || substr(d, 1, 15))::bit(60)::bigint::numeric), 0), "
        "coalesce(sum(('x' || substr(d, 16, 15))::bit(60)::bigint::numeric), 0)")


def _totals_sql(table: Table, where: str = "", *, absent: Collection[str] = ()) -> str:
    """SQL of (row count, sum 1, sum 2) over the digests PostgreSQL computes for the rows of
    ``table`` (``where``: a clause on its alias ``t``)."""
    return (
        f"SELECT {SUMS} "
        # OFFSET 0 keeps the subquery from being flattened, which would compute the md5 of every
        # row twice (once per sum): the scan takes about 60% of the time.
        f"FROM (SELECT md5({canonical_sql(table, 't', absent=absent)}) AS d FROM {table.name} t "
        f"{where} OFFSET 0) AS rows")


def totals_of(cursor: Any, table: Table, where: str = "", params: tuple[Any, ...] = (), *,
              absent: Collection[str] = ()) -> Totals:
    """(row count, sum 1, sum 2) of the rows of ``table`` in PostgreSQL that ``where`` selects."""
    cursor.execute(_totals_sql(table, where, absent=absent), params)
    count, first, second = cursor.fetchone()
    return count, int(first), int(second)


#: Ids sent to PostgreSQL in one statement when totals are computed for a list of rows.
ID_BATCH = 10_000


def id_totals(cursor: Any, table: Table, ids: Iterable[str], *,
              absent: Collection[str] = ()) -> Totals:
    """:func:`totals_of` the rows with these ids (asked :data:`ID_BATCH` ids at a time)."""
    total: Totals = (0, 0, 0)
    batch: list[str] = []
    for key in itertools.chain(ids, [None]):
        if key is not None:
            batch.append(key)
        if batch and (key is None or len(batch) == ID_BATCH):
            part = totals_of(cursor, table, "WHERE t.id = ANY(%s)", (batch,), absent=absent)
            total = (total[0] + part[0], total[1] + part[1], total[2] + part[2])
            batch = []
    return total


def minus(totals: Totals, removed: Totals) -> Totals:
    return totals[0] - removed[0], totals[1] - removed[1], totals[2] - removed[2]


def plus(totals: Totals, added: Totals) -> Totals:
    return totals[0] + added[0], totals[1] + added[1], totals[2] + added[2]


def load_primary_digests(cursor: Any, table: Table, scratch: Scratch, exclude: Collection[str] = (),
                         *, absent: Collection[str] = ()) -> str:
    """Stream (id, digest) of PostgreSQL's rows of ``table`` minus ``exclude`` (a server-side
    cursor, in id order) into a scratch table; its name."""
    target = scratch.table(f"primary_digests_{table.name}", "id TEXT, digest TEXT")
    with cursor.connection.cursor(name=f"tcgjobs_digests_{table.name}") as rows:
        rows.itersize = 10_000
        rows.execute(f"SELECT id, md5({canonical_sql(table, absent=absent)}) FROM {table.name} "
                     'WHERE NOT (id = ANY(%s)) ORDER BY id COLLATE "C"', (list(exclude),))
        scratch.fill(target, rows, 2)
    return target


def primary_totals(cursor: Any, table: Table, parallel: bool = True, *,
                   absent: Collection[str] = ()) -> Totals:
    """(row count, sum 1, sum 2) of ``table`` in PostgreSQL, computed by the server from its rows.

    ``parallel`` lets the server use two workers (about 1.5x faster when nothing else runs);
    ``absent``: columns the table lacks yet, read as NULL.
    """
    if parallel:  # the settings last until the transaction ends
        cursor.execute(
            "SET LOCAL max_parallel_workers_per_gather = 2; SET LOCAL parallel_setup_cost = 0; "
            "SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0")
    return totals_of(cursor, table, absent=absent)


def primary_checksum(cursor: Any, table: Table, exclude: Collection[str] = (),
                     totals: Totals | None = None, *,
                     absent: Collection[str] = ()) -> tuple[int, str]:
    """(row count, checksum) of ``table`` in PostgreSQL without the ``exclude`` rows, from
    ``totals`` (of :func:`primary_totals`) when given (``absent``: see :func:`primary_totals`)."""
    totals = totals if totals is not None else primary_totals(cursor, table, absent=absent)
    if exclude:
        totals = minus(totals, id_totals(cursor, table, exclude, absent=absent))
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


def compare(cursor: Any, table: Table, source: SourceDigests, exclude: Collection[str] = (),
            totals: Totals | None = None, *, absent: Collection[str] = (),
            name_rows: bool = True) -> Comparison:
    """Compare SQLite's side ``source`` with PostgreSQL's rows of ``table`` (minus ``exclude``;
    ``absent``: see :func:`primary_totals`).

    Cheap when equal (one aggregate query, or none given ``totals``); on a mismatch (unless
    ``name_rows`` is false) PostgreSQL's per-row digests are streamed into a scratch table
    beside SQLite's, and joins there name the ids that differ.
    """
    count, checksum = primary_checksum(cursor, table, exclude, totals, absent=absent)
    result = Comparison(table.name, source.checksum.count, count, source.checksum.text, checksum)
    if not result.equal and name_rows:
        source.complete(cursor)
        scratch = source.scratch
        primary = load_primary_digests(cursor, table, scratch, exclude, absent=absent)

        def ids(sql: str) -> list[str]:
            return [key for (key,) in scratch.execute(sql)]

        result.missing = ids(f"SELECT s.id FROM {source.table} s WHERE NOT EXISTS "
                             f"(SELECT 1 FROM {primary} p WHERE p.id = s.id) ORDER BY s.id")
        result.extra = ids(f"SELECT p.id FROM {primary} p WHERE NOT EXISTS "
                           f"(SELECT 1 FROM {source.table} s WHERE s.id = p.id) ORDER BY p.id")
        result.different = ids(f"SELECT s.id FROM {source.table} s JOIN {primary} p ON p.id = s.id "
                               "WHERE p.digest != s.digest ORDER BY s.id")
    return result
