"""The SQLite → PostgreSQL mapping and the canonical form, checked value by value and against the
real PostgreSQL's own output (the canonical form must equal ``json_build_array(...)::text``), and
the one-pass encoder of :mod:`tcgjobs.services.replication.pgcopy` against both."""

from __future__ import annotations

import hashlib
import io
import json

import psycopg2
import pytest

from tcgjobs.services.replication.jsonb import decode, pg_jsonb_text
from tcgjobs.services.replication.pgcopy import RowEncoder, copy_line
from tcgjobs.services.replication.pgrows import (
    CARDS,
    SETS,
    Column,
    RowMapper,
    Table,
    Unmappable,
    canonical,
    canonical_sql,
)
from tests.support.replication import a_card_row, a_set_row, handcrafted_rows


def card_values(**fields):
    row = {**a_card_row("swshp", "1"), **fields}
    return dict(zip(CARDS.names, RowMapper(CARDS).values(tuple(row[c] for c in CARDS.names)),
                    strict=True))


@pytest.mark.parametrize("stored, expected", [
    ("Eevee", ["Eevee"]),            # the cron path: plain text
    ('"Zorua"', ["Zorua"]),          # the seed script: JSON-encoded text
    ('["Zorua"]', ["Zorua"]),
    ("[]", None),                    # the seed script's "no pre-evolution"
    ("", None),
    (None, None),
    ("Mr. Mime", ["Mr. Mime"]),
])
def test_evolves_from_becomes_a_one_element_array_or_null(stored, expected):
    assert card_values(evolves_from=stored)["evolves_from"] == expected


@pytest.mark.parametrize("column, stored, expected", [
    ("hp", None, None),
    ("hp", 0, 0),
    ("hp", 340, 340),
    ("number", "TG01", "TG01"),
    ("number", "177a", "177a"),
    ("number", "SWSH050", "SWSH050"),
    ("artist", None, None),
    ("rarity", None, None),
    ("flavor_text", None, None),
    ("converted_retreat_cost", None, None),
    ("cardmarket_url", "https://cm/1", "https://cm/1"),
    ("tcgplayer_url", None, None),
    ("types", '["Fire","Water"]', ["Fire", "Water"]),
    ("rules", None, None),
])
def test_values_are_kept_exactly_and_null_stays_null(column, stored, expected):
    assert card_values(**{column: stored})[column] == expected


@pytest.mark.parametrize("column, stored, reason", [
    ("hp", "abc", "hp is not an integer"),
    ("hp", 2**31, "hp is out of PostgreSQL INTEGER range"),
    ("attacks", "[{not json", "attacks is not valid JSON"),
    ("attacks", "[NaN]", "attacks contains NaN, which is not valid JSON for PostgreSQL"),
    ("abilities", '["\\u0000"]', "abilities contains \\u0000"),
    ("name", "nul\x00here", "name contains a NUL character"),
    ("types", '[1, 2]', "types is not a JSON array of strings"),
    ("subtypes", '{"a": 1}', "subtypes is not a JSON array of strings"),
])
def test_a_value_that_cannot_be_stored_exactly_names_the_column_and_why(column, stored, reason):
    with pytest.raises(Unmappable, match=reason.replace("\\", "\\\\")):
        card_values(**{column: stored})


@pytest.mark.parametrize("stored, reason", [
    ({"release_date": "2022-13-01"}, "release_date is not a YYYY/MM/DD date"),
    ({"release_date": "25/02/2022"}, "release_date is not a YYYY/MM/DD date"),
    ({"updated_at": "2022/02/25"}, "updated_at is not a YYYY/MM/DD HH:MM:SS timestamp"),
])
def test_unparsable_dates_are_refused(stored, reason):
    row = a_set_row("x", **stored)
    with pytest.raises(Unmappable, match=reason):
        RowMapper(SETS).values(tuple(row.get(c) for c in SETS.names))


def test_dates_and_timestamps_are_parsed():
    row = a_set_row("x", release_date="2022/02/25", updated_at="2023/03/31 15:04:05")
    values = RowMapper(SETS).values(tuple(row.get(c) for c in SETS.names))
    assert values[SETS.names.index("release_date")] == "2022-02-25"
    assert values[SETS.names.index("updated_at")] == "2023-03-31T15:04:05"


TRICKY_JSON = [
    '{"small":"s","large":"l","a":1,"ü":2,"zz":3}',      # JSONB key order: length, then bytes
    '{"é":1,"ab":2}',                                   # é is 2 bytes: sorts with "ab"
    '[1.50, 1e2, -0.0, 0.1, 1E-7, -12.340e1, 10]',      # numeric output, not float repr
    '{"a":1,"a":2}',                                    # duplicate keys: the last wins
    '["tab\\there", "quote\\"", "back\\\\slash", "\\u00e9", "×2", "\\ud83d\\ude00", "\\u001f"]',
    '[]', '{}', 'null', 'true', '"text"', '[[], {}, [null]]',
    '{"nested":{"b":[{"y":1,"x":2}],"a":null}}',
    '["\\\\u0000", {"k\\\\u0000": 1}]',                # an escaped backslash, then "u0000"
    '[1e-16383, 0e-16383, 9.9e2000, 0e200000]',         # numeric's limits, just inside
]


ONE_JSON = Table("t", (Column("v", "jsonb"), Column("x", "text")), "t")


@pytest.mark.postgres
def test_the_canonical_text_equals_postgresql_output_for_tricky_json(postgres_url):
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        for text in TRICKY_JSON:
            cursor.execute("SELECT %s::jsonb::text, json_build_array(%s::jsonb, 'x'::text)::text",
                           (text, text))
            single, row = cursor.fetchone()
            parsed = decode(text)
            assert pg_jsonb_text(parsed) == single, text
            value = RowMapper(ONE_JSON).values((text, "x"))
            assert canonical(ONE_JSON, value) == row, text
            assert RowEncoder(ONE_JSON).encode((text, "x"))[0] == row, text
    connection.close()


@pytest.mark.postgres
def test_rows_copied_into_postgresql_have_the_digest_computed_from_sqlite(postgres_url):
    sets, cards = handcrafted_rows()
    cards.append(a_card_row("swshp", "X1", name="line\nbreak\r\tand \\ backslash",
                            rules='["a \\"quoted\\" rule", "back\\\\slash", "{braces}", "NULL", "", null]',
                            extra='{"z":[1.50,2e3],"é":"\\u00e9"}', evolves_from='"Mr. \\"Mime\\""'))
    connection = psycopg2.connect(postgres_url)
    try:
        with connection, connection.cursor() as cursor:
            for table, rows in ((SETS, sets), (CARDS, cards)):
                mapper = RowMapper(table)
                raws = [tuple(row.get(c) for c in table.names) for row in rows]
                types = ", ".join(f"{c.name} {c.pg_type}" for c in table.columns)
                cursor.execute(f"CREATE TEMP TABLE {table.name} ({types})")
                # The COPY lines of the fast encoder; the digests of the column-by-column mapping.
                lines = "".join(RowEncoder(table).encode(raw)[1] for raw in raws)
                cursor.copy_expert(f"COPY {table.name} FROM STDIN", io.StringIO(lines))
                cursor.execute(f"SELECT id, md5({canonical_sql(table)}) FROM {table.name}")
                expected = {raw[0]: hashlib.md5(canonical(table, mapper.values(raw)).encode()).hexdigest()
                            for raw in raws}
                assert dict(cursor.fetchall()) == expected
            cursor.execute("SELECT rules, evolves_from, name FROM pokemon_cards WHERE id = 'swshp-X1'")
            assert cursor.fetchone() == (['a "quoted" rule', "back\\slash", "{braces}", "NULL", "", None],
                                         ['Mr. "Mime"'], "line\nbreak\r\tand \\ backslash")
    finally:
        connection.close()


def _tricky_rows():
    sets, cards = handcrafted_rows()
    sets.append(a_set_row("dates", release_date="2022-02-25", updated_at="2023-03-31T15:04:05"))
    for number, text in enumerate(TRICKY_JSON):
        cards.append(a_card_row("swshp", f"J{number}", attacks=text, extra=text, images=text))
    cards.append(a_card_row("swshp", "X1", name="line\nbreak\r\tand \\ backslash", hp=None,
                            rules='["a \\"quoted\\" rule", "back\\\\slash", "NULL", ""]',
                            evolves_from='"Mr. \\"Mime\\""', flavor_text="é ✓ \x01"))
    cards.append(a_card_row("swshp", "X2", hp=-(2**31), evolves_from="[]", types="[]", extra=5.5,
                            abilities=1))
    return [(SETS, sets), (CARDS, cards)]


def test_the_fast_encoder_gives_the_canonical_text_and_copy_line_of_the_mapping():
    for table, rows in _tricky_rows():
        mapper, encoder = RowMapper(table), RowEncoder(table)
        for _ in range(2):  # the second time from its memo
            for row in rows:
                raw = tuple(row.get(c) for c in table.names)
                values = mapper.values(raw)
                assert encoder.encode(raw) == (canonical(table, values), copy_line(table, values, raw))


@pytest.mark.parametrize("column, stored", [
    ("hp", "abc"), ("hp", 2**31), ("hp", 1.0), ("attacks", "[{not json"), ("attacks", "[NaN]"),
    ("abilities", '["\\u0000"]'), ("abilities", '{"k\\u0000": 1}'), ("attacks", "[1e131072]"),
    ("attacks", "[1e-16384]"), ("extra", '{"x": -0e-20000}'),
    ("name", "nul\x00here"), ("name", None), ("name", b"blob"),
    ("types", "[1, 2]"), ("types", None), ("subtypes", '{"a": 1}')
])
def test_the_fast_encoder_refuses_what_the_mapping_refuses(column, stored):
    row = {**a_card_row("swshp", "1"), column: stored}
    raw = tuple(row[c] for c in CARDS.names)
    encoder = RowEncoder(CARDS)
    for _ in range(2):
        with pytest.raises(Unmappable):
            encoder.encode(raw)
    with pytest.raises(Unmappable):
        RowMapper(CARDS).values(raw)


def test_the_canonical_text_of_a_row_is_json_build_array_text_of_its_values():
    values = card_values(subtypes='["Stage 1", "GX"]', extra=json.dumps({"b": 1, "a": [1.5, 2]}))
    text = canonical(CARDS, list(values.values()))
    # TEXT[] as array_to_json prints it (no spaces); JSONB columns as JSONB prints them.
    assert text.startswith('["swshp-1", "Card 1", "Pokémon", ["Stage 1","GX"], 60, ["Grass"], null')
    assert text.endswith('{"a": [1.5, 2], "b": 1}]')


def test_both_renderings_agree_so_fingerprints_agree_between_full_and_incremental_runs(env):
    import sqlite3
    from pathlib import Path

    from tcgjobs.services.replication.source import _fingerprint_sql
    from tests.support.replication import write_card_db

    path = Path(env["DATABASE_PATH"])
    sets, cards = handcrafted_rows()
    cards.append(a_card_row("swshp", "Q1", name="O'Brien's \"quoted\" \\ \t\n\x01\x7f é ✓",
                            hp=-1, flavor_text=""))
    write_card_db(path, sets, cards)
    connection = sqlite3.connect(path)
    try:
        for table in (SETS, CARDS):
            plain, safe = _fingerprint_sql(table, blob_safe=False), _fingerprint_sql(table)
            rows = connection.execute(f"SELECT id, {plain}, {safe} FROM {table.name}").fetchall()
            assert rows and all(row[1] == row[2] for row in rows)
        connection.execute("UPDATE pokemon_cards SET flavor_text = x'00ff' WHERE id = 'swshp-Q1'")
        with pytest.raises(sqlite3.OperationalError, match="BLOB"):
            plain = _fingerprint_sql(CARDS, blob_safe=False)
            connection.execute(f"SELECT {plain} FROM pokemon_cards").fetchall()
        rendered = dict(connection.execute(f"SELECT id, {_fingerprint_sql(CARDS)} FROM pokemon_cards"))
        assert b'{"blob":"00FF"}' in rendered["swshp-Q1"]
    finally:
        connection.close()


def test_every_kind_declares_what_it_holds_and_pgrows_implements_both_rules():
    from tcgjobs.db.card_schema import PG_KINDS
    from tcgjobs.services.replication.pgrows import _NOT_NULL_INSTEAD, COERCERS, CONVERTERS

    assert set(PG_KINDS) == set(CONVERTERS) == set(COERCERS)
    assert {kind for kind, rule in PG_KINDS.items() if rule.not_null_instead} == set(_NOT_NULL_INSTEAD)


def coerced(table=CARDS, **fields):
    row = {**(a_card_row("swshp", "1") if table is CARDS else a_set_row("s1")), **fields}
    values, notes = RowMapper(table).coerced_values(tuple(row.get(c) for c in table.names))
    return dict(zip(table.names, values, strict=True)), notes


#: (column, SQLite value its column cannot hold, what replication writes, the note reporting it)
UNHOLDABLE = [
    ("hp", "abc", None, "hp is not an integer: 'abc' (NULL written)"),
    ("hp", 2**31, None, "hp is out of PostgreSQL INTEGER range: 2147483648 (NULL written)"),
    ("name", "nul\x00here", "nulhere", "name contains a NUL character, which PostgreSQL text cannot "
                                       "store (written without its NUL characters)"),
    ("name", b"\x00blob", "", "name is a BLOB, not text (empty value written (NOT NULL))"),
    ("artist", b"blob", None, "artist is a BLOB, not text (NULL written)"),
    ("evolves_from", "Zo\x00rua", ["Zorua"], "evolves_from contains a NUL character, which PostgreSQL "
                                             "text cannot store (written without its NUL characters)"),
    ("types", '["Fi\\u0000re", null]', ["Fire", None], "types contains \\u0000, which PostgreSQL JSONB "
                                                       "cannot store (written without the NUL characters of "
                                                       "its strings)"),
    ("types", "[1, 2]", [], "types is not a JSON array of strings (empty value written (NOT NULL))"),
    ("rules", "[{not json", None, "rules is not valid JSON (Expecting property name enclosed in double "
                                  "quotes: line 1 column 3 (char 2)) (NULL written)"),
    ("attacks", "[NaN]", None, "attacks contains NaN, which is not valid JSON for PostgreSQL (NULL written)"),
    ("attacks", '[{"k\\u0000": "v\\u0000", "j": 1}]', '[{"j": 1, "k": "v"}]',
     "attacks contains \\u0000, which PostgreSQL JSONB cannot store (written without the NUL characters "
     "of its strings and keys)"),
    ("attacks", '["\\ud800"]', None, "attacks holds text that is not valid UTF-8 (NULL written)"),
    ("attacks", "[" * 5000 + "]" * 5000, None, "attacks holds a JSON value nested too deeply to map "
                                               "(NULL written)"),
]


@pytest.mark.parametrize("column, stored, written, note", UNHOLDABLE)
def test_a_value_its_column_cannot_hold_is_replaced_by_its_kinds_rule_and_noted(column, stored, written, note):
    values, notes = coerced(**{column: stored})
    assert (values[column], notes) == (written, [note])


def test_dates_that_are_not_dates_become_null_and_a_key_that_cannot_be_held_skips_the_row():
    values, notes = coerced(SETS, release_date="TBA", updated_at="2023/02/30 10:00:00")
    assert (values["release_date"], values["updated_at"]) == (None, None)
    assert notes == ["release_date is not a YYYY/MM/DD date: 'TBA' (NULL written)",
                     "updated_at is not a YYYY/MM/DD HH:MM:SS timestamp: '2023/02/30 10:00:00' (NULL written)"]
    with pytest.raises(Unmappable, match="id contains a NUL character"):
        coerced(SETS, id="s\x00")


@pytest.mark.postgres
def test_replaced_values_are_what_postgresql_stores_digest_for_digest(postgres_url):
    raws = [a_card_row("swshp", f"C{number}", **{column: stored})
            for number, (column, stored, _, _) in enumerate(UNHOLDABLE)]
    raws = [tuple(row[c] for c in CARDS.names) for row in raws]
    mapper = RowMapper(CARDS)
    connection = psycopg2.connect(postgres_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE t ({', '.join(f'{c.name} {c.pg_type}' for c in CARDS.columns)})")
            expected, lines = {}, []
            for raw in raws:
                values, notes = mapper.coerced_values(raw)
                assert notes
                expected[raw[0]] = hashlib.md5(canonical(CARDS, values).encode()).hexdigest()
                lines.append(copy_line(CARDS, values, raw))
            cursor.copy_expert("COPY t FROM STDIN", io.StringIO("".join(lines)))
            cursor.execute(f"SELECT id, md5({canonical_sql(CARDS)}) FROM t")
            assert dict(cursor.fetchall()) == expected
            cursor.execute("SELECT attacks::text FROM t WHERE id = 'swshp-C10'")
            assert cursor.fetchall() == [('[{"j": 1, "k": "v"}]',)]
    finally:
        connection.close()
