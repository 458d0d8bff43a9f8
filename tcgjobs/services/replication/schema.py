"""The primary's schema: the platform's tables (its ``init.sql``) plus tcgjobs' columns,
as declared in :mod:`tcgjobs.db.card_schema` (the card tables' DDL is derived from it).

:func:`inspect` compares what exists with what replication needs and returns the DDL that would
make it so (create missing tables, add missing nullable columns, create the index) together with
every incompatibility. An incompatibility (a column of another type, a missing primary key, a
NOT NULL column replication would fill with NULL, a database not in UTF-8) is never "fixed":
nothing is dropped or retyped, and the job stops with all of them listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tcgjobs.db.card_schema import CARD_TABLES, CardColumn, CardTable, index_ddl
from tcgjobs.services.replication.pgrows import CATALOG_TYPES
from tcgjobs.services.replication.row_versions import STATE_DDL, STATE_TABLE

#: The platform's own columns that replication fills; a table lacking one of them is not the
#: platform's table. (tcgjobs' columns, and the platform's columns replication leaves alone,
#: are added when missing.)
ORIGINAL_COLUMNS: dict[str, frozenset[str]] = {
    table.name: frozenset(column.name for column in table.columns
                          if column.replicated and not column.added)
    for table in CARD_TABLES}

USERS_DDL = """CREATE TABLE IF NOT EXISTS users (
  id SERIAL PRIMARY KEY, username VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"""
#: tcgjobs' own bookkeeping: the fingerprint of each SQLite row as last replicated and its
#: canonical digest. It only decides which rows to send; verification never reads it. Created
#: without its primary key, which :data:`MEMO_KEY_DDL` adds once the first run's rows are in.
MEMO_TABLE = "tcgjobs_replication_rows"
MEMO_DDL = f"""CREATE TABLE IF NOT EXISTS {MEMO_TABLE} (
  table_name TEXT NOT NULL, id TEXT NOT NULL, source_fingerprint TEXT NOT NULL,
  digest TEXT NOT NULL)"""
MEMO_KEY_DDL = f"ALTER TABLE {MEMO_TABLE} ADD PRIMARY KEY (table_name, id)"


def _column_ddl(column: CardColumn) -> str:
    """A PostgreSQL column as the platform's init.sql declares it (foreign keys apart)."""
    constraint = " PRIMARY KEY" if column.primary_key else " NOT NULL" if column.not_null else ""
    default = f" DEFAULT {column.pg_default}" if column.pg_default else ""
    return f"{column.name} {column.pg_type}{constraint}{default}"


def _pg_columns(table: CardTable) -> list[CardColumn]:
    """The table's PostgreSQL columns: those replication fills, then the others."""
    others = [column for column in table.columns if column.pg is not None and not column.replicated]
    return [column for column in table.columns if column.replicated] + others


def create_table_ddl(table: CardTable) -> str:
    """The table as the platform creates it, but for its foreign keys, which
    :func:`foreign_key_ddl` adds once the rows are in (``SchemaPlan.after_load``)."""
    columns = ", ".join(_column_ddl(column) for column in _pg_columns(table))
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({columns})"


def foreign_key_ddl(table: CardTable) -> list[str]:
    """The platform's foreign keys of the table (an inline ``REFERENCES`` in its init.sql,
    which gives each constraint PostgreSQL's default name)."""
    return [f"ALTER TABLE {table.name} ADD CONSTRAINT {table.name}_{column.name}_fkey "
            f"FOREIGN KEY ({column.name}) REFERENCES {column.references}"
            for column in table.columns if column.references]


def _expected_type(column: CardColumn) -> str:
    return CATALOG_TYPES[column.pg_type]


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


def replicated_before(connection: Any) -> bool:
    """Whether a replication by tcgjobs ever committed into this database: its bookkeeping table
    (:data:`MEMO_TABLE`) is created in the same transaction as the first rows. Read-only."""
    with connection.cursor() as cursor:
        found = _relation(cursor, MEMO_TABLE)[0] is not None
    connection.rollback()
    return found


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
        for table in CARD_TABLES:
            _inspect_table(cursor, table, plan)
        for table in CARD_TABLES:
            indexes = index_ddl(table)
            if table.name in plan.missing_tables:
                plan.after_load += foreign_key_ddl(table) + list(indexes.values())
            else:
                plan.ddl += [sql for name, sql in indexes.items()
                             if _relation(cursor, name)[0] is None]
        memo_table = _relation(cursor, MEMO_TABLE)[0]
        if memo_table is None:
            plan.missing_tables.add(MEMO_TABLE)
            plan.ddl.append(MEMO_DDL)
            plan.after_load.append(MEMO_KEY_DDL)
        else:
            _find_row_hooks(cursor, memo_table, plan)
        if _relation(cursor, STATE_TABLE)[0] is None:
            plan.ddl.append(STATE_DDL)
    return plan


def _find_row_hooks(cursor: Any, regclass: str, plan: SchemaPlan) -> None:
    cursor.execute(_ROW_HOOKS_SQL, {"rel": regclass})
    plan.row_hooks += [f"{regclass}.{name}" for (name,) in cursor.fetchall()]


def _inspect_table(cursor: Any, table: CardTable, plan: SchemaPlan) -> None:
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
    columns = _pg_columns(table)
    nullable = {c.name for c in columns if c.replicated and not c.pg_not_null}
    for column in columns:
        name, expected = column.name, _expected_type(column)
        if name not in existing:
            if name in ORIGINAL_COLUMNS[table.name]:
                plan.problems.append(f"{table.name} has no column {name} ({expected}); it is not "
                                     "the platform's table")
            else:
                plan.ddl.append(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS "
                                f"{_column_ddl(column)}")
                if column.replicated:
                    plan.absent[table.name] = plan.absent.get(table.name, frozenset()) | {name}
            continue
        sql_type, not_null, _ = existing[name]
        if sql_type != expected:
            plan.problems.append(f"{table.name}.{name} is {sql_type}, expected {expected} "
                                 "(tcgjobs never retypes a column)")
        elif not_null and name in nullable:
            plan.problems.append(f"{table.name}.{name} is NOT NULL, but replication stores NULL "
                                 "there when SQLite has no value")
    known = {column.name for column in columns}
    for name, (_, not_null, has_default) in existing.items():
        if name not in known and not_null and not has_default:
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
