"""Opening SQLite databases the same way everywhere, and forward-only schema migrations.

Every connection runs with foreign keys on and a busy timeout; writable connections use WAL, like
the platform. Read-only connections open the file with ``mode=ro`` so a missing file is an error,
never a new empty database (the original silently fell back to an in-memory one).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from peewee import SqliteDatabase

from tcgjobs.errors import ConfigError, SchemaError


def open_sqlite(path: Path, *, readonly: bool = False, busy_timeout_ms: int = 5000) -> SqliteDatabase:
    """A connected peewee database for ``path``.

    Raises ConfigError when the file is missing (read-only) or cannot be opened.
    """
    pragmas: dict[str, int | str] = {"foreign_keys": 1, "busy_timeout": busy_timeout_ms}
    if readonly:
        if not path.exists():
            raise ConfigError(f"database {path} does not exist")
        db = SqliteDatabase(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, pragmas=pragmas)
    else:
        pragmas = {"journal_mode": "wal", **pragmas}
        db = SqliteDatabase(str(path), pragmas=pragmas)
    try:
        db.connect()
        db.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
    except Exception as exc:  # sqlite3 raises DatabaseError subclasses for every kind of failure
        db.close()
        raise ConfigError(f"cannot open SQLite database {path}: {exc}") from exc
    return db


def ensure_writable_parent(path: Path, *, create: bool) -> None:
    """Make sure ``path``'s directory exists (creating it only if ``create``) and is writable.

    Raises ConfigError otherwise: an unwritable database directory is never worked around.
    """
    parent = path.parent
    if not parent.exists():
        if not create:
            raise ConfigError(f"directory {parent} does not exist")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create directory {parent}: {exc.strerror}") from exc
    if not parent.is_dir():
        raise ConfigError(f"{parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"directory {parent} is not writable")


def database_bytes(path: Path) -> int:
    """Bytes of a database file plus its WAL: what it occupies, and what a copy can at most need."""
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += candidate.stat().st_size
    return total


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` (sqlite3's, or peewee's wrapper around it) is SQLITE_INTERRUPT: a
    statement stopped by ``Connection.interrupt`` (a cancelled run), not a fault of the file."""
    while exc is not None:
        if getattr(exc, "sqlite_errorname", None) == "SQLITE_INTERRUPT":
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def integrity_problems(connection: sqlite3.Connection, *, quick: bool = False,
                       limit: int = 10) -> list[str]:
    """``PRAGMA integrity_check`` (or the cheaper ``quick_check``) messages, at most ``limit``;
    empty when the database is sound. Damage so bad that the check itself gives up is one
    problem, SQLite's message. Any other error (interrupted by a cancelled run, a lock, a full
    disk) is raised as is: it says nothing about the file, so it is never reported as damage."""
    pragma = "quick_check" if quick else "integrity_check"
    try:
        rows = [row[0] for row in connection.execute(f"PRAGMA {pragma}({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
            return [str(exc)]
        raise
    return [] if rows == ["ok"] else [str(row) for row in rows]


@dataclass(frozen=True)
class Migration:
    """One forward-only, non-destructive schema step. ``apply`` runs inside a transaction."""

    version: int
    description: str
    apply: Callable[[SqliteDatabase], None]


def statements(*sql: str) -> Callable[[SqliteDatabase], None]:
    def apply(db: SqliteDatabase) -> None:
        for statement in sql:
            db.execute_sql(statement)

    return apply


def add_columns(table: str, columns: Sequence[tuple[str, str]]) -> Callable[[SqliteDatabase], None]:
    """Add each ``(name, type)`` column that ``table`` lacks. Existing columns are left alone."""

    def apply(db: SqliteDatabase) -> None:
        present = {row[1] for row in db.execute_sql(f'PRAGMA table_info("{table}")').fetchall()}
        for name, kind in columns:
            if name not in present:
                db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {kind}')

    return apply


def schema_version(db: SqliteDatabase) -> int:
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def check_schema(db: SqliteDatabase, migrations: Sequence[Migration], label: str) -> int:
    """The database's schema version. Raises SchemaError if it is newer than this code knows."""
    version = schema_version(db)
    latest = migrations[-1].version
    if version > latest:
        raise SchemaError(
            f"{label} has schema version {version}, newer than this tcgjobs understands ({latest}); "
            "upgrade tcgjobs instead of letting an older version write to it")
    return version


def migrate(db: SqliteDatabase, migrations: Sequence[Migration], label: str) -> list[Migration]:
    """Apply every migration newer than the database's version, each in its own transaction.

    Returns the migrations applied. Raises SchemaError if the database is newer than the code.
    """
    version = check_schema(db, migrations, label)
    applied = []
    for migration in migrations:
        if migration.version <= version:
            continue
        with db.atomic():
            migration.apply(db)
            db.execute_sql(f"PRAGMA user_version = {int(migration.version)}")
        applied.append(migration)
    return applied
