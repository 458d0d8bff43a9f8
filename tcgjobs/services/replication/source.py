"""The SQLite side of a replication: every row read once, in the read transaction of the caller,
with its fingerprint, mapped to its COPY line and canonical digest (:mod:`.pgcopy`,
:mod:`.pgrows`), streamed: rows are read :data:`CHUNK` at a time in rowid order, and what a run
keeps of each row goes to a scratch table (:mod:`.scratch`), so memory does not grow with them.

A row's **fingerprint** is the blake2b of SQLite's own rendering of its raw values; equal means
identical rows, so a row whose fingerprint matches the bookkeeping's (loaded into a scratch
table beside the card table) is not read into Python again (:func:`changed_rows`).
A BLOB, which SQLite's ``json_array()`` refuses, and text that is not valid UTF-8, which Python's
default text factory refuses, send the chunk they are in, and every later one, back to a slower,
tolerant way; a chunk is fetched whole before any of it is used, so nothing is yielded twice.
Their rows are then skipped with the reason.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, NamedTuple

from peewee import SqliteDatabase

from tcgjobs.services.replication.digests import Checksum, SourceDigests
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
    found = set()
    for (raw,) in db.connection().execute(
            f"SELECT CAST(id AS BLOB) FROM {table.name} WHERE typeof(id) = 'text' "
            "GROUP BY id HAVING count(*) > 1"):
        with suppress(UnicodeDecodeError):  # not valid UTF-8: skipped as that anyway
            found.add(raw.decode("utf-8"))
    return found


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


def changed_rows(db: SqliteDatabase, recorder: Recorder, table: Table, primary: str,
                 valid_sets: str | None, check: Callable[[], None] = lambda: None) -> Iterator[SourceRow]:
    """Every row of ``table`` in SQLite that is not unchanged, read in full and mapped (in
    rowid order), once the unchanged ones are recorded in ``recorder`` (:func:`_record_unchanged`).
    Run inside a read transaction. ``valid_sets``: the scratch table of the set ids cards may
    refer to (None: the table has no set)."""
    duplicates = _duplicate_ids(db, table)
    unchanged = _record_unchanged(db, recorder, table, primary, valid_sets, duplicates, check)
    recorder.count_unchanged(unchanged)
    changed = recorder.scratch.table(f"changed_{table.name}", "rowid_ INTEGER")
    rows = db.connection().execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
    if unchanged == rows:  # nothing else to read
        return
    recorder.scratch.execute(f"INSERT INTO {changed} SELECT t.rowid FROM {table.name} t WHERE NOT "
                             f"EXISTS (SELECT 1 FROM {recorder.name} r WHERE r.id = t.id)")
    chunks, seen, mapper = _Chunks(db, table, check), _Seen(duplicates), _Mapper(table)
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


def _record_unchanged(db: SqliteDatabase, recorder: Recorder, table: Table, primary: str,
                      valid_sets: str | None, duplicates: set[str], check: Callable[[], None]) -> int:
    """Record, in one statement run by SQLite, the rows whose fingerprint equals the bookkeeping's
    in ``primary`` (the scratch table of the rows PostgreSQL has: id, fingerprint, digest) with
    the digest recorded there, and count them. The digest is a pure function of the raw values,
    so such a row is neither read into Python nor mapped again; Python only hashes its rendering
    (a SQL function). Rows with a repeated id, and cards of a set not replicated, are left to
    the full read, which skips them with the reason."""
    connection = db.connection()
    connection.create_function("tcgjobs_fingerprint", 1, fingerprint, deterministic=True)
    in_sets = f"AND t.set_id IN (SELECT id FROM {valid_sets}) " if valid_sets else ""
    check()
    for blob_safe in (False, True):
        try:
            with recorder.scratch.savepoint():
                return int(connection.execute(
                    f"INSERT INTO {recorder.name} (id, fingerprint, digest, sent) "
                    f"SELECT t.id, p.fingerprint, p.digest, 0 FROM {table.name} t "
                    f"JOIN {primary} p ON p.id = t.id "
                    f"WHERE t.id NOT IN (SELECT value FROM json_each(?)) {in_sets}"
                    f"AND p.fingerprint = tcgjobs_fingerprint({_fingerprint_sql(table, blob_safe, 't')})",
                    (json.dumps(sorted(duplicates)),)).rowcount)
        except sqlite3.OperationalError as exc:  # "JSON cannot hold BLOB values"
            if blob_safe or "BLOB" not in str(exc):
                raise
    raise AssertionError("unreachable")


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

    def count_unchanged(self, count: int) -> None:
        """Add the ``count`` unchanged rows recorded by SQL (sent = 0) to the checksum."""
        self.flush()
        self.unchanged = count
        first = second = 0
        for (digest,) in self.scratch.execute(f"SELECT digest FROM {self.name} WHERE NOT sent"):
            first += int(digest[:15], 16)
            second += int(digest[15:30], 16)
        self.checksum.add_totals((count, first, second))

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
