"""Checks of single source records: required fields present, every known field of the right type.

The fields, the types they accept and which are required come from the declaration of the card
tables (:mod:`tcgjobs.db.card_schema`). A record that fails is rejected whole (nothing is
written from it) and named by its file and its id, or its position when it has no usable id.
Unknown extra fields are allowed (they are kept in the ``extra`` column); known fields with the
wrong type are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tcgjobs.db.card_schema import POKEMON_CARD_SETS, POKEMON_CARDS, CardTable, Encoding
from tcgjobs.sources.ids import card_id_problem, set_id_problem


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


def _rules(table: CardTable) -> _Rules:
    fields = [column.source for column in table.columns[1:] if column.source is not None]
    fields += table.unstored
    return _Rules(
        kinds={field.name: field.accepts for field in fields},
        types={field.name: frozenset(field.accepts) for field in fields},
        required=tuple(field.name for field in fields if field.required),
        non_empty=frozenset(field.name for field in fields if field.non_empty),
        markets=tuple(column.source.name for column in table.columns
                      if column.sync is Encoding.MARKET_URL and column.source is not None))


_SET_RULES = _rules(POKEMON_CARD_SETS)
_CARD_RULES = _rules(POKEMON_CARDS)


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "an array", dict: "an object"}
    return " or ".join(names[t] for t in types)


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
    for name in rules.required:
        value = record.get(name)
        if value is None:
            problems.append(f"missing required field {name!r}")
        elif value == "" and name in rules.non_empty:
            problems.append(f"field {name!r} is empty")
    for market in rules.markets:
        value = record.get(market)
        if isinstance(value, dict) and not isinstance(value.get("url", ""), (str, type(None))):
            problems.append(f"field '{market}.url' must be a string or null")
    return problems


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
