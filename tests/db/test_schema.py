"""Card and state database schemas: the original DDL, additive migrations, newer schemas refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tcgjobs.db.card_schema import CARD_TABLES, POKEMON_CARDS
from tcgjobs.db.cards import CARD_MIGRATIONS, ORIGINAL_DDL, open_card_database
from tcgjobs.db.state import Ledger
from tcgjobs.errors import ConfigError, SchemaError
from tests.conftest import invoke

#: The original's ``initSchema`` DDL verbatim: the platform's own
#: text, which every existing card database was created with.
PLATFORM_DDL = (
    """CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL, email TEXT NOT NULL, password TEXT NOT NULL,
  created_at TEXT DEFAULT (datetime('now')), updated_at TEXT DEFAULT (datetime('now')))""",
    """CREATE TABLE IF NOT EXISTS pokemon_card_sets (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, series TEXT NOT NULL, printed_total INTEGER, total INTEGER,
  legalities TEXT, ptcgo_code TEXT, release_date TEXT, updated_at TEXT, images TEXT,
  created_at TEXT DEFAULT (datetime('now')))""",
    """CREATE TABLE IF NOT EXISTS pokemon_cards (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, supertype TEXT NOT NULL, subtypes TEXT NOT NULL, hp INTEGER,
  types TEXT NOT NULL, evolves_from TEXT, evolves_to TEXT, rules TEXT, abilities TEXT, attacks TEXT, weaknesses TEXT,
  retreat_cost TEXT, converted_retreat_cost INTEGER, set_id TEXT NOT NULL REFERENCES pokemon_card_sets(id),
  number TEXT NOT NULL, artist TEXT, rarity TEXT, flavor_text TEXT, national_pokedex_numbers TEXT, legalities TEXT,
  images TEXT, tcgplayer_url TEXT, cardmarket_url TEXT,
  created_at TEXT DEFAULT (datetime('now')), updated_at TEXT DEFAULT (datetime('now')))""",
    "CREATE INDEX IF NOT EXISTS idx_pokemon_cards_set_id ON pokemon_cards(set_id)",
)
PLATFORM_TABLES = ("users", "pokemon_card_sets", "pokemon_cards")


def columns(path: Path, table: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"PRAGMA table_info({table})").fetchall()
    finally:
        connection.close()


def platform_database(path: Path) -> Path:
    """A card database as the platform creates it, from its own DDL text."""
    connection = sqlite3.connect(path)
    for statement in PLATFORM_DDL:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return path


def definition(path: Path) -> dict[str, list[tuple]]:
    """Everything SQLite says about the platform's tables: columns (name, type, NOT NULL,
    default, key), foreign keys, indexes and their columns."""
    connection = sqlite3.connect(path)
    try:
        found = {}
        for table in PLATFORM_TABLES:
            found[f"{table} columns"] = connection.execute(f"PRAGMA table_info({table})").fetchall()
            found[f"{table} foreign keys"] = connection.execute(
                f"PRAGMA foreign_key_list({table})").fetchall()
            indexes = connection.execute(f"PRAGMA index_list({table})").fetchall()
            found[f"{table} indexes"] = indexes
            for index in indexes:
                found[f"index {index[1]}"] = connection.execute(
                    f"PRAGMA index_xinfo({index[1]})").fetchall()
        found["objects"] = connection.execute(
            "SELECT type, name, tbl_name FROM sqlite_master ORDER BY name").fetchall()
        return found
    finally:
        connection.close()


def test_migration_1_creates_exactly_the_platforms_tables(tmp_path):
    """The DDL derived from the declaration makes the same tables as the platform's own text."""
    derived = tmp_path / "derived.db"
    connection = sqlite3.connect(derived)
    for statement in ORIGINAL_DDL:
        connection.execute(statement)
    connection.commit()
    connection.close()

    assert definition(derived) == definition(platform_database(tmp_path / "platform.db"))


def test_a_new_card_database_has_the_original_columns_first_then_additions(tmp_path):
    path = tmp_path / "cards.db"
    open_card_database(path, create=True).close()
    original = columns(platform_database(tmp_path / "platform.db"), "pokemon_cards")
    created = columns(path, "pokemon_cards")
    assert created[:len(original)] == original
    assert [c[1] for c in created[len(original):]] == [
        c.name for c in POKEMON_CARDS.columns if c.added]
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == CARD_MIGRATIONS[-1].version
    index = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'idx_pokemon_cards_set_id'").fetchone()
    assert index is not None


@pytest.mark.parametrize("table", CARD_TABLES, ids=lambda table: table.name)
def test_a_migrated_card_database_has_exactly_the_declared_columns(tmp_path, table):
    path = tmp_path / "cards.db"
    open_card_database(path, create=True).close()
    declared = [column for column in table.columns if column.sqlite is not None]
    in_order = [c for c in declared if not c.added] + [c for c in declared if c.added]
    # SQLite reports a default expression without its enclosing parentheses.
    expected = [(number, c.name, c.sqlite, int(c.not_null),
                 c.sqlite_default[1:-1] if c.sqlite_default else None, int(c.primary_key))
                for number, c in enumerate(in_order)]
    assert columns(path, table.name) == expected


def test_a_platform_database_made_by_the_original_is_migrated_without_touching_its_rows(tmp_path):
    path = platform_database(tmp_path / "platform.db")
    connection = sqlite3.connect(path)
    connection.execute("INSERT INTO pokemon_card_sets(id, name, series) VALUES ('base1', 'Base', 'Base')")
    connection.execute("INSERT INTO pokemon_cards(id, name, supertype, subtypes, types, set_id, number, hp, "
                       "evolves_from) VALUES ('base1-1', 'Alakazam', 'Pokémon', '[]', '[]', 'base1', '1', -1, "
                       "'\"Kadabra\"')")
    connection.commit()
    before = connection.execute("SELECT * FROM pokemon_cards").fetchall()
    connection.close()
    open_card_database(path).close()
    open_card_database(path).close()  # idempotent
    original = [c[1] for c in columns(platform_database(tmp_path / "platform-empty.db"), "pokemon_cards")]
    connection = sqlite3.connect(path)
    after = connection.execute(f"SELECT {', '.join(original)} FROM pokemon_cards").fetchall()
    assert after == before
    assert connection.execute("SELECT resistances FROM pokemon_cards").fetchone() == (None,)


def test_a_card_database_newer_than_the_code_is_refused_with_78(cli, card_db_path):
    connection = sqlite3.connect(card_db_path)
    connection.execute("PRAGMA user_version = 999")
    connection.commit()
    connection.close()
    with pytest.raises(SchemaError, match="newer than this tcgjobs understands"):
        open_card_database(card_db_path)
    result = invoke(cli, "run", "cleanup-stale-data")
    assert result.exit_code == 78, result.output
    assert "schema version 999" in result.stdout


def test_a_state_database_newer_than_the_code_is_refused_with_78(cli, settings, card_db_path):
    settings.state_path.parent.mkdir(parents=True, exist_ok=True)
    Ledger.open(settings.state_path, busy_timeout_ms=1000, stale_after=__import__("datetime").timedelta(60)).close()
    connection = sqlite3.connect(settings.state_path)
    connection.execute("PRAGMA user_version = 50")
    connection.commit()
    connection.close()
    result = invoke(cli, "run", "cleanup-stale-data")
    assert result.exit_code == 78, result.output
    assert "state database" in result.stderr and "schema version 50" in result.stderr
    assert invoke(cli, "status").exit_code == 78


def test_a_file_that_is_not_a_database_is_a_clear_configuration_error(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="cannot open SQLite database"):
        open_card_database(path)


def test_an_unwritable_database_directory_is_an_error_not_a_fallback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="directory"):
        open_card_database(blocker / "sub" / "cards.db", create=True)
