"""Per-row digests of both sides, and the comparison of the two (verification and parity).

A row's digest is the md5 of its canonical text (:mod:`.mapping`): computed here from the SQLite
values, and by PostgreSQL over its actual columns. A table's checksum is the md5 of its rows'
digests concatenated in id order (bytewise, ``COLLATE "C"``), so both sides compute it the same way
from the data itself; nothing stored by an earlier run is trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.services.replication.mapping import RowMapper, Table, Unmappable, canonical, canonical_sql

EXAMPLES = 10


def table_checksum(digests: dict[str, str]) -> str:
    """The checksum of a table from its per-row digests."""
    return hashlib.md5("".join(digests[key] for key in sorted(digests)).encode()).hexdigest()


@dataclass
class SourceRow:
    """One SQLite row: its id, canonical values and digest (or why it cannot be replicated)."""

    id: str
    raw: tuple[Any, ...]
    values: list[Any] | None
    digest: str | None
    reason: str | None = None


def source_rows(db: SqliteDatabase, table: Table) -> Iterator[SourceRow]:
    """Every row of ``table`` in SQLite, mapped, with its digest. Run inside a read transaction."""
    mapper = RowMapper(table)
    cursor = db.execute_sql(f"SELECT {', '.join(table.names)} FROM {table.name}")
    seen: set[str] = set()
    for raw in cursor:
        key = raw[0]
        if not isinstance(key, str) or not key:
            yield SourceRow(str(key), raw, None, None, f"id is {key!r}, not a non-empty text")
            continue
        if key in seen:
            yield SourceRow(key, raw, None, None, "duplicate id")
            continue
        seen.add(key)
        try:
            values = mapper.values(raw)
            digest = hashlib.md5(canonical(values).encode("utf-8")).hexdigest()
        except Unmappable as exc:
            yield SourceRow(key, raw, None, None, str(exc))
            continue
        except UnicodeEncodeError:
            yield SourceRow(key, raw, None, None, "contains text that is not valid UTF-8")
            continue
        yield SourceRow(key, raw, values, digest)


def primary_digests(cursor: Any, table: Table, exclude: Collection[str] = ()) -> dict[str, str]:
    """id → digest of every PostgreSQL row of ``table`` (except ``exclude``), computed by the server."""
    cursor.execute(f"SELECT id, md5({canonical_sql(table)}) FROM {table.name} "
                   "WHERE NOT (id = ANY(%s))", (list(exclude),))
    return dict(cursor.fetchall())


def primary_checksum(cursor: Any, table: Table, exclude: Collection[str] = ()) -> tuple[int, str]:
    """(row count, checksum) of ``table`` in PostgreSQL, computed by the server from its rows."""
    cursor.execute(
        f"SELECT count(*), md5(coalesce(string_agg(md5({canonical_sql(table)}), '' "
        f'ORDER BY id COLLATE "C"), \'\')) FROM {table.name} WHERE NOT (id = ANY(%s))',
        (list(exclude),))
    count, checksum = cursor.fetchone()
    return count, checksum


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
                "unmappable": self.unmappable[:EXAMPLES]}


def compare(cursor: Any, table: Table, source: dict[str, str],
            exclude: Collection[str] = ()) -> Comparison:
    """Compare SQLite digests ``source`` with PostgreSQL's rows of ``table`` (minus ``exclude``).

    Cheap when equal (one aggregate query); on a mismatch the per-row digests are fetched to name
    example ids.
    """
    count, checksum = primary_checksum(cursor, table, exclude)
    result = Comparison(table.name, len(source), count, table_checksum(source), checksum)
    if not result.equal:
        primary = primary_digests(cursor, table, exclude)
        result.missing = sorted(set(source) - set(primary))
        result.extra = sorted(set(primary) - set(source))
        result.different = sorted(k for k in set(source) & set(primary) if source[k] != primary[k])
    return result


def source_digests(db: SqliteDatabase, table: Table,
                   check: Callable[[], None] = lambda: None) -> tuple[dict[str, str], dict[str, str]]:
    """(id → digest, id → reason skipped) of ``table`` in SQLite. Run inside a read transaction."""
    digests: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for number, row in enumerate(source_rows(db, table)):
        if number % 2000 == 0:
            check()
        if row.digest is None:
            skipped[row.id] = row.reason or "unmappable"
        else:
            digests[row.id] = row.digest
    return digests, skipped
