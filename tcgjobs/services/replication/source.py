"""The SQLite side of a replication: every row read once, in the read transaction of the caller,
with its fingerprint, mapped to its COPY line and canonical digest (:mod:`.pgcopy`,
:mod:`.pgrows`), streamed: rows are read :data:`CHUNK` at a time in rowid order, and what a run
keeps of each row goes to a scratch table (:mod:`.scratch`), so memory does not grow with them.

A row's **fingerprint** is the blake2b of SQLite's own rendering of its raw values; equal means
identical rows. :func:`fingerprint_lines` streams every row's (rowid, id, fingerprint) to
PostgreSQL, which compares them with the bookkeeping where it lies (:mod:`.bookkeeping`); only
the rows it does not find unchanged are read in full and mapped (:func:`changed_rows`).
A BLOB, which SQLite's ``json_array()`` refuses, and text that is not valid UTF-8, which Python's
default text factory refuses, send the chunk they are in, and every later one, back to a slower,
tolerant way; a chunk is fetched whole before any of it is used, so nothing is yielded twice.
Their rows are then skipped with the reason.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, NamedTuple

from peewee import SqliteDatabase

from tcgjobs.services.replication.digests import Checksum, SourceDigests, Totals
from tcgjobs.services.replication.pgcopy import RowEncoder, copy_line
from tcgjobs.services.replication.pgrows import (
    CANONICAL_VERSION,
    InvalidText,
    RowMapper,
    Table,
    Unmappable,
    canonical,
    tolerant_text,
)
from tcgjobs.services.replication.scratch import Scratch

#: Rows read from SQLite at a time.
CHUNK = 2000


class SourceRow(NamedTuple):
    """One SQLite row: its id, COPY line and digest (or why it cannot be replicated), and a
    note on each value replaced by what its column can hold (pgrows.RowMapper.coerced_values)."""

    id: str
    line: str | None  # None: not mappable
    digest: str | None
    reason: str | None = None
    fingerprint: str | None = None
    set_id: Any = None
    coerced: tuple[str, ...] = ()


def _fingerprint_sql(table: Table, blob_safe: bool = True, alias: str = "") -> str:
    """SQL rendering a row's values unambiguously (strings escaped, NULL as null), in C.

    ``json_array()`` refuses a BLOB; blob-safe, a BLOB renders as ``{"blob": "<hex>"}``
    (``json_object()`` stays JSON inside ``json_array()``, and no stored value renders as an
    object). Both render every other row identically. The UTF-8 text is returned as a BLOB:
    Python hashes its bytes without decoding and encoding it again."""
    names = [f"{alias}.{name}" if alias else name for name in table.names]
    if not blob_safe:
        return f"CAST(json_array({', '.join(names)}) AS BLOB)"
    return "CAST(json_array(" + ", ".join(
        f"CASE WHEN typeof({c}) = 'blob' THEN json_object('blob', hex({c})) ELSE {c} END"
        for c in names) + ") AS BLOB)"


_PERSON = f"canonical-{CANONICAL_VERSION}".encode()


def fingerprint(rendered: bytes) -> str:
    """The fingerprint of a SQLite row from its rendered values: equal means identical rows
    (and bookkeeping written for the same canonical form: the hash is personalised with its
    version, so the digests of another form are never reused)."""
    return hashlib.blake2b(rendered, digest_size=16, person=_PERSON).hexdigest()


@contextmanager
def _tolerantly(db: SqliteDatabase) -> Iterator[None]:
    """Text that is not valid UTF-8 read as InvalidText (its row is then skipped with the
    reason) for the duration: a text factory in Python costs every read a function call per
    value, so it is used only once a chunk needed it."""
    connection = db.connection()
    connection.text_factory = tolerant_text
    try:
        yield
    finally:
        connection.text_factory = str


class _Chunks:
    """Reads of one table :data:`CHUNK` rows at a time in rowid order (``after``, ``limit``
    are the last two parameters of every query; its first column is the rowid). Plain rendering
    and strict UTF-8 until a chunk meets a BLOB or undecodable text; from then on blob-safe or
    tolerant."""

    def __init__(self, db: SqliteDatabase, table: Table, check: Callable[[], None]) -> None:
        self.db, self.table, self.check = db, table, check
        self.blob_safe = self.tolerant = False

    @property
    def render(self) -> str:
        return _fingerprint_sql(self.table, self.blob_safe, alias="t")

    def __call__(self, sql: Callable[[str], str]) -> Iterator[list[tuple[Any, ...]]]:
        after: float = float("-inf")  # rowids may be negative
        while True:
            self.check()
            rows = self._fetch(sql, after)
            if rows:
                yield rows
            if len(rows) < CHUNK:
                return
            after = rows[-1][0]

    def _fetch(self, sql: Callable[[str], str], after: float) -> list[tuple[Any, ...]]:
        while True:
            try:
                with _tolerantly(self.db) if self.tolerant else nullcontext():
                    return self.db.connection().execute(sql(self.render), (after, CHUNK)).fetchall()
            except sqlite3.OperationalError as exc:  # "JSON cannot hold BLOB values", "Could
                message = str(exc)                     # not decode to UTF-8 column 'x' ..."
                if "BLOB" in message and not self.blob_safe:
                    self.blob_safe = True
                elif "decode to UTF-8" in message and not self.tolerant:
                    self.tolerant = True
                else:
                    raise


def _duplicate_ids(db: SqliteDatabase, table: Table) -> set[str]:
    """The text ids more than one row of ``table`` has (a table with a primary key has none;
    the platform's schema declares one, a hand-made file may not). The first row in rowid
    order is replicated, the others are skipped as duplicates."""
    if _unique_id(db, table):
        return set()
    found = set()
    for (raw,) in db.connection().execute(
            f"SELECT CAST(id AS BLOB) FROM {table.name} WHERE typeof(id) = 'text' "
            "GROUP BY id HAVING count(*) > 1"):
        with suppress(UnicodeDecodeError):  # not valid UTF-8: skipped as that anyway
            found.add(raw.decode("utf-8"))
    return found


def _unique_id(db: SqliteDatabase, table: Table) -> bool:
    """Whether a unique index of ``table`` on ``id`` alone (its primary key) rules out repeated
    ids, so that the whole-table GROUP BY (0.1 s at ten times today's cards) is not needed. Any
    collation will do: each of SQLite's treats byte-identical text as equal."""
    connection = db.connection()
    for _, name, unique, _, partial in connection.execute(f"PRAGMA index_list({table.name})"):
        if unique and not partial and [column for _, _, column in connection.execute(
                f"PRAGMA index_info({name})")] == ["id"]:
            return True
    return False


class _Seen:
    """The duplicate ids met so far (only those: the others cannot repeat)."""

    def __init__(self, duplicates: set[str]) -> None:
        self.duplicates, self.met = duplicates, set[str]()

    def again(self, key: Any) -> bool:
        if key not in self.duplicates:
            return False
        if key in self.met:
            return True
        self.met.add(key)
        return False


def source_rows(db: SqliteDatabase, table: Table,
                check: Callable[[], None] = lambda: None) -> Iterator[SourceRow]:
    """Every row of ``table`` in SQLite, mapped, with its digest, in rowid order. Run inside a
    read transaction. A repeated id is skipped as a duplicate after its first row, a row with
    text that is not valid UTF-8 with that reason."""
    chunks, seen = _Chunks(db, table, check), _Seen(_duplicate_ids(db, table))
    mapper = _Mapper(table)
    columns = ", ".join(f"t.{name}" for name in table.names)
    for chunk in chunks(lambda render: f"SELECT t.rowid, {columns}, {render} FROM {table.name} t "
                                       "WHERE t.rowid > ? ORDER BY t.rowid LIMIT ?"):
        for row in chunk:
            raw = row[1:-1]
            if seen.again(raw[0]):
                yield SourceRow(raw[0], None, None, "duplicate id")
            else:
                yield mapper(raw, fingerprint(row[-1]))


#: COPY text escapes of an id (PostgreSQL's text format).
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def fingerprint_lines(db: SqliteDatabase, table: Table, valid_sets: set[str] | None,
                      compare: bool, check: Callable[[], None] = lambda: None) -> Iterator[str]:
    """COPY lines (rowid, id, fingerprint) of every row of ``table`` in SQLite, in rowid order, for
    PostgreSQL to compare with the bookkeeping (:func:`.bookkeeping.Primary.classify`). Run inside
    a read transaction. SQLite renders each row in C, Python only hashes the rendering.

    A row that must be read in full whatever the bookkeeping says gets no fingerprint (``\\N``):
    an id repeated in the table, a card of a set not replicated (``valid_sets``: the set ids cards
    may refer to; None: the table has no set), or every row when ``compare`` is false (no
    bookkeeping to compare with: the ids alone tell PostgreSQL which rows it has). An id
    PostgreSQL cannot hold (not text, empty, with a NUL, not UTF-8) is sent as ``\\N``: such a row
    is read in full and skipped with the reason."""
    duplicates = _duplicate_ids(db, table)
    chunks = _Chunks(db, table, check)
    set_column = "t.set_id" if valid_sets is not None else "NULL"
    escapes, person = COPY_ESCAPES, _PERSON
    blake2b = hashlib.blake2b
    for chunk in chunks(lambda render: (
            f"SELECT t.rowid, t.id, {set_column}, {render if compare else 'NULL'} "
            f"FROM {table.name} t WHERE t.rowid > ? ORDER BY t.rowid LIMIT ?")):
        lines = []
        for rowid, key, set_id, rendered in chunk:
            if type(key) is not str or not key or "\x00" in key:
                lines.append(f"{rowid}\t\\N\t\\N\n")
                continue
            if rendered is None or key in duplicates or (
                    valid_sets is not None and set_id not in valid_sets):
                fp = "\\N"
            else:
                fp = blake2b(rendered, digest_size=16, person=person).hexdigest()
            lines.append(f"{rowid}\t{key.translate(escapes)}\t{fp}\n")
        yield "".join(lines)


def changed_rows(db: SqliteDatabase, table: Table, changed: str,
                 check: Callable[[], None] = lambda: None) -> Iterator[SourceRow]:
    """The rows of ``table`` in SQLite whose rowids the scratch table ``changed`` (``rowid_``)
    holds, read in full and mapped, in rowid order. Run inside a read transaction."""
    chunks, seen, mapper = _Chunks(db, table, check), _Seen(_duplicate_ids(db, table)), _Mapper(table)
    columns = ", ".join(f"t.{name}" for name in table.names)
    for chunk in chunks(lambda render: (
            f"SELECT t.rowid, {columns}, {render} FROM {table.name} t WHERE t.rowid IN "
            f"(SELECT rowid_ FROM {changed} WHERE rowid_ > ? ORDER BY rowid_ LIMIT ?) "
            "ORDER BY t.rowid")):
        for row in chunk:
            raw = row[1:-1]
            if seen.again(raw[0]):
                yield SourceRow(raw[0], None, None, "duplicate id")
            else:
                yield mapper(raw, fingerprint(row[-1]))


class _Mapper:
    """(raw values, fingerprint) of a row → its SourceRow (line and digest, or why not)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._mapper = RowMapper(table)
        # Generated on the first row to map (an unchanged table never needs it).
        self._encode: Callable[[tuple[Any, ...]], tuple[str, str]] | None = None
        self._set_index = table.names.index("set_id") if "set_id" in table.names else None

    def __call__(self, raw: tuple[Any, ...], fp: str) -> SourceRow:
        key = raw[0]
        set_value = raw[self._set_index] if self._set_index is not None else None
        if type(key) is InvalidText:
            return SourceRow(key.shown, None, None, "id is not valid UTF-8 text")
        if not isinstance(key, str) or not key:
            return SourceRow(str(key), None, None, f"id is {key!r}, not a non-empty text")
        if self._encode is None:
            self._encode = RowEncoder(self.table).encode
        line: str | None
        coerced: list[str] = []
        try:
            text, line = self._encode(raw)
            digest = hashlib.md5(text.encode("utf-8")).hexdigest()
        except (Unmappable, UnicodeEncodeError, RecursionError):  # recursion: deep JSON
            line = None
        if line is None:  # the column-by-column mapping replaces what a column cannot hold
            try:
                values, coerced = self._mapper.coerced_values(raw)
                digest = hashlib.md5(canonical(self.table, values).encode("utf-8")).hexdigest()
                line = copy_line(self.table, values, raw)
            except Unmappable as exc:
                return SourceRow(key, None, None, str(exc))
        return SourceRow(key, line, digest, fingerprint=fp, set_id=set_value,
                         coerced=tuple(coerced))


class Recorder:
    """What a run keeps of the rows of one table it replicates: (id, fingerprint, digest, sent)
    in a scratch table, written :data:`CHUNK` rows at a time, and their checksum."""

    def __init__(self, scratch: Scratch, table: Table) -> None:
        self.scratch = scratch
        self.name = scratch.table(f"rows_{table.name}",
                                  "id TEXT, fingerprint TEXT, digest TEXT, sent INTEGER")
        self.checksum = Checksum()
        self.sent = self.unchanged = 0
        self._pending: list[tuple[str, str, str, int]] = []

    def add(self, key: str, fp: str, digest: str, sent: bool) -> None:
        self.checksum.add(digest)
        self.sent += sent
        self._pending.append((key, fp, digest, sent))
        if len(self._pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.scratch.fill(self.name, self._pending, 4)
        self._pending = []

    @property
    def digests(self) -> SourceDigests:
        self.flush()
        return SourceDigests(self.name, self.checksum, self.scratch)

    def add_unchanged(self, totals: Totals) -> None:
        """Add the rows PostgreSQL found unchanged (their count and the sums of their digests as
        the bookkeeping holds them: :meth:`.bookkeeping.Primary.classify`) to the checksum; their
        ids and digests stay in PostgreSQL."""
        self.unchanged = totals[0]
        self.checksum.add_totals(totals)

    def ids(self) -> set[str]:
        """The ids of every row replicated (for the sets: a few thousand at most)."""
        self.flush()
        return {key for (key,) in self.scratch.execute(f"SELECT id FROM {self.name}")}

    def sent_ids(self) -> Iterator[str]:
        """The ids of the rows sent (read from the scratch table as they are used)."""
        self.flush()
        for (key,) in self.scratch.execute(f"SELECT id FROM {self.name} WHERE sent"):
            yield key

    def sent_rows(self) -> Iterator[tuple[str, str, str]]:
        """(id, fingerprint, digest) of the rows sent."""
        self.flush()
        yield from self.scratch.execute(f"SELECT id, fingerprint, digest FROM {self.name} WHERE sent")


def source_digests(db: SqliteDatabase, scratch: Scratch, table: Table,
                   check: Callable[[], None] = lambda: None) -> tuple[SourceDigests, dict[str, str]]:
    """(the digests of ``table``'s rows in SQLite, id → reason skipped). Run inside a read
    transaction."""
    recorder = Recorder(scratch, table)
    skipped: dict[str, str] = {}
    for row in source_rows(db, table, check):
        if row.digest is None:
            skipped[row.id] = row.reason or "unmappable"
        else:
            recorder.add(row.id, "", row.digest, False)
    return recorder.digests, skipped
