"""The replication engine's COPY against a real PostgreSQL: what the rows raise is what the run
reports (psycopg2 replaces it by a QueryCanceled error, which read as a statement timeout)."""

from __future__ import annotations

import psycopg2
import pytest

from tcgjobs.services.replication.engine import _copy
from tcgjobs.services.replication.mapping import Column, Table
from tcgjobs.services.replication.workers import WorkerFailed

pytestmark = pytest.mark.postgres


def test_what_the_rows_raise_during_copy_is_raised_not_psycopg2s_stand_in(postgres_url):
    table = Table("t", (Column("id", "text"),), "t")

    def lines():
        yield "a\n"
        raise WorkerFailed("the second mapping process failed: killed")

    connection = psycopg2.connect(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE t (id TEXT)")
            with pytest.raises(WorkerFailed, match="killed"):
                _copy(cursor, "t", table, lines())
        connection.rollback()
    finally:
        connection.close()
