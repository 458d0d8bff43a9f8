"""The platform's card database: its original schema, tcgjobs' additive migrations, opening it.

Migration 1 creates the platform's original schema (the original service's ``initSchema``): its ``users``
table verbatim, and its two card tables from the declaration in :mod:`tcgjobs.db.card_schema`,
whose original columns produce exactly the original's DDL, so an existing platform database is
recognised as is. Later migrations only add columns; they never drop, rename or retype one,
because the platform's REST and GraphQL APIs read this file.

Migration 2 adds the declared columns tcgjobs added, which keep every source field that had no
column: ``pokemon_cards.resistances``, ``level``, ``ancient_trait``, ``regulation_mark``, and
``extra`` in both tables (a JSON object of any other source field, e.g. fields that appear in
newer snapshots).
"""

from __future__ import annotations

from pathlib import Path

from peewee import SqliteDatabase

from tcgjobs.db.card_schema import CARD_TABLES, CardColumn, CardTable, index_ddl
from tcgjobs.db.sqlite import (
    Migration,
    add_columns,
    check_schema,
    ensure_writable_parent,
    migrate,
    open_sqlite,
    statements,
)
from tcgjobs.errors import ConfigError

#: The platform's users table (tcgjobs never reads or writes it; the original created it).
USERS_DDL = """CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL, email TEXT NOT NULL, password TEXT NOT NULL,
  created_at TEXT DEFAULT (datetime('now')), updated_at TEXT DEFAULT (datetime('now')))"""


def _column_ddl(column: CardColumn) -> str:
    """A column as the platform's DDL declares it (``set_id TEXT NOT NULL REFERENCES ...``)."""
    parts = [column.name, str(column.sqlite)]
    if column.primary_key:
        parts.append("PRIMARY KEY")
    if column.not_null:
        parts.append("NOT NULL")
    if column.references:
        parts.append(f"REFERENCES {column.references}")
    if column.sqlite_default:
        parts.append(f"DEFAULT {column.sqlite_default}")
    return " ".join(parts)


def create_table_ddl(table: CardTable) -> str:
    """The platform's CREATE TABLE of a card table: its original SQLite columns, in order."""
    columns = ", ".join(_column_ddl(column) for column in table.columns
                        if column.sqlite is not None and not column.added)
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns})"


#: The original's ``initSchema``: the users table, the card tables, the set index.
ORIGINAL_DDL = (USERS_DDL, *(create_table_ddl(table) for table in CARD_TABLES),
                *(sql for table in CARD_TABLES for sql in index_ddl(table).values()))


def _add_source_columns(db: SqliteDatabase) -> None:
    for table in CARD_TABLES:
        add_columns(table.name, [(column.name, str(column.sqlite)) for column in table.columns
                                 if column.added and column.sqlite is not None])(db)


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


def missing_card_database(path: Path) -> str | None:
    """Why ``path`` cannot be the card database a job works on (it is not there), or None."""
    if path.exists():
        return None
    return (f"card database {path} does not exist (check DATABASE_PATH; "
            "sync-missing-sets creates it on its first run)")


def open_card_database(path: Path, *, create: bool = False, readonly: bool = False,
                       busy_timeout_ms: int = 5000) -> SqliteDatabase:
    """Open the card database, migrating it when writable.

    ``create`` (the sync jobs only) creates the file and its directory; otherwise a missing file
    is a ConfigError, so no job ever works on a new, empty database by mistake. Raises
    SchemaError when the file's schema is newer than this code.
    """
    missing = missing_card_database(path)
    if missing:
        if not create:
            raise ConfigError(missing)
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


def table_counts(db: SqliteDatabase) -> dict[str, int]:
    """Row counts of the platform's tables."""
    return {
        table: db.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("pokemon_card_sets", "pokemon_cards", "users")
    }
