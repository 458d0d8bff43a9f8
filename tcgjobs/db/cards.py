"""The platform's card database: its exact DDL, tcgjobs' additive migrations and peewee models.

Migration 1 is the original's ``initSchema`` DDL verbatim (original-service.md §4.1), so an
existing platform database is recognised as is. Later migrations only add columns; they never
drop, rename or retype one, because the platform's REST and GraphQL APIs read this file.

Columns added by tcgjobs (migration 2) keep every source field that had no column:

* ``pokemon_cards.resistances`` — JSON array, ``[]`` when absent (like ``weaknesses``)
* ``pokemon_cards.level``, ``regulation_mark`` — text or NULL
* ``pokemon_cards.ancient_trait`` — JSON object or NULL
* ``pokemon_cards.extra`` / ``pokemon_card_sets.extra`` — JSON object of any other source field
  without a column (fields that appear in newer snapshots), or NULL
"""

from __future__ import annotations

from pathlib import Path

from peewee import IntegerField, Model, SqliteDatabase, TextField

from tcgjobs.db.sqlite import (Migration, add_columns, check_schema, ensure_writable_parent,
                               migrate, open_sqlite, statements)
from tcgjobs.errors import ConfigError

ORIGINAL_DDL = (
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

def _add_source_columns(db: SqliteDatabase) -> None:
    add_columns("pokemon_cards", [("resistances", "TEXT"), ("level", "TEXT"),
                                  ("ancient_trait", "TEXT"), ("regulation_mark", "TEXT"),
                                  ("extra", "TEXT")])(db)
    add_columns("pokemon_card_sets", [("extra", "TEXT")])(db)


#: One row per set synced by sync-missing-cards: the SHA-256 of the card file it read and of the
#: set's rows it left behind. A later run whose file and rows hash the same skips the set without
#: parsing it (a repeat sync costs a file hash and one indexed SELECT per set). Any change to the
#: file, to the set's rows (by anyone) or to the mapping (``mapping_version``) means a full compare.
SYNC_FINGERPRINT_DDL = """CREATE TABLE IF NOT EXISTS tcgjobs_card_sync (
  set_id TEXT PRIMARY KEY, file_sha256 TEXT NOT NULL, rows_sha256 TEXT NOT NULL,
  mapping_version INTEGER NOT NULL, cards INTEGER NOT NULL, duplicates TEXT NOT NULL,
  database_only TEXT NOT NULL,
  synced_at TEXT NOT NULL DEFAULT (datetime('now')))"""

CARD_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the platform's original schema", statements(*ORIGINAL_DDL)),
    Migration(2, "columns for source fields the original dropped", _add_source_columns),
    Migration(3, "card sync fingerprints (tcgjobs' own table)", statements(SYNC_FINGERPRINT_DDL)),
)

LABEL = "card database"


def open_card_database(path: Path, *, create: bool = False, readonly: bool = False,
                       busy_timeout_ms: int = 5000) -> SqliteDatabase:
    """Open the card database, migrating it when writable.

    ``create`` (the sync jobs only) creates the file and its directory; otherwise a missing file
    is a ConfigError, so no job ever works on a new, empty database by mistake. Raises
    SchemaError when the file's schema is newer than this code.
    """
    if not path.exists():
        if not create:
            raise ConfigError(
                f"card database {path} does not exist (check DATABASE_PATH; "
                "sync-missing-sets creates it on its first run)")
        if readonly:
            raise ConfigError(f"card database {path} does not exist")
    if not readonly:
        ensure_writable_parent(path, create=create)
    db = open_sqlite(path, readonly=readonly, busy_timeout_ms=busy_timeout_ms)
    try:
        if readonly:
            check_schema(db, CARD_MIGRATIONS, f"{LABEL} {path}")
        else:
            migrate(db, CARD_MIGRATIONS, f"{LABEL} {path}")
    except BaseException:
        db.close()
        raise
    return db


class _Base(Model):
    class Meta:
        database = None


class CardSet(_Base):
    id = TextField(primary_key=True)
    name = TextField()
    series = TextField()
    printed_total = IntegerField(null=True)
    total = IntegerField(null=True)
    legalities = TextField(null=True)
    ptcgo_code = TextField(null=True)
    release_date = TextField(null=True)
    updated_at = TextField(null=True)
    images = TextField(null=True)
    created_at = TextField(null=True)
    extra = TextField(null=True)

    class Meta:
        table_name = "pokemon_card_sets"


class Card(_Base):
    id = TextField(primary_key=True)
    name = TextField()
    supertype = TextField()
    subtypes = TextField()
    hp = IntegerField(null=True)
    types = TextField()
    evolves_from = TextField(null=True)
    evolves_to = TextField(null=True)
    rules = TextField(null=True)
    abilities = TextField(null=True)
    attacks = TextField(null=True)
    weaknesses = TextField(null=True)
    retreat_cost = TextField(null=True)
    converted_retreat_cost = IntegerField(null=True)
    set_id = TextField()
    number = TextField()
    artist = TextField(null=True)
    rarity = TextField(null=True)
    flavor_text = TextField(null=True)
    national_pokedex_numbers = TextField(null=True)
    legalities = TextField(null=True)
    images = TextField(null=True)
    tcgplayer_url = TextField(null=True)
    cardmarket_url = TextField(null=True)
    created_at = TextField(null=True)
    updated_at = TextField(null=True)
    resistances = TextField(null=True)
    level = TextField(null=True)
    ancient_trait = TextField(null=True)
    regulation_mark = TextField(null=True)
    extra = TextField(null=True)

    class Meta:
        table_name = "pokemon_cards"


CARD_MODELS = (CardSet, Card)


def table_counts(db: SqliteDatabase) -> dict[str, int]:
    """Row counts of the platform's tables."""
    return {
        table: db.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("pokemon_card_sets", "pokemon_cards", "users")
    }
