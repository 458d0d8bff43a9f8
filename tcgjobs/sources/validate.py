"""Checks of single source records: required fields present, every known field of the right type.

The fields, the types they accept and which are required come from the declaration of the card
tables (:mod:`tcgjobs.db.card_schema`). A record that fails is rejected whole (nothing is
written from it) and named by its file and its id, or its position when it has no usable id.
Unknown extra fields are allowed (they are kept in the ``extra`` column); known fields with the
wrong type are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tcgjobs.db.card_schema import POKEMON_CARD_SETS, POKEMON_CARDS, CardTable, Encoding
from tcgjobs.sources.ids import card_id_problem, set_id_problem
from tcgjobs.sources.rows import encode, js_parse_int


@dataclass(frozen=True)
class _Rules:
    """The checks of one table's records, from its declaration: ``kinds`` (in message order)
    and ``types`` (exact, what ``json.loads`` produces: ``bool`` is never a count, hp or
    number) of every known field, the required fields (present, not null), those that must not
    be empty either, and the market objects whose ``url`` must be a string or null. The key's
    field (``id``) has its own rule (:mod:`tcgjobs.sources.ids`)."""

    kinds: dict[str, tuple[type, ...]]
    types: dict[str, frozenset[type]]
    required: tuple[str, ...]
    non_empty: frozenset[str]
    markets: tuple[str, ...]
    parsed_ints: frozenset[str]  # string fields stored as the integer of their leading digits


def _rules(table: CardTable) -> _Rules:
    fields = [column.source for column in table.columns[1:] if column.source is not None]
    fields += table.unstored
    return _Rules(
        kinds={field.name: field.accepts for field in fields},
        types={field.name: frozenset(field.accepts) for field in fields},
        required=tuple(field.name for field in fields if field.required),
        non_empty=frozenset(field.name for field in fields if field.non_empty),
        markets=tuple(column.source.name for column in table.columns
                      if column.sync is Encoding.MARKET_URL and column.source is not None),
        parsed_ints=frozenset(column.source.name for column in table.columns
                              if column.sync is Encoding.HP and column.source is not None))


_SET_RULES = _rules(POKEMON_CARD_SETS)
_CARD_RULES = _rules(POKEMON_CARDS)


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "an array", dict: "an object"}
    return " or ".join(names[t] for t in types)


_INT64 = 2**63


def _beyond_sqlite(value: str) -> bool:
    """Whether the leading digits of a string stored as an integer (hp) are outside SQLite's
    64-bit integers, which no column can store (the insert would fail)."""
    number = js_parse_int(value)
    return number is not None and not -_INT64 <= number < _INT64


def _field_problems(record: dict[str, Any], rules: _Rules) -> list[str]:
    """Type problems of the known fields present, then missing or empty required fields, then
    market URLs that are not text. (Called for every card, so the common case — nothing
    wrong — is one pass over the record.)"""
    problems = []
    types = rules.types
    for name, value in record.items():
        expected = types.get(name)
        if expected is not None and value is not None and type(value) not in expected:
            suffix = "" if name in rules.required else " or null"
            problems.append(f"field {name!r} must be {_type_name(rules.kinds[name])}{suffix}, "
                            f"got {type(value).__name__}")
        elif expected is not None and type(value) is int and not -_INT64 <= value < _INT64:
            problems.append(f"field {name!r} is beyond the range of an SQLite integer")
    for name in rules.required:
        value = record.get(name)
        if value is None:
            problems.append(f"missing required field {name!r}")
        elif value == "" and name in rules.non_empty:
            problems.append(f"field {name!r} is empty")
    for name in rules.parsed_ints:  # an hp of "999…" (19 digits or more) has no SQLite integer
        value = record.get(name)
        if type(value) is str and len(value) > 18 and _beyond_sqlite(value):
            problems.append(f"field {name!r} is beyond the range of an SQLite integer")
    for market in rules.markets:
        value = record.get(market)
        if isinstance(value, dict) and not isinstance(value.get("url", ""), (str, type(None))):
            problems.append(f"field '{market}.url' must be a string or null")
    return problems


def oversized_fields(record: dict[str, Any], limit: int) -> list[str]:
    """A problem for each field of ``record`` larger than ``limit`` bytes: its value's compact
    JSON (a string: its UTF-8 bytes), or its name. Called only for files larger than the limit,
    since no field of a smaller file can exceed it."""
    problems = []
    for name, value in record.items():
        if len(name) > limit // 4 and len(name.encode("utf-8", "surrogatepass")) > limit:
            problems.append(f"a field name of {len(name):,} characters is above the field size "
                            f"limit of {limit:,} bytes (TCGJOBS_SOURCE_MAX_FIELD_SIZE)")
            continue
        if type(value) is str:
            size = len(value) if len(value) <= limit // 4 else len(value.encode("utf-8", "surrogatepass"))
        elif type(value) in (list, dict):
            size = len(encode(value).encode("utf-8", "surrogatepass"))
        else:
            continue
        if size > limit:
            problems.append(f"field {name!r} is {size:,} bytes, above the field size limit of "
                            f"{limit:,} bytes (TCGJOBS_SOURCE_MAX_FIELD_SIZE)")
    return problems


#: A JSON escape of a UTF-16 surrogate (``\\ud800``-``\\udfff``, either case). Only a file that
#: has one can decode to a string that is not Unicode text (a surrogate without its pair), which
#: no UTF-8 column can store: files are decoded as strict UTF-8 (layouts._load_json).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def may_hold_lone_surrogates(raw: bytes) -> bool:
    """Whether a file's records need :func:`lone_surrogate_fields` (almost never: one scan)."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def _not_unicode(value: Any) -> bool:
    if type(value) is str:
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if type(value) is list:
        return any(_not_unicode(item) for item in value)
    if type(value) is dict:
        return any(_not_unicode(key) or _not_unicode(item) for key, item in value.items())
    return False


def lone_surrogate_fields(record: dict[str, Any]) -> list[str]:
    """A problem for each field of ``record`` (its name, or a string anywhere in its value)
    holding a UTF-16 surrogate escape without its pair, which is not Unicode text."""
    return [f"field {name!r} holds a UTF-16 surrogate escape without its pair (\\ud800-\\udfff), "
            "which is not Unicode text" for name, value in record.items()
            if _not_unicode(name) or _not_unicode(value)]


def set_problems(record: Any) -> list[str]:
    """Everything wrong with one set record (empty when it is valid)."""
    if not isinstance(record, dict):
        return [f"expected an object, got {type(record).__name__}"]
    problem = set_id_problem(record.get("id")) if "id" in record else "missing required field 'id'"
    problems = [problem] if problem else []
    return problems + _field_problems(record, _SET_RULES)


def card_problems(record: Any) -> list[str]:
    """Everything wrong with one card record (empty when it is valid)."""
    if not isinstance(record, dict):
        return [f"expected an object, got {type(record).__name__}"]
    problem = card_id_problem(record.get("id")) if "id" in record else "missing required field 'id'"
    problems = [problem] if problem else []
    return problems + _field_problems(record, _CARD_RULES)


def record_label(record: Any, position: int) -> str:
    """How a rejected record is named: its id when it has a printable one, else its position."""
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return f"id {record['id']!r} (position {position})"
    return f"position {position}"
