"""The verification after the commit, and the early scan of PostgreSQL that can stand in for most
of it (docs/replication.md, "Verification").

Per table, SQLite's side is the digests of the snapshot's rows (computed or, for rows whose
fingerprint is unchanged, known); PostgreSQL's side is computed by the server over its rows.
:class:`EarlyScan` computes PostgreSQL's checksums on a second connection while SQLite is read,
after the run locked the tables against other writers; they stay locked until the commit, so the
committed state is that scan's state plus what the run changed. When the run kept PostgreSQL's
digests of the rows it changed from before the change (:attr:`Sent.before`), the committed
checksum is the scan's minus those plus the digests the server computes over the same rows after
the commit; otherwise, and whenever such a result disagrees, every row is scanned again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from loguru import logger

from tcgjobs.services.replication.digests import (
    Comparison,
    SourceDigests,
    Totals,
    compare,
    id_totals,
    minus,
    plus,
    primary_totals,
)
from tcgjobs.services.replication.pgrows import CARDS, SETS, Table


@dataclass
class Sent:
    """What a run did to one table, as far as its verification needs to know."""

    table: Table
    source: SourceDigests  # SQLite's side: the rows replicated
    exclude: list[str]  # ids left out on both sides: skipped rows, PostgreSQL-only rows kept
    changed: Callable[[], Iterable[str]]  # the ids of the rows the run sent
    before: Totals | None  # PostgreSQL's totals of those rows before (None: not kept)


class EarlyScan(threading.Thread):
    """PostgreSQL's checksums, computed on a second connection while SQLite is read."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        super().__init__(name="tcgjobs-verify", daemon=True)
        self._connect = connect
        self._connection: Any = None
        self._abandoned = False
        self.totals: dict[str, Totals] | None = None

    def abandon(self) -> None:
        """The result is not needed (the run changed too many rows to use it): stop the scan."""
        if self._abandoned:
            return
        self._abandoned = True
        connection = self._connection
        if connection is not None:
            with suppress(Exception):
                connection.cancel()

    def run(self) -> None:
        try:
            connection = self._connection = self._connect()
        except Exception as exc:  # noqa: BLE001 - the verification after the commit will run instead
            logger.debug("early verification unavailable: {}", exc)
            return
        if self._abandoned:
            connection.close()
            return
        try:
            connection.set_session(readonly=True)
            with connection.cursor() as cursor:
                # One server process: this process needs the other core to fingerprint SQLite's
                # rows meanwhile (parallel workers made both slower; measured A/B).
                self.totals = {t.name: primary_totals(cursor, t, parallel=False)
                               for t in (SETS, CARDS)}
        except Exception as exc:  # noqa: BLE001 - the verification after the commit runs anyway
            logger.debug("early verification failed: {}", exc)
        finally:
            connection.close()


def verify(connection: Any, tables: list[Sent], early: dict[str, Totals] | None,
           check: Callable[[], None] = lambda: None) -> list[Comparison]:
    """Compare both sides of each table after the commit (``early``: the :class:`EarlyScan`'s
    totals, when it ran to its end). ``check`` is called before each table, so a cancelled run
    stops here even between two statements (a cancel only interrupts a running one)."""
    results = []
    totals_changed: dict[str, int] = {}
    connection.set_session(readonly=True)
    try:
        with connection.cursor() as cursor:
            for sent in tables:
                check()
                totals = None
                if early is not None and sent.before is not None:
                    totals, totals_changed[sent.table.name] = _committed_totals(
                        cursor, sent, early[sent.table.name])
                result = compare(cursor, sent.table, sent.source, sent.exclude, totals)
                if totals is not None and not result.equal:  # scan every row; name the rows
                    result = compare(cursor, sent.table, sent.source, sent.exclude)
                elif totals is not None:
                    result.method = (f"scan before the writes, {totals_changed[sent.table.name]} "
                                     "changed rows re-read")
                results.append(result)
        connection.rollback()
    finally:
        connection.set_session(readonly=False)
    return results


def _committed_totals(cursor: Any, sent: Sent, scanned: Totals) -> tuple[Totals, int]:
    """(the committed totals of the table, how many changed rows were read): the early scan's,
    with the rows the run changed as they were before replaced by what PostgreSQL computes over
    the same rows now (the tables were locked against other writers from the scan to the
    commit; a deleted row is no longer there to be read)."""
    now = id_totals(cursor, sent.table, sent.changed())
    return plus(minus(scanned, sent.before or (0, 0, 0)), now), now[0]
