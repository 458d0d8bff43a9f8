"""Helpers for the replication tests: handcrafted card databases and an independent mapping.

:func:`expected_primary_row` maps a SQLite row the way the issue specifies, written separately from
:mod:`tcgjobs.services.replication.pgrows` (plain ``json.loads``, ``datetime.strptime``), so a
round-trip test compares the primary with an independent expectation. Which columns are
replicated, and as which PostgreSQL kind, comes from the declaration of the card tables (which
tests compare with the platform's init.sql).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2

from tcgjobs.db.card_schema import CARD_TABLES, POKEMON_CARD_SETS, POKEMON_CARDS
from tcgjobs.db.cards import open_card_database

SET_COLUMNS = tuple(c.name for c in POKEMON_CARD_SETS.columns if c.replicated)
CARD_COLUMNS = tuple(c.name for c in POKEMON_CARDS.columns if c.replicated)
#: Replicated column → its PostgreSQL kind (a name has the same kind in both tables).
KINDS = {c.name: c.pg for table in CARD_TABLES for c in table.columns if c.replicated}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def a_set_row(set_id: str, **fields: Any) -> dict[str, Any]:
    row = {"id": set_id, "name": f"Set {set_id}", "series": "Test", "printed_total": 2, "total": 2,
           "legalities": _compact({"unlimited": "Legal"}), "ptcgo_code": None,
           "release_date": "2022/02/25", "updated_at": "2022/02/25 10:00:00",
           "images": _compact({"symbol": f"https://img/{set_id}/symbol.png",
                               "logo": f"https://img/{set_id}/logo.png"})}
    row.update(fields)
    return row


def a_card_row(set_id: str, number: str, **fields: Any) -> dict[str, Any]:
    row = {"id": f"{set_id}-{number}", "name": f"Card {number}", "supertype": "Pokémon",
           "subtypes": '["Basic"]', "hp": 60, "types": '["Grass"]', "evolves_from": None,
           "evolves_to": "[]", "rules": "[]", "abilities": "[]",
           "attacks": _compact([{"name": "Tackle", "cost": ["Colorless"], "convertedEnergyCost": 1,
                                 "damage": "10", "text": ""}]),
           "weaknesses": _compact([{"type": "Fire", "value": "×2"}]), "retreat_cost": '["Colorless"]',
           "converted_retreat_cost": 1, "set_id": set_id, "number": number, "artist": "Ken Sugimori",
           "rarity": "Common", "flavor_text": None, "national_pokedex_numbers": "[1]",
           "legalities": _compact({"unlimited": "Legal"}),
           "images": _compact({"small": f"https://img/{set_id}/{number}.png",
                               "large": f"https://img/{set_id}/{number}_hires.png"}),
           "tcgplayer_url": f"https://prices.pokemontcg.io/tcgplayer/{set_id}-{number}",
           "cardmarket_url": f"https://prices.pokemontcg.io/cardmarket/{set_id}-{number}",
           "resistances": "[]", "level": None, "ancient_trait": None, "regulation_mark": None,
           "extra": None}
    row.update(fields)
    return row


def handcrafted_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sets and cards covering every mapping rule the issue names."""
    sets = [a_set_row("swsh9tg", name="Brilliant Stars Trainer Gallery"),
            a_set_row("swshp", name="SWSH Black Star Promos", printed_total=None, total=None,
                      ptcgo_code="PR-SW", extra=_compact({"note": "Pokémon ✓"}))]
    cards = [
        a_card_row("swsh9tg", "TG01", name="Flareon", evolves_from="Eevee", hp=110,
                   types='["Fire"]', subtypes='["Stage 1"]', flavor_text="Il crache des flammes — «brûlant»."),
        a_card_row("swsh9tg", "TG02", name="Professor's Research", supertype="Trainer", hp=None,
                   types="[]", subtypes='["Supporter"]', attacks="[]", weaknesses="[]",
                   retreat_cost="[]", converted_retreat_cost=None, artist=None, rarity=None,
                   national_pokedex_numbers=None,
                   rules='["Discard your hand and draw 7 cards.", "You may play only 1 Supporter"]',
                   cardmarket_url=None),
        a_card_row("swshp", "177a", name="Zorua \"promo\"\ttab\\slash", evolves_from='"Zorua"',
                   tcgplayer_url=None, level="X", regulation_mark="E",
                   ancient_trait=_compact({"name": "Δ Evolution", "text": "Ω"}),
                   extra=_compact({"z": 1, "a": [1.5, 2.50, {"b": None}]})),
        a_card_row("swshp", "SWSH050", evolves_from="[]", hp=None),
    ]
    return sets, cards


def write_card_db(path: Path, sets: list[dict[str, Any]], cards: list[dict[str, Any]]) -> None:
    """Insert ``sets`` and ``cards`` (column → SQLite value) into the card database at ``path``."""
    db = open_card_database(path, create=True)
    try:
        with db.atomic():
            for table, rows in (("pokemon_card_sets", sets), ("pokemon_cards", cards)):
                for row in rows:
                    db.execute_sql(f"INSERT OR REPLACE INTO {table} ({', '.join(row)}) "
                                   f"VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    finally:
        db.close()


def sqlite_rows(path: Path, table: str, columns: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return {row[0]: row for row in
                connection.execute(f"SELECT {', '.join(columns)} FROM {table}")}
    finally:
        connection.close()


def _evolves_from(text: str | None) -> list[str] | None:
    if text is None or text == "":
        return None
    if text.startswith(("[", '"')):
        value = json.loads(text)
        if isinstance(value, str):
            return [value]
        return value or None
    return [text]


def expected_primary_row(columns: tuple[str, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The PostgreSQL row (as psycopg2 returns it) the issue's mapping requires for a SQLite row."""
    out = []
    for column, value in zip(columns, row, strict=True):
        kind = KINDS[column]
        if value is None:
            out.append(None)
        elif kind == "evolves_from":
            out.append(_evolves_from(value))
        elif kind in ("text[]", "jsonb"):
            out.append(json.loads(value))
        elif kind == "date":
            out.append(datetime.strptime(value, "%Y/%m/%d").date())
        elif kind == "timestamp":
            out.append(datetime.strptime(value, "%Y/%m/%d %H:%M:%S"))
        else:
            out.append(value)
    return tuple(out)


def primary_rows(url: str, table: str, columns: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
        result = {row[0]: row for row in cursor.fetchall()}
    connection.close()
    return result


def assert_primary_equals_sqlite(url: str, db_path: Path) -> int:
    """Every column of every row of both tables equal after mapping. Returns rows compared."""
    compared = 0
    for table, columns in (("pokemon_card_sets", SET_COLUMNS), ("pokemon_cards", CARD_COLUMNS)):
        source = sqlite_rows(db_path, table, columns)
        primary = primary_rows(url, table, columns)
        assert sorted(primary) == sorted(source), f"{table}: ids differ"
        for key, row in source.items():
            expected = expected_primary_row(columns, row)
            if primary[key] != expected:
                diff = {c: (e, a) for c, e, a in zip(columns, expected, primary[key], strict=True)
                        if e != a}
                raise AssertionError(f"{table} {key} differs (expected, actual): {diff}")
            compared += 1
    return compared


def execute(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both tables as text, with its xmin (which changes whenever a row is written)."""
    result = {}
    for table in ("pokemon_card_sets", "pokemon_cards"):
        exists = execute(url, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]
        result[table] = (execute(url, f"SELECT id, xmin::text, t::text FROM {table} t ORDER BY id")
                         if exists else [])
    return result
