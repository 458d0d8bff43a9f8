"""The SQLite side of a replication: every row read once, in the read transaction of the caller,
with its fingerprint, mapped to its COPY line and canonical digest (:mod:`.pgcopy`,
:mod:`.pgrows`).

A row's **fingerprint** is the blake2b of SQLite's own rendering of its raw values; equal means
identical rows, so a row whose fingerprint matches the bookkeeping's is not read again
(:func:`changed_rows`). A full read of a large table is mapped by two processes (:mod:`.workers`).
A BLOB, which SQLite's ``json_array()`` refuses, and text that is not valid UTF-8, which Python's
default text factory refuses, each send the read back to a slower, tolerant way before anything
is yielded; their rows are then skipped with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from peewee import SqliteDatabase

from tcgjobs.services.replication import workers
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

T = TypeVar("T")


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


def _fingerprint_sql(table: Table, blob_safe: bool = True) -> str:
    """SQL rendering a row's values unambiguously (strings escaped, NULL as null), in C.

    ``json_array()`` refuses a BLOB; blob-safe, a BLOB renders as ``{"blob": "<hex>"}``
    (``json_object()`` stays JSON inside ``json_array()``, and no stored value renders as an
    object). Both render every other row identically. The UTF-8 text is returned as a BLOB:
    Python hashes its bytes without decoding and encoding it again."""
    if not blob_safe:
        return f"CAST(json_array({', '.join(table.names)}) AS BLOB)"
    return "CAST(json_array(" + ", ".join(
        f"CASE WHEN typeof({c}) = 'blob' THEN json_object('blob', hex({c})) ELSE {c} END"
        for c in table.names) + ") AS BLOB)"


_PERSON = f"canonical-{CANONICAL_VERSION}".encode()


def fingerprint(rendered: bytes) -> str:
    """The fingerprint of a SQLite row from its rendered values: equal means identical rows
    (and bookkeeping written for the same canonical form: the hash is personalised with its
    version, so the digests of another form are never reused)."""
    return hashlib.blake2b(rendered, digest_size=16, person=_PERSON).hexdigest()


def _select_rendered(table: Table, columns: str, blob_safe: bool = True) -> str:
    """``SELECT <columns>, <rendering> FROM <table>`` (see :func:`_fingerprint_sql`)."""
    return f"SELECT {columns}, {_fingerprint_sql(table, blob_safe)} FROM {table.name}"


def _with_fingerprint(row: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    """(raw values, fingerprint) of a row of :func:`_select_rendered` over every column."""
    return row[:-1], fingerprint(row[-1])


class _BlobFound(Exception):
    """The table holds a BLOB, which the plain rendering refuses."""


class _Undecodable(Exception):
    """A text value that is not valid UTF-8, which SQLite's default text factory refuses."""


#: What SQLite's refusals say: "JSON cannot hold BLOB values", "Could not decode to UTF-8 column
#: 'x' with text ...".
_REFUSALS: dict[type[Exception], str] = {_BlobFound: "BLOB", _Undecodable: "decode to UTF-8"}


@contextmanager
def _refusal_as(exception: type[Exception]) -> Iterator[None]:
    """SQLite's refusal of that kind (:data:`_REFUSALS`) as ``exception``; other errors as
    they are."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if _REFUSALS[exception] in str(exc):
            raise exception from None
        raise


@contextmanager
def _tolerantly(db: SqliteDatabase) -> Iterator[None]:
    """Text that is not valid UTF-8 read as InvalidText (its row is then skipped with the
    reason) for the duration; only after _Undecodable: a text factory in Python costs every
    read a function call per value."""
    connection = db.connection()
    connection.text_factory = tolerant_text
    try:
        yield
    finally:
        connection.text_factory = str


def _read_rendered(db: SqliteDatabase, table: Table, columns: str,
                   convert: Callable[[tuple[Any, ...]], T]) -> list[T]:
    """``convert`` of every row of :func:`_select_rendered`, rendered with plain ``json_array()``
    (faster), or blob-safe when the table holds a BLOB."""
    try:
        with _refusal_as(_BlobFound):
            sql = _select_rendered(table, columns, blob_safe=False)
            return [convert(row) for row in db.connection().execute(sql)]
    except _BlobFound:
        return [convert(row) for row in db.connection().execute(_select_rendered(table, columns))]


def _fingerprints(db: SqliteDatabase, table: Table) -> list[tuple[Any, str, Any]]:
    """(id, fingerprint, set_id) of every row of ``table``."""
    set_id = "set_id" if "set_id" in table.names else "NULL"
    return _read_rendered(db, table, f"id, {set_id}",
                          lambda row: (row[0], fingerprint(row[2]), row[1]))


def _all_rows(db: SqliteDatabase, table: Table) -> list[tuple[tuple[Any, ...], str]]:
    """(raw values, fingerprint) of every row of ``table``."""
    return _read_rendered(db, table, ", ".join(table.names), _with_fingerprint)


def changed_rows(db: SqliteDatabase, table: Table, known: dict[str, tuple[str, str]],
                 present: set[str]) -> tuple[list[tuple[str, str, Any]], Iterator[SourceRow]]:
    """(rows whose fingerprint equals the bookkeeping's ``known`` one and whose id PostgreSQL
    has (``present``), as (id, digest, set_id); every other row, read, then mapped lazily). Run
    inside a read transaction.

    The digest is a pure function of the raw values, so a row with the same fingerprint has the
    digest memoised in ``known`` (id → (fingerprint, digest)): it is neither read into Python
    nor mapped again.
    """
    try:
        with _refusal_as(_Undecodable):
            return _changed_rows(db, table, known, present)
    except _Undecodable:
        with _tolerantly(db):
            return _changed_rows(db, table, known, present)


def _changed_rows(db: SqliteDatabase, table: Table, known: dict[str, tuple[str, str]],
                  present: set[str]) -> tuple[list[tuple[str, str, Any]], Iterator[SourceRow]]:
    unchanged, changed, invalid = [], [], []
    for key, fp, set_value in _fingerprints(db, table):
        memo = known.get(key) if type(key) is str else None
        if memo is not None and memo[0] == fp and key in present:
            unchanged.append((key, memo[1], set_value))
        elif type(key) is InvalidText:  # no query could find its row again: skipped here
            invalid.append(SourceRow(key.shown, None, None, "id is not valid UTF-8 text"))
        else:
            changed.append(key)
    seen = {key for key, _, _ in unchanged}
    rows = list(_read_rows(db, table, changed)) if changed else []
    return unchanged, itertools.chain(invalid, _map_rows(table, rows, seen))


def _read_rows(db: SqliteDatabase, table: Table,
               keys: list[Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(raw values, fingerprint) of the rows with these ids."""
    select = _select_rendered(table, ", ".join(table.names))
    sql = f"{select} WHERE id IN (SELECT value FROM json_each(?))"
    yield from map(_with_fingerprint,
                   db.execute_sql(sql, (json.dumps([k for k in keys if type(k) is str]),)))
    if any(type(key) is not str for key in keys):  # ids json_each cannot match
        yield from map(_with_fingerprint, db.execute_sql(f"{select} WHERE typeof(id) != 'text'"))


#: A table with at least this many rows to map is mapped by two processes (see workers.py).
PARALLEL_MIN_ROWS = 4000


def source_rows(db: SqliteDatabase, table: Table) -> Iterator[SourceRow]:
    """Every row of ``table`` in SQLite, mapped, with its digest. Run inside a read transaction.

    A large table is mapped by two processes (in no particular order): a forked child maps the
    rows read first while this process reads and maps the rest. A repeated id is skipped as a
    duplicate after its first row, a row with text that is not valid UTF-8 with that reason.
    """
    try:
        with _refusal_as(_Undecodable):
            yield from _source_rows(db, table)
    except _Undecodable:  # raised while reading, before anything was yielded
        with _tolerantly(db):
            yield from _source_rows(db, table)


def _source_rows(db: SqliteDatabase, table: Table) -> Iterator[SourceRow]:
    total = db.connection().execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
    if total >= PARALLEL_MIN_ROWS and workers.available():
        try:
            yield from _two_processes(db, table, total)
            return
        except _BlobFound:
            pass  # nothing was yielded: map in one process, reading blob-safe
    rows, repeated = _without_repeats(_all_rows(db, table))
    yield from (SourceRow(key, None, None, "duplicate id") for key in repeated)
    yield from _map_rows(table, rows, set())


def _two_processes(db: SqliteDatabase, table: Table, total: int) -> Iterator[SourceRow]:
    """The rows read first are mapped by a forked child (see workers.py). Raises _BlobFound,
    before yielding anything, when the plain rendering meets a BLOB."""
    with _refusal_as(_BlobFound):
        rows = db.connection().execute(
            _select_rendered(table, ", ".join(table.names), blob_safe=False))
        first = rows.fetchmany(total - int(total * workers.OWN_SHARE))
    child_rows, repeated = _without_repeats(list(map(_with_fingerprint, first)))
    seen = {raw[0] for raw, _ in child_rows}

    def own_rows() -> list[tuple[tuple[Any, ...], str]]:
        with _refusal_as(_BlobFound):
            own = list(map(_with_fingerprint, rows))
        kept, more = _without_repeats(own, seen)
        repeated.extend(more)
        return kept

    # own_rows() runs before the first result, so a BLOB stops this before anything is yielded.
    yield from workers.split_map(child_rows, own_rows, lambda part: _map_rows(table, part, set()))
    yield from (SourceRow(key, None, None, "duplicate id") for key in repeated)


def _without_repeats(rows: list[tuple[tuple[Any, ...], str]], seen: set[Any] | None = None,
                     ) -> tuple[list[tuple[tuple[Any, ...], str]], list[str]]:
    """(``rows`` without the later rows of a repeated id, or of an id in ``seen``; the ids of
    the rows left out)."""
    keys = [raw[0] for raw, _ in rows]
    if len(set(keys)) == len(keys) and (not seen or seen.isdisjoint(keys)):
        return rows, []
    seen = set(seen or ())
    kept, repeated = [], []
    for row, key in zip(rows, keys, strict=True):
        if type(key) is str and key and key in seen:
            repeated.append(key)
        else:
            seen.add(key)
            kept.append(row)
    return kept, repeated


def _map_rows(table: Table, items: Iterable[tuple[tuple[Any, ...], str]],
              seen: set[str]) -> Iterator[SourceRow]:
    """Map (raw values, fingerprint) items; ``seen`` holds the ids met before and collects these."""
    mapper = RowMapper(table)
    # Generated on the first row to map (an unchanged table never needs it).
    encode: Callable[[tuple[Any, ...]], tuple[str, str]] | None = None
    md5 = hashlib.md5
    set_index = table.names.index("set_id") if "set_id" in table.names else None
    for raw, fp in items:
        key = raw[0]
        set_value = raw[set_index] if set_index is not None else None
        if type(key) is InvalidText:
            yield SourceRow(key.shown, None, None, "id is not valid UTF-8 text")
            continue
        if not isinstance(key, str) or not key:
            yield SourceRow(str(key), None, None, f"id is {key!r}, not a non-empty text")
            continue
        if key in seen:
            yield SourceRow(key, None, None, "duplicate id")
            continue
        seen.add(key)
        if encode is None:
            encode = RowEncoder(table).encode
        text: str | None
        line: str | None
        coerced: list[str] = []
        try:
            text, line = encode(raw)
            digest = md5(text.encode("utf-8")).hexdigest()
        except (Unmappable, UnicodeEncodeError, RecursionError):  # recursion: deep JSON
            text = line = None
        if text is None:  # the column-by-column mapping replaces what a column cannot hold
            try:
                values, coerced = mapper.coerced_values(raw)
                digest = md5(canonical(table, values).encode("utf-8")).hexdigest()
                line = copy_line(table, values, raw)
            except Unmappable as exc:
                yield SourceRow(key, None, None, str(exc))
                continue
        yield SourceRow(key, line, digest, fingerprint=fp, set_id=set_value, coerced=tuple(coerced))


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
