"""Replication of the SQLite card database into the primary PostgreSQL, and parity checks.

:func:`replicate` (in :mod:`.engine`) does one exact, incremental, transactional replication;
:func:`check_parity` / :func:`primary_parity` compare both databases without writing
(validate-data-integrity calls the latter when a primary is configured).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.services.replication.digests import Comparison, compare
from tcgjobs.services.replication.engine import Outcome, TableStats, replicate
from tcgjobs.services.replication.pgrows import CARDS, SETS
from tcgjobs.services.replication.schema import MEMO_TABLE, inspect, replicated_before
from tcgjobs.services.replication.scratch import Scratch
from tcgjobs.services.replication.source import source_digests

__all__ = ["Comparison", "NeverReplicated", "Outcome", "TableStats", "check_parity", "primary_parity",
           "replicate"]


class NeverReplicated(Exception):
    """The primary holds no replication by tcgjobs yet (no bookkeeping table): before the first
    replicate-to-primary, every row would differ, which says nothing about either database."""


def check_parity(connection: Any, db: SqliteDatabase,
                 check: Callable[[], None] = lambda: None) -> list[Comparison]:
    """Per table (sets, cards): row counts, checksums and example differing ids of SQLite and
    PostgreSQL, computed from the rows of both sides. Read-only on both.

    SQLite rows that cannot be mapped are listed in ``unmappable`` (and make the table unequal). A table missing in
    PostgreSQL counts as empty. Raises psycopg2 errors as they come.
    """
    plan = inspect(connection)
    connection.rollback()
    results = []
    scratch = Scratch(db)
    connection.set_session(readonly=True)
    try:
        with db.atomic(), connection.cursor() as cursor:
            for table in (SETS, CARDS):
                digests, skipped = source_digests(db, scratch, table, check)
                if table.name in plan.missing_tables:
                    missing = [key for (key,) in scratch.execute(
                        f"SELECT id FROM {digests.table} ORDER BY id")]
                    result = Comparison(table.name, digests.checksum.count, 0,
                                        digests.checksum.text, "(no table)", missing=missing)
                else:
                    result = compare(cursor, table, digests, exclude=skipped,
                                     absent=plan.absent.get(table.name, ()))
                result.unmappable = [f"{key}: {reason}" for key, reason in skipped.items()]
                results.append(result)
    finally:  # also after an error, which leaves the transaction aborted
        connection.rollback()
        connection.set_session(readonly=False)
        scratch.close()
    return results



def primary_parity(settings: Any, db: SqliteDatabase, connect: Callable[[], Any],
                   check: Callable[[], None] = lambda: None) -> list[Comparison] | None:
    """:func:`check_parity` against the configured primary, or None when none is configured.
    Raises NeverReplicated when tcgjobs never replicated into it.

    ``connect`` opens the connection (a job passes ``ctx.postgres``, bounded by the run and
    cancelled with it). Raises ServiceUnavailable when the primary cannot be reached and
    ServiceRefused when it refuses us (no password in either message).
    """
    if not settings.postgres_configured:
        return None
    connection = connect()
    try:
        if not replicated_before(connection):
            raise NeverReplicated(f"the primary PostgreSQL was never replicated by tcgjobs (it has no "
                                  f"{MEMO_TABLE} table): not compared; the first "
                                  f"replicate-to-primary run creates it")
        return check_parity(connection, db, check)
    finally:
        connection.close()
