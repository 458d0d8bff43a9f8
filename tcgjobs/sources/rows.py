"""Source record → SQLite row, with the original cron path's exact column encodings.

The encodings are those of the original ``sqlite.insertCard`` (original-service.md §3.1, §3.2,
§4.1), because the platform's APIs read these columns:

* JSON columns: compact JSON, non-ASCII kept, the source's key order
  (``JSON.stringify`` ≡ ``json.dumps(x, separators=(',', ':'), ensure_ascii=False)``);
  ``[]`` (arrays) or ``{}`` (legalities, images) when the field is absent or null.
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
from typing import Any

#: Marks a column whose source field the record does not carry: the stored value is kept.
KEEP = type("Keep", (), {"__repr__": lambda self: "KEEP"})()

SET_COLUMNS = ("id", "name", "series", "printed_total", "total", "legalities", "ptcgo_code",
               "release_date", "updated_at", "images", "extra")
SET_FIELDS = ("id", "name", "series", "printedTotal", "total", "legalities", "ptcgoCode",
              "releaseDate", "updatedAt", "images")

CARD_COLUMNS = ("id", "name", "supertype", "subtypes", "hp", "types", "evolves_from", "evolves_to",
                "rules", "abilities", "attacks", "weaknesses", "retreat_cost",
                "converted_retreat_cost", "set_id", "number", "artist", "rarity", "flavor_text",
                "national_pokedex_numbers", "legalities", "images", "tcgplayer_url",
                "cardmarket_url", "resistances", "level", "ancient_trait", "regulation_mark",
                "extra")
CARD_FIELDS = ("id", "name", "supertype", "subtypes", "hp", "types", "evolvesFrom", "evolvesTo",
               "rules", "abilities", "attacks", "weaknesses", "retreatCost", "convertedRetreatCost",
               "number", "artist", "rarity", "flavorText", "nationalPokedexNumbers", "legalities",
               "images", "tcgplayer", "cardmarket", "resistances", "level", "ancientTrait",
               "regulationMark")
#: Source fields deliberately not stored (see the module docstring).
DROPPED_CARD_FIELDS = ("set",)

_KNOWN_SET = frozenset(SET_FIELDS)
_KNOWN_CARD = frozenset(CARD_FIELDS) | frozenset(DROPPED_CARD_FIELDS)
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


def set_row(record: dict[str, Any]) -> tuple[Any, ...]:
    """The ``pokemon_card_sets`` row (in :data:`SET_COLUMNS` order) for a validated set record."""
    get = record.get
    return (record["id"], record["name"], record["series"], get("printedTotal"), get("total"),
            _json_or_null(get("legalities")), get("ptcgoCode"), get("releaseDate"),
            get("updatedAt"), _json_or_null(get("images")), _extra(record, _KNOWN_SET))


def _market_url(record: dict[str, Any], field: str) -> Any:
    if field not in record:
        return KEEP  # the layout does not carry it: never overwrite a stored URL with NULL
    market = record[field]
    return market.get("url") if market else None


def card_row(record: dict[str, Any], set_id: str) -> tuple[Any, ...]:
    """The ``pokemon_cards`` row (in :data:`CARD_COLUMNS` order) for a validated card record.

    The market URL columns hold :data:`KEEP` when the record has no such field.
    """
    get = record.get
    level = get("level")
    ancient = get("ancientTrait")
    number = record["number"]
    return (
        record["id"], record["name"], record["supertype"], _array(get("subtypes")),
        hp_value(get("hp")), _array(get("types")), get("evolvesFrom"), _array(get("evolvesTo")),
        _array(get("rules")), _array(get("abilities")), _array(get("attacks")),
        _array(get("weaknesses")), _array(get("retreatCost")), get("convertedRetreatCost"),
        set_id, number if isinstance(number, str) else str(number), get("artist"), get("rarity"),
        get("flavorText"), _array(get("nationalPokedexNumbers")), _object(get("legalities")),
        _object(get("images")), _market_url(record, "tcgplayer"), _market_url(record, "cardmarket"),
        _array(get("resistances")), None if level is None else str(level),
        None if ancient is None else encode(ancient), get("regulationMark"),
        _extra(record, _KNOWN_CARD),
    )


def for_insert(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with :data:`KEEP` replaced by NULL (a new row has no stored value to keep)."""
    return tuple(None if value is KEEP else value for value in row)


def merged(row: tuple[Any, ...], stored: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with :data:`KEEP` replaced by the stored value of the same column."""
    return tuple(old if new is KEEP else new for new, old in zip(row, stored, strict=True))
