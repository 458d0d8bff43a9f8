"""SQLite row → PostgreSQL row, and the canonical form both databases' rows are compared in.

Which columns are replicated, and as which kind, is declared in :mod:`tcgjobs.db.card_schema`
(:data:`SETS` and :data:`CARDS` are its replicated columns). Column mapping by kind (the
platform's ``init.sql`` columns plus those tcgjobs added to SQLite):

* text columns: verbatim (``number`` stays ``TG01`` / ``177a``); NULL stays NULL;
* integer columns (``hp``, totals, ``converted_retreat_cost``): integer or NULL (never 0, ``NaN``);
* ``subtypes``, ``types``, ``evolves_to``, ``rules``: JSON array text → ``TEXT[]``;
* ``evolves_from``: plain text → one-element ``TEXT[]``; the seed script's JSON-encoded forms
  (``"Zorua"`` with quotes, ``["Zorua"]``, ``[]``) are decoded; NULL or empty → NULL;
* JSON columns → ``JSONB``; ``release_date`` ``YYYY/MM/DD`` → ``DATE``, ``updated_at``
  ``YYYY/MM/DD HH:MM:SS`` → ``TIMESTAMP``.

A value the column cannot hold as it is (invalid JSON, an integer out of range, a NUL character,
an unparsable date, ...) is replaced by what the column can hold, by the rule its kind declares
(:data:`tcgjobs.db.card_schema.PG_KINDS`; :meth:`RowMapper.coerced_values`), and reported
(:class:`.pgcopy.CoercedValues`). Only a row whose key cannot be held is skipped, with the reason.

**Canonical form.** A row's canonical text is PostgreSQL's own
``json_build_array(<every replicated column>)::text`` (:func:`canonical_sql`): ``", "`` between
the columns; JSONB columns as JSONB prints them (``", "`` and ``": "`` separators, object keys
shorter-first then bytewise, numbers as ``numeric`` prints them); ``TEXT[]`` columns as JSON
arrays without spaces (``["Stage 1","GX"]``); non-ASCII unescaped; dates ``YYYY-MM-DD``,
timestamps ``YYYY-MM-DDTHH:MM:SS``. :func:`canonical` computes exactly that text from the SQLite
values, so a per-row ``md5`` computed by PostgreSQL over its actual columns can be compared with
one computed here over the SQLite row. (Before :data:`CANONICAL_VERSION` 2 the form was
``jsonb_build_array(...)::text``, which prints arrays with spaces; computing it, even assembled
from each column's JSON text, cost the server about a quarter more than ``json_build_array``.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tcgjobs.db.card_schema import PG_TYPES, POKEMON_CARD_SETS, POKEMON_CARDS, CardTable, Encoding
from tcgjobs.services.replication.jsonb import (
    Raw,
    Unmappable,
    decode,
    json_encoder,
    jsonb_value,
    pg_jsonb_text,
    reject,
    without_nul,
)

__all__ = ["CANONICAL_VERSION", "CARDS", "COERCERS", "CONVERTERS", "SETS", "Column",
           "InvalidText", "RowMapper", "Table", "Unmappable", "canonical", "canonical_encoder",
           "canonical_sql", "replicated", "tolerant_text"]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class InvalidText(str):
    """SQLite text that is not valid UTF-8, as :func:`tolerant_text` reads it: its bad bytes as
    lone surrogates, so it never equals valid text (nor meets a memo entry of one). The mapping
    refuses it; :attr:`shown` is printable."""

    @property
    def shown(self) -> str:
        return self.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def tolerant_text(data: bytes) -> str:
    """A SQLite text factory that reads text that is not valid UTF-8 as :class:`InvalidText`
    instead of failing the whole query."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return InvalidText(data.decode("utf-8", "surrogateescape"))


# --- per-kind converters: SQLite value → canonical value -------------------------------------

def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is InvalidText:
        raise Unmappable("is not valid UTF-8 text")
    if isinstance(value, bytes):
        raise Unmappable("is a BLOB, not text")
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        raise Unmappable("contains a NUL character, which PostgreSQL text cannot store")
    return text


def _integer(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise Unmappable(f"is not an integer: {value!r}")
    if not INT_MIN <= value <= INT_MAX:
        raise Unmappable(f"is out of PostgreSQL INTEGER range: {value}")
    return value


def _text_array(value: Any) -> list[str | None] | None:
    if value is None:
        return None
    text = _text(value)
    parsed = None if text is None else decode(text)
    if not isinstance(parsed, list) or not all(v is None or isinstance(v, str) for v in parsed):
        raise Unmappable("is not a JSON array of strings")
    if any(v is not None and "\x00" in v for v in parsed):
        raise Unmappable("contains a NUL character")
    return parsed


def _evolves_from(value: Any) -> list[str] | None:
    text = _text(value)
    if text is None or text == "":
        return None
    if text[0] in '["':  # the seed script's JSON-encoded forms
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, str):
            return [parsed] if parsed else None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return parsed or None
    return [text]


def _json(value: Any) -> Any:
    text = _text(value)
    return None if text is None else jsonb_value(text)


class _Memo:
    """Memoises a converter by its SQLite text: most JSON values (types, legalities) repeat."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self._convert = convert
        self._memo: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        try:
            return self._memo[value]
        except KeyError:
            pass
        except TypeError:  # unhashable cannot happen for SQLite values, but be safe
            return self._convert(value)
        result = self._convert(value)
        if len(self._memo) < 20_000:
            self._memo[value] = result
        return result


_DATE = re.compile(r"(\d{4})[/-](\d{2})[/-](\d{2})\Z")
_TIMESTAMP = re.compile(r"(\d{4})[/-](\d{2})[/-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})\Z")


def _temporal(pattern: re.Pattern[str], make: Callable[..., date], expected: str,
              ) -> Callable[[Any], str | None]:
    """A converter of SQLite text matching ``pattern`` to ISO text of ``make(*groups)``."""
    def convert(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        match = pattern.match(text)
        try:
            if not match:
                raise ValueError
            return make(*map(int, match.groups())).isoformat()
        except ValueError:
            raise Unmappable(f"is not {expected}: {text!r}") from None

    return convert


_date = _temporal(_DATE, date, "a YYYY/MM/DD date")
_timestamp = _temporal(_TIMESTAMP, datetime, "a YYYY/MM/DD HH:MM:SS timestamp")

#: The converter of each kind: SQLite value → canonical value. Raises Unmappable.
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _text, "int": _integer, "text[]": _text_array, "evolves_from": _evolves_from,
    "jsonb": _json, "date": _date, "timestamp": _timestamp}


# --- what is written instead of a value a column cannot hold (card_schema.PG_KINDS) ----------

def _held_text(value: Any) -> tuple[str | None, str]:
    """(the text a TEXT column holds in place of ``value``, what was done)."""
    if type(value) is InvalidText:
        text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return text.replace("\x00", ""), "written with U+FFFD for the bytes that are not UTF-8"
    if isinstance(value, bytes):
        return None, "NULL written"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\x00", ""), "written without its NUL characters"


def _held_text_array(value: Any) -> tuple[list[str | None] | None, str]:
    try:
        parsed = without_nul(_held_text(value)[0] or "")
    except Unmappable:
        return None, "NULL written"
    if isinstance(parsed, list) and all(v is None or isinstance(v, str) for v in parsed):
        return parsed, "written without the NUL characters of its strings"
    return None, "NULL written"


def _held_evolves_from(value: Any) -> tuple[list[str] | None, str]:
    text, done = _held_text(value)
    return _evolves_from(text), done


def _held_json(value: Any) -> tuple[Raw | None, str]:
    if type(value) is InvalidText or isinstance(value, bytes):
        return None, "NULL written"
    try:
        text = Raw(pg_jsonb_text(without_nul(value if isinstance(value, str) else str(value))))
        text.encode("utf-8")  # a lone surrogate from a \ud800 escape is no UTF-8
    except (Unmappable, RecursionError, UnicodeEncodeError):
        return None, "NULL written"
    return text, "written without the NUL characters of its strings and keys"


def _null(value: Any) -> tuple[None, str]:
    return None, "NULL written"


#: Per kind: SQLite value the column cannot hold → (the canonical value written instead, what was
#: done), the rules :data:`tcgjobs.db.card_schema.PG_KINDS` declares.
COERCERS: dict[str, Callable[[Any], tuple[Any, str]]] = {
    "text": _held_text, "int": _null, "text[]": _held_text_array,
    "evolves_from": _held_evolves_from, "jsonb": _held_json, "date": _null, "timestamp": _null}

#: What a NOT NULL column of a kind holds where the rule gives NULL (PG_KINDS' not_null_instead).
_NOT_NULL_INSTEAD: dict[str, Any] = {"text": "", "text[]": [], "evolves_from": []}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "holds a JSON value nested too deeply to map"
    if isinstance(exc, UnicodeEncodeError):
        return "holds text that is not valid UTF-8"
    return str(exc)


# --- tables ----------------------------------------------------------------------------------

#: How PostgreSQL's catalog (``format_type``) names the types of
#: :data:`tcgjobs.db.card_schema.PG_TYPES`.
CATALOG_TYPES = {"TEXT": "text", "INTEGER": "integer", "TEXT[]": "text[]", "JSONB": "jsonb",
                 "DATE": "date", "TIMESTAMP": "timestamp without time zone"}


@dataclass(frozen=True)
class Column:
    """A replicated column: its kind (:data:`tcgjobs.db.card_schema.PgKind`) says how its
    SQLite value is converted; a NOT NULL column refuses a row whose value maps to NULL."""

    name: str
    kind: str
    not_null: bool = False

    @property
    def pg_type(self) -> str:
        """The PostgreSQL type, as its catalog (``format_type``) names it."""
        return CATALOG_TYPES[PG_TYPES[self.kind]]


@dataclass(frozen=True)
class Table:
    """The replicated columns of a table, in the order rows are selected and sent, and the
    columns replication sets to the current time when it updates a row (``touched``)."""

    name: str
    columns: tuple[Column, ...]
    label: str
    touched: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def replicated(table: CardTable) -> Table:
    """The columns of a declared card table that replication copies, in declaration order."""
    columns = tuple(Column(c.name, c.pg, c.pg_not_null) for c in table.columns
                    if c.replicated and c.pg is not None)
    touched = tuple(c.name for c in table.columns
                    if c.sync is Encoding.NOW_ON_UPDATE and c.pg is not None)
    return Table(table.name, columns, table.label, touched)


SETS = replicated(POKEMON_CARD_SETS)
CARDS = replicated(POKEMON_CARDS)


#: Changes whenever the canonical text of some row changes; part of every fingerprint, so that
#: bookkeeping written for another form is never taken for current (source.fingerprint).
CANONICAL_VERSION = 2


def canonical_sql(table: Table, alias: str = "", absent: Collection[str] = ()) -> str:
    """SQL computing the canonical text of a PostgreSQL row of ``table`` (the module docstring);
    ``absent`` columns, which the table does not have yet, as NULL."""
    prefix = f"{alias}." if alias else ""
    columns = ("NULL" if name in absent else prefix + name for name in table.names)
    return "json_build_array(" + ", ".join(columns) + ")::text"


_ENCODE_ROW = json_encoder(default=lambda o: reject("value"))
#: A ``TEXT[]`` column's canonical text (``json_build_array`` prints arrays without spaces).
_ENCODE_ARRAY = json_encoder(separator=",")
_ARRAY_KINDS = ("text[]", "evolves_from")


def canonical_encoder(column: Column) -> Callable[[Any], str]:
    """The encoder of a column's canonical text (arrays print without spaces)."""
    return _ENCODE_ARRAY if column.kind in _ARRAY_KINDS else _ENCODE_ROW


class RowMapper:
    """Maps SQLite rows of one table (selected in :attr:`Table.names` order) to canonical values."""

    def __init__(self, table: Table) -> None:
        self.table = table
        converters: dict[str, Callable[[], Callable[[Any], Any]]] = {
            "text": lambda: _text, "int": lambda: _integer,
            "text[]": lambda: _Memo(_text_array), "evolves_from": lambda: _Memo(_evolves_from),
            "jsonb": lambda: _Memo(_json), "date": lambda: _date, "timestamp": lambda: _timestamp}
        self._convert = [converters[c.kind]() for c in table.columns]
        self._pairs = list(zip(self._convert, range(len(table.columns)), strict=True))
        self._not_null = [i for i, c in enumerate(table.columns) if c.not_null]

    def values(self, row: tuple[Any, ...]) -> list[Any]:
        """The canonical values of ``row``. Raises Unmappable naming the column."""
        try:
            out = [convert(row[i]) for convert, i in self._pairs]
        except Unmappable:
            return self._values_slowly(row)
        for i in self._not_null:
            if out[i] is None:
                return self._values_slowly(row)
        return out

    def coerced_values(self, row: tuple[Any, ...]) -> tuple[list[Any], list[str]]:
        """The canonical values PostgreSQL holds for ``row``: a value its column cannot hold as it
        is replaced by its kind's rule (:data:`COERCERS`), and a note on each (``release_date is
        not a YYYY/MM/DD date: 'TBA' (NULL written)``). Raises Unmappable when the key cannot be
        held (rows begin with their key) or a NOT NULL column of a kind without a replacement."""
        out, notes = [], []
        for index, (column, convert, value) in enumerate(zip(self.table.columns, self._convert, row,
                                                             strict=True)):
            try:
                mapped = convert(value)
                if mapped is None and column.not_null:
                    raise Unmappable("is NULL but NOT NULL in PostgreSQL")
                _encodable(column, mapped)
            except (Unmappable, RecursionError, UnicodeEncodeError) as exc:
                if index == 0:
                    raise Unmappable(f"{column.name} {_reason(exc)}") from None
                mapped, done = COERCERS[column.kind](value)
                if mapped is None and column.not_null:
                    if column.kind not in _NOT_NULL_INSTEAD:
                        raise Unmappable(f"{column.name} {_reason(exc)}") from None
                    mapped, done = _NOT_NULL_INSTEAD[column.kind], "empty value written (NOT NULL)"
                notes.append(f"{column.name} {_reason(exc)} ({done})")
            out.append(mapped)
        return out, notes

    def _values_slowly(self, row: tuple[Any, ...]) -> list[Any]:
        out = []
        for column, convert, value in zip(self.table.columns, self._convert, row, strict=True):
            try:
                mapped = convert(value)
            except Unmappable as exc:
                raise Unmappable(f"{column.name} {exc}") from None
            if mapped is None and column.not_null:
                raise Unmappable(f"{column.name} is NULL but NOT NULL in PostgreSQL")
            out.append(mapped)
        return out


def _encodable(column: Column, value: Any) -> None:
    """Raise what printing ``value`` would raise (a lone surrogate, a value nested too deeply)."""
    text = str(value) if type(value) is Raw else canonical_encoder(column)(value)
    text.encode("utf-8")


def canonical(table: Table, values: list[Any]) -> str:
    """The canonical text of a row of ``table`` from its canonical values (the module docstring)."""
    parts = [str(v) if type(v) is Raw else canonical_encoder(c)(v)
             for c, v in zip(table.columns, values, strict=True)]
    return "[" + ", ".join(parts) + "]"
