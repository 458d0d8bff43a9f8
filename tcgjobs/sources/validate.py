"""Checks of single source records: required fields present, every known field of the right type.

A record that fails is rejected whole (nothing is written from it) and named by its file and its
id, or its position when it has no usable id. Unknown extra fields are allowed (they are kept in
the ``extra`` column); known fields with the wrong type are not.
"""

from __future__ import annotations

from typing import Any

from tcgjobs.sources.ids import card_id_problem, set_id_problem

_STR = (str,)
_INT = (int,)
_LIST = (list,)
_DICT = (dict,)

_SET_REQUIRED = {"name": _STR, "series": _STR}
_SET_OPTIONAL = {"printedTotal": _INT, "total": _INT, "legalities": _DICT, "ptcgoCode": _STR,
                 "releaseDate": _STR, "updatedAt": _STR, "images": _DICT}

_CARD_REQUIRED = {"name": _STR, "supertype": _STR, "number": (str, int)}
_CARD_OPTIONAL = {
    "subtypes": _LIST, "hp": (str, int), "types": _LIST, "evolvesFrom": _STR, "evolvesTo": _LIST,
    "rules": _LIST, "abilities": _LIST, "attacks": _LIST, "weaknesses": _LIST,
    "resistances": _LIST, "retreatCost": _LIST, "convertedRetreatCost": _INT, "artist": _STR,
    "rarity": _STR, "flavorText": _STR, "nationalPokedexNumbers": _LIST, "legalities": _DICT,
    "images": _DICT, "level": (str, int), "ancientTrait": _DICT, "regulationMark": _STR,
    "set": _DICT, "tcgplayer": _DICT, "cardmarket": _DICT,
}
_NON_EMPTY = frozenset({"name", "supertype", "number"})
#: Exact types (what ``json.loads`` produces); ``bool`` is never a valid count, hp or number.
_SET_TYPES = {k: frozenset(v) for k, v in {**_SET_REQUIRED, **_SET_OPTIONAL}.items()}
_CARD_TYPES = {k: frozenset(v) for k, v in {**_CARD_REQUIRED, **_CARD_OPTIONAL}.items()}


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "an array", dict: "an object"}
    return " or ".join(names[t] for t in types)


def _field_problems(record: dict[str, Any], required: dict[str, tuple[type, ...]],
                    types: dict[str, frozenset[type]]) -> list[str]:
    """Type problems of the known fields present, then missing or empty required fields.
    (Called for every card, so the common case — nothing wrong — is one pass over the record.)"""
    problems = []
    for name, value in record.items():
        expected = types.get(name)
        if expected is not None and value is not None and type(value) not in expected:
            kinds = required.get(name) or _CARD_OPTIONAL.get(name) or _SET_OPTIONAL[name]
            suffix = "" if name in required else " or null"
            problems.append(f"field {name!r} must be {_type_name(kinds)}{suffix}, "
                            f"got {type(value).__name__}")
    for name in required:
        value = record.get(name)
        if value is None:
            problems.append(f"missing required field {name!r}")
        elif value == "" and name in _NON_EMPTY:
            problems.append(f"field {name!r} is empty")
    return problems


def set_problems(record: Any) -> list[str]:
    """Everything wrong with one set record (empty when it is valid)."""
    if not isinstance(record, dict):
        return [f"expected an object, got {type(record).__name__}"]
    problem = set_id_problem(record.get("id")) if "id" in record else "missing required field 'id'"
    problems = [problem] if problem else []
    return problems + _field_problems(record, _SET_REQUIRED, _SET_TYPES)


def card_problems(record: Any) -> list[str]:
    """Everything wrong with one card record (empty when it is valid)."""
    if not isinstance(record, dict):
        return [f"expected an object, got {type(record).__name__}"]
    problem = card_id_problem(record.get("id")) if "id" in record else "missing required field 'id'"
    problems = [problem] if problem else []
    problems += _field_problems(record, _CARD_REQUIRED, _CARD_TYPES)
    for market in ("tcgplayer", "cardmarket"):
        value = record.get(market)
        if isinstance(value, dict) and not isinstance(value.get("url", ""), (str, type(None))):
            problems.append(f"field '{market}.url' must be a string or null")
    return problems


def record_label(record: Any, position: int) -> str:
    """How a rejected record is named: its id when it has a printable one, else its position."""
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return f"id {record['id']!r} (position {position})"
    return f"position {position}"
