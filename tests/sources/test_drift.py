"""The drift rule (tcgjobs.sources.drift): which columns it watches and when an update empties one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tcgjobs.sources.drift import Shape, drifts, held, watched_columns
from tcgjobs.sources.rows import CARD_ROWS, SET_ROWS, card_row
from tests.sources.builders import a_card


def test_only_optional_fields_with_an_empty_value_are_watched():
    cards = {column.field for column in watched_columns(CARD_ROWS)}
    assert {"hp", "artist", "attacks", "evolvesFrom", "legalities", "level", "ancientTrait"} <= cards
    assert not cards & {"id", "name", "supertype", "number", "tcgplayer", "cardmarket"}  # required or kept
    assert {column.column for column in watched_columns(SET_ROWS)} == {
        "printed_total", "total", "legalities", "ptcgo_code", "release_date", "updated_at", "images"}


@pytest.mark.parametrize(("stored", "held_before", "records", "filled_after", "drifted"), [
    (10, 10, 10, False, True),    # every stored card held it, no source card would: drift
    (10, 5, 10, False, True),     # exactly half: drift
    (10, 4, 10, False, False),    # fewer than half held it: the source may drop it
    (10, 10, 10, True, False),    # one source card still carries it: no drift
    (10, 10, 0, False, False),    # the source gives the set no card: coverage, not drift
    (0, 0, 10, False, False),     # a new set
    (1, 1, 1, False, True),
])
def test_a_column_most_stored_rows_hold_and_no_source_row_would_is_drift(stored, held_before, records,
                                                                         filled_after, drifted):
    watched = [column for column in watched_columns(CARD_ROWS) if column.column == "hp"]
    found = drifts(watched, stored, [held_before], records, [filled_after])
    assert bool(found) is drifted


def test_null_and_the_encodings_empty_value_hold_nothing():
    watched = watched_columns(CARD_ROWS)
    names = [column.column for column in watched]
    empty = card_row({"id": "s1-1", "name": "X", "supertype": "Trainer", "number": "1"}, "s1")
    legacy = list(empty)
    legacy[CARD_ROWS.columns.index("attacks")] = None  # the seed script's NULL
    full = card_row(a_card("s1", "1", attacks=[{"name": "Tackle"}]), "s1")
    counts = dict(zip(names, held([empty, tuple(legacy), full], watched), strict=True))
    assert (counts["attacks"], counts["hp"], counts["legalities"], counts["evolves_from"]) == (1, 1, 1, 0)


def test_shape_reads_the_stored_rows_one_group_at_a_time_in_group_order():
    shape = Shape(CARD_ROWS)
    for set_id in ("s3", "s1", "s2"):  # s2's source card has no hp
        shape.add(set_id, [card_row(a_card(set_id, "1", hp=... if set_id == "s2" else "60"), set_id)])
    read: list[str] = []
    open_groups: list[str] = []

    def stored(group: str) -> Iterator[tuple]:
        assert not open_groups, f"{group} asked for while {open_groups} is still being read"
        read.append(group)
        open_groups.append(group)
        yield card_row(a_card(group, "1"), group)
        open_groups.remove(group)

    found = shape.drifts(stored)
    assert read == ["s1", "s2", "s3"]
    assert [(group, drift.column, drift.held, drift.rows) for group, drift in found] == [("s2", "hp", 1, 1)]
