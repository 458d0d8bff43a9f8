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

from tcgjobs.services.replication import row_versions
from tcgjobs.services.replication.digests import (
    Comparison,
    SourceDigests,
    Totals,
    compare,
    id_totals,
    minus,
    plus,
)
from tcgjobs.services.replication.pgrows import CARDS, SETS, Table
from tcgjobs.services.replication.row_versions import Known


@dataclass
class Sent:
    """What a run did to one table, as far as its verification needs to know."""

    table: Table
    source: SourceDigests  # SQLite's side: the rows replicated
    exclude: list[str]  # ids left out on both sides: skipped rows, PostgreSQL-only rows kept
    changed: Callable[[], Iterable[str]]  # the ids of the rows the run sent
    before: Totals | None  # PostgreSQL's totals of those rows before (None: not kept)


class EarlyScan(threading.Thread):
    """PostgreSQL's checksums, computed on a second connection while SQLite is read, or kept
    from the last run when the tables' row versions are still those it recorded
    (:mod:`.row_versions`)."""

    #: How long the scan waits for its lock on a table (ACCESS SHARE, which only an ALTER, a
    #: TRUNCATE or a VACUUM FULL queued behind the run's own lock would hold up) before giving
    #: up: the run then compares every row itself and verifies by a scan after the commit,
    #: instead of waiting for a statement that waits for the run.
    LOCK_TIMEOUT = "2s"

    def __init__(self, connect: Callable[[], Any]) -> None:
        super().__init__(name="tcgjobs-verify", daemon=True)
        self._connect = connect
        self._connection: Any = None
        self._abandoned = False
        #: Per table, set once it is known whether the totals recorded for it still hold.
        self._checked = {table.name: threading.Event() for table in (SETS, CARDS)}
        self._kept: dict[str, Known] = {}
        #: Per table, the signature of its row versions before the run's writes, once checked.
        self.signatures: dict[str, str | None] = {}
        #: Per table, PostgreSQL's totals before the run's writes (None: not found).
        self.found: dict[str, Known] | None = None

    def kept(self, table: Table, check: Callable[[], None]) -> Known | None:
        """The totals the last run recorded for ``table``, when its rows are still the row
        versions they were recorded with (:func:`.row_versions.kept`); None when they are not,
        or could not be checked. Waits for the check (a few milliseconds after the start, at
        most :attr:`LOCK_TIMEOUT`), calling ``check`` meanwhile."""
        checked = self._checked[table.name]
        while not checked.wait(0.05):
            check()
        return self._kept.get(table.name)

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
            self._scan()
        finally:
            for checked in self._checked.values():
                checked.set()

    def _scan(self) -> None:
        try:
            connection = self._connection = self._connect()
        except Exception as exc:  # noqa: BLE001 - the verification after the commit will run instead
            logger.debug("early verification unavailable: {}", exc)
            return
        try:
            connection.set_session(readonly=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, false)", (self.LOCK_TIMEOUT,))
                for table in (SETS, CARDS):
                    self._stop_if_abandoned()
                    self.signatures[table.name], known = row_versions.kept(cursor, table)
                    if known is not None:
                        self._kept[table.name] = known
                    self._checked[table.name].set()
                found = {}
                for table in (SETS, CARDS):
                    self._stop_if_abandoned()
                    # One server process: this process needs the other core to fingerprint
                    # SQLite's rows meanwhile (parallel workers made both slower; measured A/B).
                    found[table.name] = (self._kept.get(table.name)
                                         or row_versions.scan(cursor, table, parallel=False))
                self.found = found
        except Exception as exc:  # noqa: BLE001 - the verification after the commit runs anyway
            logger.debug("early verification stopped: {}", exc)
        finally:
            connection.close()

    def _stop_if_abandoned(self) -> None:
        """A cancel sent between two statements reaches no statement: look before each."""
        if self._abandoned:
            raise _Abandoned("the early verification is not needed")


class _Abandoned(Exception):
    pass


def verify(connection: Any, tables: list[Sent], early: dict[str, Known] | None,
           check: Callable[[], None] = lambda: None) -> tuple[list[Comparison], dict[str, Known]]:
    """Compare both sides of each table after the commit (``early``: what the
    :class:`EarlyScan` found, when it ran to its end). ``check`` is called before each table, so a cancelled run
    stops here even between two statements (a cancel only interrupts a running one). Returns the
    comparisons and, per table, PostgreSQL's totals of the whole table after the commit."""
    results = []
    known: dict[str, Known] = {}
    connection.set_session(readonly=True)
    try:
        with connection.cursor() as cursor:
            for sent in tables:
                check()
                name = sent.table.name
                result = None
                if early is not None and sent.before is not None:
                    derived, changed = _committed_totals(cursor, sent, early[name].totals)
                    # A disagreement is decided (and its rows named) by the scan below.
                    result = compare(cursor, sent.table, sent.source, sent.exclude, derived,
                                     name_rows=False)
                    if result.equal:
                        known[name] = Known(derived, early[name].scanned_at)
                        result.method = f"{early[name].method}, {changed} changed rows re-read"
                if result is None or not result.equal:  # scan every row; name the rows
                    known[name] = row_versions.scan(cursor, sent.table, parallel=True)
                    result = compare(cursor, sent.table, sent.source, sent.exclude,
                                     known[name].totals)
                results.append(result)
        connection.rollback()
    finally:
        connection.set_session(readonly=False)
    return results, known


def _committed_totals(cursor: Any, sent: Sent, scanned: Totals) -> tuple[Totals, int]:
    """(the committed totals of the table, how many changed rows were read): the early scan's,
    with the rows the run changed as they were before replaced by what PostgreSQL computes over
    the same rows now (the tables were locked against other writers from the scan to the
    commit; a deleted row is no longer there to be read)."""
    now = id_totals(cursor, sent.table, sent.changed())
    return plus(minus(scanned, sent.before or (0, 0, 0)), now), now[0]
