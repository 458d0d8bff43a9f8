"""The signature of a table's row versions against a real PostgreSQL: it moves with every change
of a row's values, whoever makes it and however (an UPDATE to the same value, a column dropped
and added again with a default, which leaves every row version in place); it stays through
what changes no row (FREEZE, ANALYZE, REINDEX, a rollback); a partitioned table or one with
inheritance children has none (their children's columns are not covered)."""

from __future__ import annotations

import psycopg2
import pytest

from tcgjobs.services.replication.pgrows import CARDS
from tcgjobs.services.replication.row_versions import signature

pytestmark = pytest.mark.postgres


@pytest.fixture
def connection(postgres_url):
    connection = psycopg2.connect(postgres_url)
    connection.autocommit = True  # VACUUM and CLUSTER run outside a transaction
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE pokemon_cards (id TEXT PRIMARY KEY, name TEXT, hp INTEGER)")
        cursor.execute("INSERT INTO pokemon_cards SELECT 'c-' || n, 'Card ' || n, n "
                       "FROM generate_series(1, 50) AS n")
    yield connection
    connection.close()


def _signature(connection) -> str:
    with connection.cursor() as cursor:
        return signature(cursor, CARDS)


CHANGES = {
    "update to the same value": ["UPDATE pokemon_cards SET name = name WHERE id = 'c-7'"],
    "update": ["UPDATE pokemon_cards SET hp = 0 WHERE id = 'c-7'"],
    "delete": ["DELETE FROM pokemon_cards WHERE id = 'c-7'"],
    "insert": ["INSERT INTO pokemon_cards VALUES ('c-99', 'New', 1)"],
    "deleted and inserted again as it was": [
        "DELETE FROM pokemon_cards WHERE id = 'c-7'",
        "INSERT INTO pokemon_cards VALUES ('c-7', 'Card 7', 7)"],
    "emptied and filled again as it was": [
        "CREATE TABLE kept AS SELECT * FROM pokemon_cards", "TRUNCATE pokemon_cards",
        "INSERT INTO pokemon_cards SELECT * FROM kept"],
    # No row version changes here: every row reads the default from the catalog.
    "column dropped and added again with a default": [
        "ALTER TABLE pokemon_cards DROP COLUMN hp",
        "ALTER TABLE pokemon_cards ADD COLUMN hp INTEGER DEFAULT 7"],
    "column retyped": ["ALTER TABLE pokemon_cards ALTER COLUMN hp TYPE BIGINT"],
    "collation changed": ['ALTER TABLE pokemon_cards ALTER COLUMN name TYPE TEXT COLLATE "C"'],
    "table dropped and created again as it was": [
        "CREATE TABLE kept AS SELECT * FROM pokemon_cards", "DROP TABLE pokemon_cards",
        "ALTER TABLE kept RENAME TO pokemon_cards"],
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_of_the_values_moves_the_signature(connection, change):
    before = _signature(connection)

    with connection.cursor() as cursor:
        for statement in CHANGES[change]:
            cursor.execute(statement)

    assert _signature(connection) != before


KEPT = {
    "vacuum freeze": ["VACUUM (FREEZE, ANALYZE) pokemon_cards"],
    "reindex": ["REINDEX TABLE pokemon_cards"],
    "an update rolled back": ["BEGIN", "UPDATE pokemon_cards SET hp = 0", "ROLLBACK"],
}


@pytest.mark.parametrize("operation", list(KEPT))
def test_what_leaves_every_value_in_place_keeps_the_signature(connection, operation):
    before = _signature(connection)

    with connection.cursor() as cursor:
        for statement in KEPT[operation]:
            cursor.execute(statement)

    assert _signature(connection) == before


@pytest.mark.parametrize("children", [
    ["CREATE TABLE pokemon_cards_more () INHERITS (pokemon_cards)"],
    ["ALTER TABLE pokemon_cards RENAME TO old_cards",
     "CREATE TABLE pokemon_cards (id TEXT, name TEXT, hp INTEGER) PARTITION BY LIST (id)",
     "CREATE TABLE pokemon_cards_all PARTITION OF pokemon_cards DEFAULT",
     "INSERT INTO pokemon_cards SELECT * FROM old_cards"],
], ids=["inheritance child", "partitioned"])
def test_a_table_with_children_has_no_signature(connection, children):
    """A child's columns can be dropped and added again (detached, changed, attached) without
    a row version or the parent's columns changing: such a table is always scanned."""
    with connection.cursor() as cursor:
        for statement in children:
            cursor.execute(statement)

    assert _signature(connection) is None
