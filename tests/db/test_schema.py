"""Card and state database schemas: the original DDL, additive migrations, newer schemas refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tcgjobs.db.cards import CARD_MIGRATIONS, ORIGINAL_DDL, open_card_database
from tcgjobs.db.state import Ledger
from tcgjobs.errors import ConfigError, SchemaError
from tests.conftest import invoke

ORIGINAL_CARD_COLUMNS = [
    "id", "name", "supertype", "subtypes", "hp", "types", "evolves_from", "evolves_to", "rules", "abilities",
    "attacks", "weaknesses", "retreat_cost", "converted_retreat_cost", "set_id", "number", "artist", "rarity",
    "flavor_text", "national_pokedex_numbers", "legalities", "images", "tcgplayer_url", "cardmarket_url",
    "created_at", "updated_at"]


def columns(path: Path, table: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"PRAGMA table_info({table})").fetchall()
    finally:
        connection.close()


def test_a_new_card_database_has_the_original_columns_first_then_additions(tmp_path):
    path = tmp_path / "cards.db"
    open_card_database(path, create=True).close()
    names = [c[1] for c in columns(path, "pokemon_cards")]
    assert names[:len(ORIGINAL_CARD_COLUMNS)] == ORIGINAL_CARD_COLUMNS
    assert {"resistances", "level", "ancient_trait", "regulation_mark", "extra"} <= set(names)
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == CARD_MIGRATIONS[-1].version
    index = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'idx_pokemon_cards_set_id'").fetchone()
    assert index is not None


def test_a_platform_database_made_by_the_original_is_migrated_without_touching_its_rows(tmp_path):
    path = tmp_path / "platform.db"
    connection = sqlite3.connect(path)
    for statement in ORIGINAL_DDL:
        connection.execute(statement)
    connection.execute("INSERT INTO pokemon_card_sets(id, name, series) VALUES ('base1', 'Base', 'Base')")
    connection.execute("INSERT INTO pokemon_cards(id, name, supertype, subtypes, types, set_id, number, hp, "
                       "evolves_from) VALUES ('base1-1', 'Alakazam', 'Pokémon', '[]', '[]', 'base1', '1', -1, "
                       "'\"Kadabra\"')")
    connection.commit()
    before = connection.execute("SELECT * FROM pokemon_cards").fetchall()
    connection.close()
    open_card_database(path).close()
    open_card_database(path).close()  # idempotent
    connection = sqlite3.connect(path)
    after = connection.execute(f"SELECT {', '.join(ORIGINAL_CARD_COLUMNS)} FROM pokemon_cards").fetchall()
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
