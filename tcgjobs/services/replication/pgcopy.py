"""The COPY text format of a replicated row, and the fast path that computes a row's canonical
text (:mod:`.pgrows`) and its COPY line in one pass (:class:`RowEncoder`).

Rows are sent to PostgreSQL with ``COPY ... FROM STDIN`` in the text format: tab-separated
fields, ``\\N`` for NULL, backslash escapes, ``TEXT[]`` as array literals and JSON columns as
the SQLite text (already validated). :func:`copy_line` builds a line from a row's canonical
values; :class:`RowEncoder` gives the same line and the same canonical text as
:func:`.pgrows.canonical` straight from the SQLite values, memoising the repeated ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tcgjobs.services.replication.jsonb import Raw, Unmappable, encode_text
from tcgjobs.services.replication.pgrows import (
    CONVERTERS,
    INT_MAX,
    INT_MIN,
    Column,
    RowMapper,
    Table,
    canonical_encoder,
)

__all__ = ["CoercedValues", "RowEncoder", "copy_line", "copy_lines", "unholdable"]

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _array_literal(items: list[str | None]) -> str:
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        else:
            parts.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _copy_escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _copy_jsonb(value: Any, original: Any) -> str:
    # An integer stored in a JSON column is valid JSON once rendered as text.
    text = original if type(original) is str else str(original)
    return _copy_escape(str(value) if type(value) is Raw else text)


_COPY_FIELD: dict[str, Callable[[Any, Any], str]] = {
    "text": lambda value, _: _copy_escape(value),
    "date": lambda value, _: value,
    "timestamp": lambda value, _: value,
    "int": lambda value, _: str(value),
    "text[]": lambda value, _: _copy_escape(_array_literal(value)),
    "evolves_from": lambda value, _: _copy_escape(_array_literal(value)),
    "jsonb": _copy_jsonb,
}


def copy_line(table: Table, values: list[Any], raw: tuple[Any, ...]) -> str:
    """One line of ``COPY ... FROM STDIN`` (text format) for a row: its canonical ``values`` and
    its SQLite ``raw`` values (JSON columns are sent as the SQLite text, already validated)."""
    return "\t".join([
        "\\N" if value is None else _COPY_FIELD[column.kind](value, original)
        for column, value, original in zip(table.columns, values, raw, strict=True)
    ]) + "\n"


def _field(column: Column, convert: Callable[[Any], Any]) -> Callable[[Any], tuple[str, str]]:
    """SQLite value → (canonical text, COPY field) of one column, exactly as :func:`canonical`
    and :func:`copy_line` print it. Raises Unmappable (the reason comes from :class:`RowMapper`)."""
    copy_field = _COPY_FIELD[column.kind]
    not_null = column.not_null
    encode_value = canonical_encoder(column)
    if column.kind == "text":
        def text_field(value: Any) -> tuple[str, str]:
            if type(value) is str and "\x00" not in value:
                if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
                    return encode_text(value), value.translate(_COPY_ESCAPES)
                return encode_text(value), value
            if value is None and not not_null:
                return "null", "\\N"
            raise Unmappable("not text")

        return text_field

    def encode(value: Any) -> tuple[str, str]:
        mapped = convert(value)
        if mapped is None:
            if not_null:
                raise Unmappable("NULL")
            return "null", "\\N"
        canonical_text = str(mapped) if type(mapped) is Raw else encode_value(mapped)
        return canonical_text, copy_field(mapped, value)

    return encode


class RowEncoder:
    """Per SQLite row (selected in :attr:`Table.names` order): its canonical text and its COPY
    line in one pass, equal to ``canonical(table, RowMapper(table).values(row))`` and :func:`copy_line`.

    Both are built from per-column fragments; the fragments of repeated values (JSON, arrays,
    dates: types, legalities, retreat costs repeat across thousands of cards) are computed once
    per distinct SQLite text. The per-row code is generated once per table (one function, no
    per-column calls or loops for text columns and memoised values). Any value that cannot be
    mapped raises Unmappable without detail: callers ask :class:`RowMapper` for the reason.
    """

    _LIMIT = 20_000  # memoised values per column

    def __init__(self, table: Table) -> None:
        self.table = table
        self._memos: list[dict[Any, tuple[str, str]]] = []
        self._computes: list[Callable[[Any], tuple[str, str]]] = []
        lines = ["def encode(row):"]
        count = len(table.columns)
        lines.append(f"    ({', '.join(f'v{i}' for i in range(count))},) = row")
        for i, column in enumerate(table.columns):
            # NULL repeats most: its fragments are known up front (a NOT NULL column raises).
            self._memos.append({} if column.not_null else {None: ("null", "\\N")})
            self._computes.append(_field(column, CONVERTERS[column.kind]))
            if column.kind == "text":  # mostly unique values: encode inline
                lines += [
                    f"    if type(v{i}) is str and '\\x00' not in v{i}:",
                    f"        c{i} = text(v{i})",
                    f"        p{i} = v{i}.translate(escapes) if ('\\\\' in v{i} or '\\t' in v{i} "
                    f"or '\\n' in v{i} or '\\r' in v{i}) else v{i}",
                    "    else:",
                    f"        c{i}, p{i} = computes[{i}](v{i})"]
            elif column.kind == "int":
                lines += [
                    f"    if type(v{i}) is int and {INT_MIN} <= v{i} <= {INT_MAX}:",
                    f"        c{i} = p{i} = str(v{i})",
                    "    else:",
                    f"        c{i}, p{i} = computes[{i}](v{i})"]
            else:
                lines += [
                    "    try:",
                    f"        c{i}, p{i} = memo{i}[v{i}]",
                    "    except (KeyError, TypeError):",
                    f"        c{i}, p{i} = miss({i}, v{i})"]
        lines.append(f"    return ({'[' + ', '.join(['%s'] * count) + ']'!r} % "
                     f"({', '.join(f'c{i}' for i in range(count))},), "
                     f"{chr(9).join(['%s'] * count) + chr(10)!r} % "
                     f"({', '.join(f'p{i}' for i in range(count))},))")
        namespace: dict[str, Any] = {
            "text": encode_text, "escapes": _COPY_ESCAPES, "computes": self._computes,
            "miss": self._miss, **{f"memo{i}": memo for i, memo in enumerate(self._memos)}}
        exec("\n".join(lines), namespace)  # noqa: S102 - code built above from the column list
        self.encode: Callable[[tuple[Any, ...]], tuple[str, str]] = namespace["encode"]
        self.encode.__doc__ = "(canonical text, COPY line) of a row. Raises Unmappable."

    def _miss(self, index: int, value: Any) -> tuple[str, str]:
        result = self._computes[index](value)
        memo = self._memos[index]
        # Only text keys: 1 == 1.0 == True would confuse entries of other types.
        if type(value) is str and len(memo) < self._LIMIT:
            memo[value] = result
        return result


@dataclass
class CoercedValues:
    """The rows of one table replicated with values their columns cannot hold as they are: how
    many, per column how many values, and the first examples (``id: column why (what was
    written)``)."""

    rows: int = 0
    columns: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    limit: int = 10

    def add(self, key: str, notes: Collection[str]) -> None:
        self.rows += 1
        self.columns.update(note.split(" ", 1)[0] for note in notes)
        if len(self.examples) < self.limit:
            self.examples.append(f"{key}: {'; '.join(notes)}")

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": dict(self.columns), "examples": self.examples}


def unholdable(table: Table, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(row, what replication does about it) for each SQLite row of ``table`` (selected in
    :attr:`Table.names` order) it cannot replicate as it is: the notes on the values it replaces
    (:meth:`RowMapper.coerced_values`), or why it skips the row. Rows the one-pass encoder takes
    cost nothing more (validate-data-integrity reads every row through this)."""
    encode, mapper = RowEncoder(table).encode, RowMapper(table)
    for row in rows:
        try:
            encode(row)[0].encode("utf-8")
            continue
        except (Unmappable, UnicodeEncodeError, RecursionError):
            pass
        try:
            _, notes = mapper.coerced_values(row)
        except Unmappable as exc:
            yield row, f"{exc} (the row is skipped)"
            continue
        if notes:
            yield row, "; ".join(notes)


class _LineReader:
    """A file-like ``read()`` over COPY lines, so COPY streams while SQLite is still being read
    (PostgreSQL parses one chunk while Python maps the next). What the lines raise is kept:
    psycopg2 replaces it by a QueryCanceled error ("COPY from stdin failed")."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.error: BaseException | None = None

    def read(self, size: int = 65536) -> str:
        chunk, length = [], 0
        try:
            for line in self._lines:
                chunk.append(line)
                length += len(line)
                if length >= size:
                    break
        except BaseException as exc:
            self.error = exc
            raise
        return "".join(chunk)


def copy_lines(cursor: Any, sql: str, lines: Iterator[str]) -> None:
    """Run ``sql`` (a ``COPY ... FROM STDIN``) with ``lines`` streamed as they come. Raises what
    producing the lines raised (a cancellation, a SQLite error), not psycopg2's stand-in for it."""
    reader = _LineReader(lines)
    try:
        cursor.copy_expert(sql, reader, 65536)
    except Exception:
        if reader.error is not None:
            raise reader.error from None
        raise
