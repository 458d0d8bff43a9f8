"""The replication engine against a real PostgreSQL: one SQLite snapshot per run, and what the rows
raise during COPY is what the run reports (psycopg2 replaces it by a QueryCanceled error, which
read as a statement timeout)."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest

from tcgjobs.services.replication.pgcopy import copy_lines

pytestmark = pytest.mark.postgres


def test_what_the_rows_raise_during_copy_is_raised_not_psycopg2s_stand_in(postgres_url):
    import sqlite3

    def lines():
        yield "a\n"
        raise sqlite3.DatabaseError("database disk image is malformed")

    connection = psycopg2.connect(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE t (id TEXT)")
            with pytest.raises(sqlite3.DatabaseError, match="malformed"):
                copy_lines(cursor, "COPY t (id) FROM STDIN", lines())
        connection.rollback()
    finally:
        connection.close()


def test_sets_and_cards_are_read_from_one_sqlite_snapshot(env, postgres_url, tmp_path):
    """A writer commits a new set, its card and a renamed card after the sets were read and before
    the cards are: the run replicates neither (one read transaction), and the next run does."""
    import sqlite3
    from pathlib import Path

    from tcgjobs.db.cards import open_card_database
    from tcgjobs.services import postgres
    from tcgjobs.services.replication.engine import replicate
    from tests.conftest import make_settings
    from tests.support.replication import a_card_row, a_set_row, execute, handcrafted_rows, write_card_db

    path = Path(env["DATABASE_PATH"])
    write_card_db(path, *handcrafted_rows())
    settings = make_settings(TCGJOBS_POSTGRES_URL=postgres_url)
    calls = []

    def check() -> None:  # the engine calls it before each table is read, among other times
        calls.append(1)
        if len(calls) == 3:  # the sets are read; the cards not yet
            write_card_db(path, [a_set_row("late")], [a_card_row("late", "1"),
                                                      a_card_row("swshp", "177a", name="Renamed")])

    def run() -> Any:
        db = open_card_database(path, readonly=True)
        try:
            return replicate(lambda: postgres.connect(settings), db, delete=False, dry_run=False,
                             check=check)
        finally:
            db.close()

    outcome = run()

    assert len(calls) > 3 and outcome.verified
    assert sqlite3.connect(path).execute("SELECT count(*) FROM pokemon_cards WHERE set_id = 'late'"
                                         ).fetchone() == (1,)  # the write did commit meanwhile
    assert outcome.stats["cards"].skipped == {}  # no card of a set the run did not see
    assert execute(postgres_url, "SELECT count(*) FROM pokemon_cards WHERE set_id = 'late'") == [(0,)]
    assert execute(postgres_url, "SELECT name FROM pokemon_cards WHERE id = 'swshp-177a'") != [("Renamed",)]
    again = run()
    assert again.verified and again.stats["cards"].inserted == 1 and again.stats["cards"].updated == 1
    assert execute(postgres_url, "SELECT name FROM pokemon_cards WHERE id = 'swshp-177a'") == [("Renamed",)]


def test_the_statements_a_run_sends_do_not_grow_with_its_rows(env, postgres_url):
    """Bulk transfer: 300 cards or 900, a first run or one that changes every card, the same
    statements (COPY and one merge per table; no round trip per row)."""
    from pathlib import Path

    from psycopg2.extensions import cursor as plain_cursor

    from tcgjobs.db.cards import open_card_database
    from tcgjobs.services import postgres
    from tcgjobs.services.replication.engine import replicate
    from tests.conftest import make_settings
    from tests.support.replication import a_card_row, a_set_row, execute, write_card_db

    statements: list[str] = []

    class Counting(plain_cursor):
        def execute(self, query, vars=None):
            statements.append(str(query))
            return super().execute(query, vars)

        def copy_expert(self, sql, file, size=8192):
            statements.append(sql)
            return super().copy_expert(sql, file, size)

    settings = make_settings(TCGJOBS_POSTGRES_URL=postgres_url)

    def connect():
        connection = postgres.connect(settings)
        connection.cursor_factory = Counting
        return connection

    def run(path: Path, cards: int, name: str) -> int:
        write_card_db(path, [a_set_row("s")], [a_card_row("s", str(n), name=name) for n in range(cards)])
        statements.clear()
        db = open_card_database(path, readonly=True)
        try:
            assert replicate(connect, db, delete=False, dry_run=False, check=lambda: None).verified
        finally:
            db.close()
        return len(statements)

    counts = {}
    for cards in (300, 900):
        execute(postgres_url, "DROP TABLE IF EXISTS pokemon_cards, pokemon_card_sets, users, "
                              "tcgjobs_replication_rows, tcgjobs_replication_state")
        path = Path(env["DATABASE_PATH"]).with_name(f"cards-{cards}.sqlite3")
        counts[cards] = (run(path, cards, "First"), run(path, cards, "Second"))
    assert counts[300] == counts[900], counts
    assert any(s.startswith("COPY stage_pokemon_cards") for s in statements)  # the last run's


@pytest.mark.parametrize("session_work_mem", ["4MB", "256MB"])
def test_fingerprints_are_compared_with_enough_work_mem_and_the_session_keeps_its_own(
        env, postgres_url, session_work_mem):
    """PostgreSQL's joins of the fingerprints with the bookkeeping get COMPARE_WORK_MEM (not split
    into batches on disk at ten times today's data), only while they run; a larger setting of
    the operator's is never lowered."""
    from pathlib import Path

    from psycopg2.extensions import cursor as plain_cursor

    from tcgjobs.db.cards import open_card_database
    from tcgjobs.services import postgres
    from tcgjobs.services.replication import bookkeeping
    from tcgjobs.services.replication.engine import replicate
    from tests.conftest import make_settings
    from tests.support.replication import a_card_row, a_set_row, execute, write_card_db

    execute(postgres_url, "DROP TABLE IF EXISTS pokemon_cards, pokemon_card_sets, users, "
                          "tcgjobs_replication_rows")
    settings = make_settings(TCGJOBS_POSTGRES_URL=postgres_url)
    path = Path(env["DATABASE_PATH"])
    seen: list[tuple[str, str]] = []

    class Watching(plain_cursor):
        def execute(self, query, vars=None):
            statement = str(query)
            for label in ("CREATE TEMP TABLE tcgjobs_classified_", "CREATE TEMP TABLE stage_pokemon_cards"):
                if statement.startswith(label):
                    super().execute("SHOW work_mem")
                    seen.append((label.split()[-1], self.fetchone()[0]))
            return super().execute(query, vars)

    def connect():
        connection = postgres.connect(settings)
        with connection.cursor() as cursor:
            cursor.execute(f"SET work_mem = '{session_work_mem}'")
        connection.commit()
        connection.cursor_factory = Watching
        return connection

    def run(name: str) -> None:
        write_card_db(path, [a_set_row("s")], [a_card_row("s", str(n), name=name) for n in range(20)])
        db = open_card_database(path, readonly=True)
        try:
            assert replicate(connect, db, delete=False, dry_run=False, check=lambda: None).verified
        finally:
            db.close()

    run("First")
    assert seen == []  # the tables were created: nothing to compare
    run("Second")
    expected = session_work_mem if session_work_mem == "256MB" else bookkeeping.COMPARE_WORK_MEM
    assert seen == [("tcgjobs_classified_", expected), ("tcgjobs_classified_", expected),
                    ("stage_pokemon_cards", session_work_mem)]


def test_a_run_that_fails_before_its_commit_stops_its_early_scan(env, postgres_url):
    """The early verification scan runs on a second connection; a run that fails (here: is
    cancelled) before its commit cancels it rather than leaving it to run on the server. The
    scan's connection sleeps 30 s before its first statement, so only a cancel ends it soon."""
    import time
    from pathlib import Path

    from psycopg2.extensions import cursor as plain_cursor

    from tcgjobs.db.cards import open_card_database
    from tcgjobs.services import postgres
    from tcgjobs.services.replication.engine import replicate
    from tests.conftest import make_settings
    from tests.support.replication import a_card_row, a_set_row, execute, write_card_db

    execute(postgres_url, "DROP TABLE IF EXISTS pokemon_cards, pokemon_card_sets, users, "
                          "tcgjobs_replication_rows")
    settings = make_settings(TCGJOBS_POSTGRES_URL=postgres_url)
    path = Path(env["DATABASE_PATH"])
    write_card_db(path, [a_set_row("s")], [a_card_row("s", str(n)) for n in range(5)])
    marker = "tcgjobs_test_early_scan"

    class Sleepy(plain_cursor):
        def execute(self, query, vars=None):
            super().execute(f"SELECT pg_sleep(30) AS {marker}")
            return super().execute(query, vars)

    connections = []

    def connect():
        connection = postgres.connect(settings)
        connections.append(connection)
        if len(connections) == 2:  # the early scan's
            connection.cursor_factory = Sleepy
        return connection

    def sleeping() -> int:
        return execute(postgres_url, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                     "AND query LIKE %s", (f"%AS {marker}",))[0][0]

    def cancelled() -> None:  # the run's first check comes after the scan has started
        deadline = time.monotonic() + 10
        while not sleeping() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sleeping() == 1, "the early scan never started"
        raise RuntimeError("cancelled by the test")

    db = open_card_database(path, readonly=True)
    try:
        assert replicate(lambda: postgres.connect(settings), db, delete=False, dry_run=False,
                         check=lambda: None).verified  # creates the tables: the next run scans
        with pytest.raises(RuntimeError, match="cancelled by the test"):
            replicate(connect, db, delete=False, dry_run=False, check=cancelled)
    finally:
        db.close()
    deadline = time.monotonic() + 5
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleeping() == 0, "the early scan still runs after the run failed"


def test_an_exclusive_lock_queued_behind_a_run_stops_its_early_scan_not_the_run(env, postgres_url):
    """An ALTER, TRUNCATE or VACUUM FULL queued behind the run's lock holds up every later
    reader of the table, the early scan's connection too, while the run would wait for the
    early scan: the scan gives up after its lock timeout instead, and the run goes on without
    it (comparing every row, verifying by a scan after the commit)."""
    import threading
    import time
    from pathlib import Path

    from tcgjobs.db.cards import open_card_database
    from tcgjobs.services import postgres
    from tcgjobs.services.replication.engine import replicate
    from tcgjobs.services.replication.pgrows import SETS
    from tcgjobs.services.replication.verification import EarlyScan
    from tests.conftest import make_settings
    from tests.support.replication import a_card_row, a_set_row, execute, write_card_db

    settings = make_settings(TCGJOBS_POSTGRES_URL=postgres_url)
    path = Path(env["DATABASE_PATH"])
    write_card_db(path, [a_set_row("s")], [a_card_row("s", "1")])
    db = open_card_database(path, readonly=True)
    try:
        assert replicate(lambda: postgres.connect(settings), db, delete=False, dry_run=False,
                         check=lambda: None).verified
    finally:
        db.close()
    run, waiter = postgres.connect(settings), psycopg2.connect(postgres_url)
    try:
        with run.cursor() as cursor:
            cursor.execute("LOCK TABLE pokemon_card_sets, pokemon_cards IN SHARE ROW EXCLUSIVE MODE")
        queued = threading.Thread(target=lambda: waiter.cursor().execute(
            "LOCK TABLE pokemon_card_sets IN ACCESS EXCLUSIVE MODE"))
        queued.start()
        while execute(postgres_url, "SELECT count(*) FROM pg_locks WHERE NOT granted "
                                    "AND mode = 'AccessExclusiveLock'") != [(1,)]:
            time.sleep(0.05)
        give_up = time.monotonic() + 30  # against a hang, far beyond the lock timeout

        def check() -> None:
            assert time.monotonic() < give_up, "the early scan waited for the run's lock"

        scan = EarlyScan(lambda: postgres.connect(settings))
        scan.start()
        kept = scan.kept(SETS, check)
        scan.join(timeout=30)

        assert kept is None and not scan.is_alive() and scan.found is None
        run.rollback()
        queued.join(timeout=30)
        assert not queued.is_alive()
    finally:
        run.close()
        waiter.close()
