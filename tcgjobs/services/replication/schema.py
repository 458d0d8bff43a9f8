"""The primary's schema: the platform's tables (original-service.md §4.2) plus tcgjobs' columns.

:func:`inspect` compares what exists with what replication needs and returns the DDL that would
make it so (create missing tables, add missing nullable columns, create the index) together with
every incompatibility. An incompatibility (a column of another type, a missing primary key, a
NOT NULL column replication would fill with NULL, a database not in UTF-8) is never "fixed":
nothing is dropped or retyped, and the job stops with all of them listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tcgjobs.services.replication.pgrows import CARDS, SETS, Table

TIMESTAMP = "timestamp without time zone"

#: Columns of the platform's tables that replication does not fill, with their DDL.
UNREPLICATED: dict[str, dict[str, str]] = {
    SETS.name: {"created_at": "TIMESTAMP DEFAULT CURRENT_TIMESTAMP"},
    CARDS.name: {"tcgplayer_updated_at": "DATE", "tcgplayer_prices": "JSONB",
                 "cardmarket_updated_at": "DATE", "cardmarket_prices": "JSONB",
                 "created_at": "TIMESTAMP DEFAULT CURRENT_TIMESTAMP",
                 "updated_at": "TIMESTAMP DEFAULT CURRENT_TIMESTAMP"},
}
_UNREPLICATED_TYPES = {"DATE": "date", "JSONB": "jsonb", "TIMESTAMP": TIMESTAMP}

#: Columns of the original §4.2 tables; a table lacking one of them is not the platform's table.
ORIGINAL_COLUMNS: dict[str, frozenset[str]] = {
    SETS.name: frozenset(SETS.names) - {"extra"},
    CARDS.name: frozenset(CARDS.names) - {"resistances", "level", "ancient_trait",
                                          "regulation_mark", "extra"},
}

USERS_DDL = """CREATE TABLE IF NOT EXISTS users (
  id SERIAL PRIMARY KEY, username VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"""
INDEX_DDL = "CREATE INDEX IF NOT EXISTS idx_pokemon_cards_set_id ON pokemon_cards(set_id)"
#: The platform's foreign key of cards to sets (an inline ``REFERENCES`` in its init.sql, which
#: gives the constraint this name).
FOREIGN_KEY_DDL = ("ALTER TABLE pokemon_cards ADD CONSTRAINT pokemon_cards_set_id_fkey "
                   "FOREIGN KEY (set_id) REFERENCES pokemon_card_sets(id)")
#: tcgjobs' own bookkeeping: the fingerprint of each SQLite row as last replicated and its
#: canonical digest. It only decides which rows to send; verification never reads it. Created
#: without its primary key, which :data:`MEMO_KEY_DDL` adds once the first run's rows are in.
MEMO_TABLE = "tcgjobs_replication_rows"
MEMO_DDL = f"""CREATE TABLE IF NOT EXISTS {MEMO_TABLE} (
  table_name TEXT NOT NULL, id TEXT NOT NULL, source_fingerprint TEXT NOT NULL,
  digest TEXT NOT NULL)"""
MEMO_KEY_DDL = f"ALTER TABLE {MEMO_TABLE} ADD PRIMARY KEY (table_name, id)"


def _column_ddl(table: Table, name: str) -> str:
    for column in table.columns:
        if column.name == name:
            sql_type = {"text": "TEXT", "int": "INTEGER", "text[]": "TEXT[]",
                        "evolves_from": "TEXT[]", "jsonb": "JSONB", "date": "DATE",
                        "timestamp": "TIMESTAMP"}[column.kind]
            suffix = " PRIMARY KEY" if name == "id" else (" NOT NULL" if column.not_null else "")
            return f"{name} {sql_type}{suffix}"
    return f"{name} {UNREPLICATED[table.name][name]}"


def _all_columns(table: Table) -> list[str]:
    return list(table.names) + list(UNREPLICATED[table.name])


def create_table_ddl(table: Table) -> str:
    """The table as the platform creates it, but for the cards' foreign key, which
    :data:`FOREIGN_KEY_DDL` adds once the rows are in (``SchemaPlan.after_load``)."""
    columns = ", ".join(_column_ddl(table, name) for name in _all_columns(table))
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns})"


def _expected_type(table: Table, name: str) -> str:
    for column in table.columns:
        if column.name == name:
            return column.pg_type
    return _UNREPLICATED_TYPES[UNREPLICATED[table.name][name].split()[0]]


@dataclass
class SchemaPlan:
    """What :func:`inspect` found: the DDL to run and the incompatibilities."""

    ddl: list[str] = field(default_factory=list)
    #: DDL for tables :attr:`ddl` creates, run once their rows are in, in the same transaction:
    #: the cards' foreign key and set index, the bookkeeping's primary key (checking and
    #: indexing 16,000 rows at once costs a fraction of doing it row by row, as pg_restore and
    #: pgloader do).
    after_load: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing_tables: set[str] = field(default_factory=set)
    #: Replicated columns an existing table lacks (:attr:`ddl` adds them): until then they read
    #: as NULL when PostgreSQL's digests are computed (a dry run, the parity check).
    absent: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Triggers and rules on the replicated tables ("table.name"): code that may change rows a
    #: run's statements do not name, so the verification re-reads every row (see engine).
    row_hooks: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        return [statement.split("(")[0].strip() for statement in self.ddl + self.after_load]


_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
_ROW_HOOKS_SQL = """
SELECT tgname FROM pg_trigger WHERE tgrelid = %(rel)s::regclass AND NOT tgisinternal
UNION ALL
SELECT rulename FROM pg_rewrite WHERE ev_class = %(rel)s::regclass AND rulename <> '_RETURN'
"""
_UNIQUE_ID_SQL = """
SELECT coalesce(bool_or(i.indimmediate), false), coalesce(bool_or(NOT i.indimmediate), false)
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indnatts = 1
  AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = 'id'
"""


def _relation(cursor: Any, name: str) -> tuple[str | None, str | None]:
    """(regclass text, relkind) of ``name`` on the search path, or (None, None)."""
    cursor.execute("SELECT c.oid::regclass::text, c.relkind FROM pg_class c "
                   "WHERE c.oid = to_regclass(%s)", (name,))
    row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)


def inspect(connection: Any) -> SchemaPlan:
    """Compare the primary's schema with what replication needs (read-only)."""
    plan = SchemaPlan()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_encoding")
        encoding = cursor.fetchone()[0]
        if encoding.upper() not in ("UTF8", "UTF-8"):
            plan.problems.append(f"the database encoding is {encoding}; replication needs UTF8 "
                                 "(card names contain non-ASCII characters)")
        if _relation(cursor, "users")[0] is None:
            plan.ddl.append(USERS_DDL)
        for table in (SETS, CARDS):
            _inspect_table(cursor, table, plan)
        if CARDS.name in plan.missing_tables:
            plan.after_load += [FOREIGN_KEY_DDL, INDEX_DDL]
        elif _relation(cursor, "idx_pokemon_cards_set_id")[0] is None:
            plan.ddl.append(INDEX_DDL)
        memo_table = _relation(cursor, MEMO_TABLE)[0]
        if memo_table is None:
            plan.missing_tables.add(MEMO_TABLE)
            plan.ddl.append(MEMO_DDL)
            plan.after_load.append(MEMO_KEY_DDL)
        else:
            _find_row_hooks(cursor, memo_table, plan)
    return plan


def _find_row_hooks(cursor: Any, regclass: str, plan: SchemaPlan) -> None:
    cursor.execute(_ROW_HOOKS_SQL, {"rel": regclass})
    plan.row_hooks += [f"{regclass}.{name}" for (name,) in cursor.fetchall()]


def _inspect_table(cursor: Any, table: Table, plan: SchemaPlan) -> None:
    regclass, relkind = _relation(cursor, table.name)
    if regclass is None:
        plan.missing_tables.add(table.name)
        plan.ddl.append(create_table_ddl(table))
        return
    if relkind not in ("r", "p"):
        plan.problems.append(f"{table.name} exists but is not a table (relkind {relkind!r})")
        return
    cursor.execute(_COLUMNS_SQL, (regclass,))
    existing = {name: (sql_type, not_null, has_default)
                for name, sql_type, not_null, has_default in cursor.fetchall()}
    nullable = {c.name for c in table.columns if not c.not_null}
    for name in _all_columns(table):
        expected = _expected_type(table, name)
        if name not in existing:
            if name in ORIGINAL_COLUMNS[table.name]:
                plan.problems.append(f"{table.name} has no column {name} ({expected}); it is not "
                                     "the platform's table")
            else:
                plan.ddl.append(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS "
                                f"{_column_ddl(table, name)}")
                if name in table.names:
                    plan.absent[table.name] = plan.absent.get(table.name, frozenset()) | {name}
            continue
        sql_type, not_null, _ = existing[name]
        if sql_type != expected:
            plan.problems.append(f"{table.name}.{name} is {sql_type}, expected {expected} "
                                 "(tcgjobs never retypes a column)")
        elif not_null and name in nullable:
            plan.problems.append(f"{table.name}.{name} is NOT NULL, but replication stores NULL "
                                 "there when SQLite has no value")
    for name, (_, not_null, has_default) in existing.items():
        if name not in _all_columns(table) and not_null and not has_default:
            plan.problems.append(f"{table.name}.{name} is NOT NULL without a default; rows "
                                 "replication inserts would violate it")
    _find_row_hooks(cursor, regclass, plan)
    cursor.execute(_UNIQUE_ID_SQL, (regclass,))
    immediate, deferrable = cursor.fetchone()
    if deferrable:
        plan.problems.append(f"{table.name}.id has a DEFERRABLE unique key, which ON CONFLICT "
                             "cannot use (replication upserts by id)")
    elif not immediate:
        plan.problems.append(f"{table.name}.id has no primary key or unique index "
                             "(needed to upsert by id)")
