"""The source side of validate-data-integrity (tcgjobs.sources.coverage): the source's ids go to
temporary tables of a read-only connection, a card file at a time; only counts, per-set
aggregates and the first few duplicates and unusable files stay in memory."""

from __future__ import annotations

import hashlib

from tcgjobs.db.cards import open_card_database
from tcgjobs.sources.coverage import SOURCE_CARDS, SOURCE_SETS, source_ids
from tcgjobs.sources.layouts import detect
from tests.sources.builders import a_card, a_set, write_upstream


def test_source_ids_go_to_temporary_tables_of_a_read_only_connection(tmp_path):
    path = tmp_path / "cards.db"
    open_card_database(path, create=True).close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    root = write_upstream(tmp_path / "data", [a_set("s1"), a_set("s2"), a_set("s1")],
                          {"s1": [a_card("s1", "1"), a_card("s1", "2"), a_card("s1", "1")],
                           "s2": [a_card("s2", "1"), a_card("s1", "2"), a_card("s1", "1")],
                           "s3": [a_card("s3", "1")], "s4": "{", "bad name": "[]"})
    db = open_card_database(path, readonly=True)
    try:
        ids = source_ids(detect(root), db, limit=2)
        sets = db.execute_sql(f"SELECT id FROM {SOURCE_SETS} ORDER BY id").fetchall()
        cards = db.execute_sql(f"SELECT id, set_id FROM {SOURCE_CARDS} ORDER BY id").fetchall()
    finally:
        db.close()
    assert sets == [("s1",), ("s2",)]  # s3 has a card file but no set record
    assert cards == [("s1-1", "s1"), ("s1-2", "s1"), ("s2-1", "s2"), ("s3-1", "s3")]
    # "set s1", then s1's own repeat, then s2's ids an earlier file holds: 4, the first 2 kept
    assert (ids.duplicates.count, ids.duplicates.first) == (4, ["set s1", "s1-1"])
    assert ids.unusable.count == 2 and ids.unusable.first[0] == "bad name.json"
    assert ids.counts == {"s1": 2, "s2": 3, "s3": 1}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_reading_the_source_again_on_one_connection_starts_from_empty_tables(tmp_path):
    path = tmp_path / "cards.db"
    open_card_database(path, create=True).close()
    root = write_upstream(tmp_path / "data", [a_set("s1")], {"s1": [a_card("s1", "1")]})
    db = open_card_database(path, readonly=True)
    try:
        source_ids(detect(root), db, limit=10)
        again = source_ids(detect(root), db, limit=10)
        count = db.execute_sql(f"SELECT count(*) FROM {SOURCE_CARDS}").fetchone()[0]
    finally:
        db.close()
    assert count == 1 and again.duplicates.count == 0
