"""Source record → SQLite row, with the original cron path's exact column encodings.

What each column holds, fed by which field, is declared in :mod:`tcgjobs.db.card_schema`; this
module turns that into the sync's rows (:class:`TableRows`). The encodings are those of the
original service's ``sqlite.insertCard``, because the platform's APIs read these columns:

* JSON columns: compact JSON, non-ASCII kept, the source's key order
  (``JSON.stringify`` ≡ ``json.dumps(x, separators=(',', ':'), ensure_ascii=False)``);
  ``[]`` (arrays) or ``{}`` (a card's legalities, images) when the field is absent or null.
* ``evolves_from``: plain text (``Oddish``), never JSON; NULL when absent.
* ``hp``: ``parseInt(hp, 10) || null`` — the integer of the leading digits, NULL for no HP,
  a value without leading digits, or 0.
* ``number``: verbatim text (``TG01``, ``SWSH050``, ``177a`` stay as they are).
* ``set_id``: the set the card file belongs to (not the embedded ``card.set.id``).

Fields the original dropped keep their own columns (``resistances``, ``level``, ``ancient_trait``,
``regulation_mark``); any other unknown field goes into the ``extra`` JSON object, so no source
field is silently lost. Dropped on purpose: the embedded ``set`` object (it duplicates the set
row) and the market ``prices``/``updatedAt`` (out of scope; only the two URLs are kept).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tcgjobs.db.card_schema import POKEMON_CARD_SETS, POKEMON_CARDS, CardColumn, CardTable, Encoding

#: Marks a column whose source field the record does not carry: the stored value is kept.
KEEP = type("Keep", (), {"__repr__": lambda self: "KEEP"})()

_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def _make_encoder() -> Any:
    """``json.dumps(x, separators=(',', ':'), ensure_ascii=False)``, with the C encoder built
    once: ``json.dumps`` builds a new one on every call, which was most of the cost of mapping a
    card (about 12 JSON columns each)."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover (CPython always has the C accelerator)
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    strings = json.encoder.encode_basestring
    chunks = c_make_encoder(None, None, strings, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return strings(value)
        return "".join(chunks(value, 0))

    return encode


encode = _make_encoder()
encode.__doc__ = "JSON text exactly as JavaScript's ``JSON.stringify`` writes it for this data."


def _json_or_null(value: Any) -> str | None:
    return None if value is None else encode(value)


def _array(value: Any) -> str:
    return "[]" if not value else encode(value)


def _object(value: Any) -> str:
    return "{}" if not value else encode(value)


def js_parse_int(text: str) -> int | None:
    """JavaScript's ``parseInt(text, 10)``: the leading (signed) digits, or None for NaN."""
    match = _LEADING_INT.match(text)
    return int(match.group(1)) if match else None


def hp_value(raw: Any) -> int | None:
    """The original's ``card.hp ? (typeof hp === 'string' ? parseInt(hp, 10) || null : hp) : null``."""
    if not raw:
        return None
    if isinstance(raw, str):
        return js_parse_int(raw) or None
    return raw


def _extra(record: dict[str, Any], known: frozenset[str]) -> str | None:
    unknown = {key: value for key, value in record.items() if key not in known}
    return encode(unknown) if unknown else None


def _market_url(record: dict[str, Any], field: str) -> Any:
    if field not in record:
        return KEEP  # the layout does not carry it: never overwrite a stored URL with NULL
    market = record[field]
    return market.get("url") if market else None


def for_insert(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with :data:`KEEP` replaced by NULL (a new row has no stored value to keep)."""
    return tuple(None if value is KEEP else value for value in row)


def merged(row: tuple[Any, ...], stored: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with :data:`KEEP` replaced by the stored value of the same column."""
    return tuple(old if new is KEEP else new for new, old in zip(row, stored, strict=True))


#: How each encoding reads a record: a Python expression of the field's value ``{value}`` (or
#: of its field's name ``{field}``), over the names of :data:`_NAMESPACE`.
_EXPRESSIONS: dict[Encoding, str] = {
    Encoding.VALUE: "{value}",
    Encoding.TEXT: "None if {value} is None else str({value})",
    Encoding.HP: "hp_value({value})",
    Encoding.JSON_ARRAY: "array({value})",
    Encoding.JSON_OBJECT: "object_({value})",
    Encoding.JSON_OR_NULL: "json_or_null({value})",
    Encoding.MARKET_URL: "market_url(record, {field!r})",
    Encoding.CARD_FILE_SET: "set_id",
    Encoding.EXTRA: "extra(record, known)",
}
#: What each encoding writes for a field that is absent or null (a market URL: for an explicit
#: null): a column holding only this holds nothing (drift.py).
EMPTY_VALUES: dict[Encoding, Any] = {
    Encoding.VALUE: None, Encoding.TEXT: None, Encoding.HP: hp_value(None),
    Encoding.JSON_ARRAY: _array(None), Encoding.JSON_OBJECT: _object(None),
    Encoding.JSON_OR_NULL: _json_or_null(None), Encoding.MARKET_URL: None}
_NAMESPACE = {"hp_value": hp_value, "array": _array, "object_": _object,
              "json_or_null": _json_or_null, "market_url": _market_url, "extra": _extra}


def _row_function(table: CardTable, columns: list[CardColumn], known: frozenset[str],
                  ) -> Callable[..., tuple[Any, ...]]:
    """The function mapping a validated record of ``table`` to its row, generated from the
    declaration once: one tuple expression, as a hand-written mapping would be (the sync maps
    every card of every run, so no loop over per-column functions). A value read twice is read
    into a local first."""
    lines, items = [], []
    for number, column in enumerate(columns):
        assert column.sync is not None  # columns in a row have an encoding
        template = _EXPRESSIONS[column.sync]
        field = value = None
        if column.source is not None:
            field = column.source.name
            value = f"record[{field!r}]" if column.source.required else f"get({field!r})"
            if template.count("{value}") > 1:
                lines.append(f"    v{number} = {value}")
                value = f"v{number}"
        items.append(template.format(value=value, field=field))
    takes_set = any(column.sync is Encoding.CARD_FILE_SET for column in columns)
    code = "\n".join([f"def row(record{', set_id' if takes_set else ''}):",
                      "    get = record.get", *lines,
                      f"    return ({', '.join(items)},)"])
    namespace: dict[str, Any] = {**_NAMESPACE, "known": known}
    exec(code, namespace)  # noqa: S102 - code built above from the declaration
    row: Callable[..., tuple[Any, ...]] = namespace["row"]
    row.__doc__ = (f"The ``{table.name}`` row (in ``columns`` order) of a validated record"
                   + (" of the card file of ``set_id``." if takes_set else "."))
    return row


class TableRows:
    """How the sync writes one card table, derived from its declaration: the columns its rows
    carry (declaration order, the key first), the source fields it knows (any other goes into
    ``extra``), the mapping of a record to a row, and the INSERT and UPDATE statements."""

    def __init__(self, table: CardTable) -> None:
        self.table = table
        columns = [column for column in table.columns if column.in_row]
        self.columns = tuple(column.name for column in columns)
        self.known_fields = frozenset(
            [column.source.name for column in columns if column.source is not None]
            + [field.name for field in table.unstored])
        self.row = _row_function(table, columns, self.known_fields)
        placeholders = ", ".join("?" * len(self.columns))
        self.insert = (f"INSERT INTO {table.name} ({', '.join(self.columns)}) "
                       f"VALUES ({placeholders})")
        touched = "".join(f", {column.name} = datetime('now')" for column in table.columns
                          if column.sync is Encoding.NOW_ON_UPDATE)
        assignments = ", ".join(f"{name} = ?" for name in self.columns[1:])
        self.update = (f"UPDATE {table.name} SET {assignments}{touched} "
                       f"WHERE {table.key.name} = ?")

    @staticmethod
    def update_parameters(row: tuple[Any, ...]) -> tuple[Any, ...]:
        """The parameters of :attr:`update` for a row: its values after the key, then the key
        (rows begin with their key, see CardTable)."""
        return row[1:] + row[:1]


SET_ROWS = TableRows(POKEMON_CARD_SETS)
CARD_ROWS = TableRows(POKEMON_CARDS)
SET_COLUMNS = SET_ROWS.columns
CARD_COLUMNS = CARD_ROWS.columns
set_row: Callable[[dict[str, Any]], tuple[Any, ...]] = SET_ROWS.row
card_row: Callable[[dict[str, Any], str], tuple[Any, ...]] = CARD_ROWS.row
