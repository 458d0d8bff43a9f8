"""Per-row state of a replication or a comparison, kept in SQLite temporary tables on the card
database's own (read) connection instead of in Python: a run's memory stays the same whatever
the number of rows (issue: bounded memory at ten times today's data).

A temporary table lives in SQLite's temp database: private to the connection, writable on a
read-only one, outside the card database's read transaction (writing it takes no lock on the
card database), in a file under SQLITE_TMPDIR (tcgjobs points it at TCGJOBS_TMPDIR) with a page
cache of at most :data:`CACHE_KIB`. Joins between these tables and the card tables run in C.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from peewee import SqliteDatabase

#: The page cache of the temp database (SQLite's default is 2 MiB; the per-row tables of a run
#: at ten times today's data are about 15 MiB, which then mostly stay in memory).
CACHE_KIB = 16_384


class Scratch:
    """The temporary tables of one run on ``db``'s connection; :meth:`close` drops them."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.connection: sqlite3.Connection = db.connection()
        self.connection.execute(f"PRAGMA temp.cache_size = -{CACHE_KIB}")
        self._tables: list[str] = []

    def table(self, name: str, columns: str, *, keyed: bool = True) -> str:
        """(Re)create ``temp.tcgjobs_<name>`` with ``columns``; ``keyed``: the first column is
        the primary key (a b-tree without rowid, cheapest filled in key order)."""
        full = f"temp.tcgjobs_{name}"
        self.connection.execute(f"DROP TABLE IF EXISTS {full}")
        suffix = " WITHOUT ROWID" if keyed else ""
        first, _, rest = columns.partition(",")
        body = f"{first} PRIMARY KEY,{rest}" if keyed and rest else (
            f"{first} PRIMARY KEY" if keyed else columns)
        self.connection.execute(f"CREATE TABLE {full} ({body}){suffix}")
        self._tables.append(full)
        return full

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One transaction (of its own, or a part of the one open) for what is written inside;
        rolled back when it raises."""
        self.connection.execute("SAVEPOINT tcgjobs_scratch")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK TO tcgjobs_scratch")
            self.connection.execute("RELEASE tcgjobs_scratch")
            raise
        self.connection.execute("RELEASE tcgjobs_scratch")

    def fill(self, table: str, rows: Iterable[tuple[Any, ...]], width: int) -> None:
        """Insert ``rows`` (an iterator is streamed, never held) into ``table``, in one
        transaction (:meth:`savepoint`)."""
        with self.savepoint():
            self.connection.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, params)

    def close(self) -> None:
        for table in reversed(self._tables):
            try:
                self.connection.execute(f"DROP TABLE IF EXISTS {table}")
            except sqlite3.Error:  # the connection closes soon after; its temp database goes too
                break
        self._tables.clear()
