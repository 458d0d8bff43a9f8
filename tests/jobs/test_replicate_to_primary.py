"""replicate-to-primary through the CLI against a real PostgreSQL: exact values, incremental runs,
deletes on and off, dry run, configuration and connection failures, incompatible schemas,
verification, and interruption (SIGTERM, deadline, kill -9) leaving the primary unchanged."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import invoke, popen_tcgjobs, run_tcgjobs
from tests.support.replication import (
    a_card_row,
    a_set_row,
    assert_primary_equals_sqlite,
    execute,
    handcrafted_rows,
    snapshot,
    write_card_db,
)
from tests.support.runs import logged

pytestmark = pytest.mark.postgres


def replicate(cli, *args: str):
    result = invoke(cli, "run", "replicate-to-primary", "--json", "--ignore-deps", *args)
    payload = json.loads(result.stdout).get("run") if result.stdout.strip() else None
    return result, payload


#: How a verification that used the totals the last run recorded describes itself
#: (tcgjobs.services.replication.row_versions).
RECORDED = re.compile(r"row versions unchanged since the scan of \d{4}-\d\d-\d\d \d\d:\d\d UTC, "
                      r"(\d+) changed rows re-read")


def recorded(method: str) -> int:
    """How many changed rows a verification from the recorded totals re-read (fails otherwise)."""
    found = RECORDED.fullmatch(method)
    assert found, method
    return int(found.group(1))


def set_env(env, **values: str) -> None:
    for key, value in values.items():
        env[key] = value  # the fixture's __setitem__ also sets it for subprocesses


@pytest.fixture
def db(env) -> Path:
    return Path(env["DATABASE_PATH"])


@pytest.fixture
def primary(env, postgres_url) -> str:
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    return postgres_url


@pytest.fixture
def handcrafted(db) -> Path:
    sets, cards = handcrafted_rows()
    write_card_db(db, sets, cards)
    return db


def test_handcrafted_rows_arrive_exactly_with_every_mapping_rule(cli, handcrafted, primary):
    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["cards_inserted"] == 4 and run["metrics"]["sets_inserted"] == 2
    assert run["metrics"]["verified"] == 1
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6
    rows = dict((r[0], r[1:]) for r in execute(
        primary, "SELECT id, number, hp, evolves_from, tcgplayer_url, cardmarket_url, artist, "
                 "types FROM pokemon_cards"))
    assert rows["swsh9tg-TG01"][:3] == ("TG01", 110, ["Eevee"])
    assert rows["swsh9tg-TG02"][1:] == (None, None, "https://prices.pokemontcg.io/tcgplayer/swsh9tg-TG02",
                                        None, None, [])
    assert rows["swshp-177a"][:3] == ("177a", 60, ["Zorua"])
    assert rows["swshp-177a"][3:5] == (None, "https://prices.pokemontcg.io/cardmarket/swshp-177a")
    assert rows["swshp-SWSH050"][:3] == ("SWSH050", None, None)
    sets = dict(execute(primary, "SELECT id, printed_total FROM pokemon_card_sets"))
    assert sets == {"swsh9tg": 2, "swshp": None}


def test_a_second_run_changes_nothing_and_writes_no_row(cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    before = snapshot(primary)

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["cards_unchanged"] == 4 and run["metrics"]["sets_unchanged"] == 2
    assert run["metrics"]["cards_inserted"] == run["metrics"]["cards_updated"] == 0
    assert snapshot(primary) == before, "identical rows must not be written (xmin, updated_at)"


def test_bookkeeping_of_the_earlier_canonical_form_is_not_reused(cli, handcrafted, primary):
    """Bookkeeping as tcgjobs wrote it before canonical version 2 (fingerprints without the
    version, digests of ``jsonb_build_array`` text, which prints arrays with spaces): had it been
    taken for current, the unchanged rows' old digests would fail the verification."""
    import hashlib
    import sqlite3

    from tcgjobs.services.replication.pgrows import CARDS, SETS
    from tcgjobs.services.replication.source import _fingerprint_sql

    assert replicate(cli)[0].exit_code == ExitCode.OK
    connection = sqlite3.connect(handcrafted)
    for table in (SETS, CARDS):
        old = {key: hashlib.blake2b(rendered, digest_size=16).hexdigest() for key, rendered in
               connection.execute(f"SELECT id, {_fingerprint_sql(table)} FROM {table.name}")}
        execute(primary, f"""
            UPDATE tcgjobs_replication_rows m
            SET source_fingerprint = o.fp,
                digest = md5(jsonb_build_array({", ".join("t." + n for n in table.names)})::text)
            FROM {table.name} t JOIN unnest(%s::text[], %s::text[]) AS o(id, fp) ON o.id = t.id
            WHERE m.table_name = %s AND m.id = t.id""", (list(old), list(old.values()), table.name))
    connection.close()
    current = "(SELECT md5(json_build_array({})::text) FROM pokemon_cards t WHERE t.id = m.id)".format(
        ", ".join("t." + n for n in CARDS.names))
    stale = f"SELECT count(*) FROM tcgjobs_replication_rows m WHERE digest <> {current}"
    assert execute(primary, stale + " AND table_name = 'pokemon_cards'")[0][0] == 1  # the rules array
    before = snapshot(primary)

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["verified"] == 1
    assert run["metrics"]["cards_unchanged"] == 4 and run["metrics"]["cards_updated"] == 0
    assert snapshot(primary) == before, "identical rows must not be written"
    assert execute(primary, stale + " AND table_name = 'pokemon_cards'")[0][0] == 0


@pytest.mark.parametrize("reset", ["TRUNCATE pokemon_cards, pokemon_card_sets",
                                   "DROP TABLE pokemon_cards, pokemon_card_sets"])
def test_tables_emptied_or_dropped_behind_the_bookkeeping_are_sent_again(cli, handcrafted, primary, reset):
    """The bookkeeping of rows PostgreSQL no longer has is still in its table (the platform's
    init.sql run again, say): the next run must overwrite it, not insert it a second time."""
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute(primary, reset)

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["cards_inserted"] == 4 and run["metrics"]["verified"] == 1
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6
    assert execute(primary, "SELECT count(*) FROM tcgjobs_replication_rows") == [(6,)]
    result, run = replicate(cli)
    assert run["metrics"]["cards_unchanged"] == 4, result.output


def test_changed_and_added_rows_are_replicated_and_postgres_only_rows_are_kept_by_default(
        cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    stamps = dict(execute(primary, "SELECT id, updated_at FROM pokemon_cards"))
    write_card_db(handcrafted, [], [a_card_row("swsh9tg", "TG01", name="Flareon", hp=120,
                                               evolves_from="Eevee", types='["Fire"]'),
                                    a_card_row("swsh9tg", "TG03", hp=None)])
    execute_sqlite(handcrafted, "DELETE FROM pokemon_cards WHERE id = 'swshp-SWSH050'")

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    m = run["metrics"]
    assert (m["cards_inserted"], m["cards_updated"], m["cards_unchanged"], m["cards_deleted"],
            m["cards_postgres_only"]) == (1, 1, 2, 0, 1)
    assert run["details"]["tables"]["cards"]["postgres_only_examples"] == ["swshp-SWSH050"]
    assert [recorded(c["method"]) for c in run["details"]["verification"]] == [0, 2]
    after = dict(execute(primary, "SELECT id, updated_at FROM pokemon_cards"))
    assert after["swsh9tg-TG01"] > stamps["swsh9tg-TG01"]
    assert after["swshp-177a"] == stamps["swshp-177a"]
    assert "swshp-SWSH050" in after
    assert execute(primary, "SELECT hp FROM pokemon_cards WHERE id = 'swsh9tg-TG01'") == [(120,)]


def test_ids_with_copys_special_characters_arrive_and_are_found_unchanged(cli, db, primary):
    """The fingerprints travel to PostgreSQL as COPY text: a tab, a newline, a carriage return
    or a backslash in an id is escaped, so the second run finds every row unchanged."""
    odd = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "quote'\"s", "\\N"]
    write_card_db(db, [a_set_row("s")],
                  [a_card_row("s", str(n), id=key) for n, key in enumerate(odd)])
    assert replicate(cli)[0].exit_code == ExitCode.OK

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    m = run["metrics"]
    assert (m["cards_unchanged"], m["cards_inserted"], m["cards_updated"], m["cards_postgres_only"]) == (
        len(odd), 0, 0, 0)
    assert sorted(key for (key,) in execute(primary, "SELECT id FROM pokemon_cards")) == sorted(odd)


def test_the_bookkeeping_keeps_exactly_the_rows_replicated(cli, handcrafted, primary):
    """A card gone from SQLite (kept in PostgreSQL) loses its bookkeeping; changed cards get
    their new fingerprint; unchanged ones keep theirs."""
    assert replicate(cli)[0].exit_code == ExitCode.OK
    memo = "SELECT id, source_fingerprint FROM tcgjobs_replication_rows WHERE table_name = 'pokemon_cards'"
    before = dict(execute(primary, memo))
    execute_sqlite(handcrafted, "DELETE FROM pokemon_cards WHERE id = 'swshp-SWSH050'")
    execute_sqlite(handcrafted, "UPDATE pokemon_cards SET name = 'Renamed' WHERE id = 'swshp-177a'")

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["cards_postgres_only"] == 1
    after = dict(execute(primary, memo))
    assert sorted(after) == sorted(key for (key,) in sqlite_ids(handcrafted, "pokemon_cards"))
    assert after["swshp-177a"] != before["swshp-177a"]
    assert {k: v for k, v in after.items() if k != "swshp-177a"} == {
        k: v for k, v in before.items() if k not in ("swshp-177a", "swshp-SWSH050")}


def test_a_repeated_id_in_a_table_without_a_key_is_skipped_after_its_first_row(cli, db, primary):
    """A hand-made card database whose table has no primary key can repeat an id: the first row
    in rowid order is replicated, the others are skipped as duplicates, in a first run (every
    row new) and in a later one (PostgreSQL compares the fingerprints)."""
    write_card_db(db, [a_set_row("s")], [a_card_row("s", str(n)) for n in range(3)])
    for sql in ("CREATE TABLE loose AS SELECT * FROM pokemon_cards", "DROP TABLE pokemon_cards",
                "ALTER TABLE loose RENAME TO pokemon_cards",
                "INSERT INTO pokemon_cards SELECT * FROM pokemon_cards WHERE id = 's-1'",
                "UPDATE pokemon_cards SET name = 'Second' WHERE rowid = (SELECT max(rowid) "
                "FROM pokemon_cards)"):
        execute_sqlite(db, sql)

    for attempt in ("first", "later"):
        result, run = replicate(cli)

        assert result.exit_code == ExitCode.FAILED, (attempt, result.output)
        assert run["details"]["tables"]["cards"]["skipped"] == ["s-1: duplicate id"], attempt
        assert execute(primary, "SELECT name FROM pokemon_cards WHERE id = 's-1'") == [("Card 1",)]
        assert execute(primary, "SELECT count(*) FROM pokemon_cards") == [(3,)]
    assert (run["metrics"]["cards_unchanged"], run["metrics"]["cards_updated"]) == (3, 0)


def test_with_delete_rows_only_postgres_has_are_deleted(cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute_sqlite(handcrafted, "DELETE FROM pokemon_cards WHERE set_id = 'swshp'")
    execute_sqlite(handcrafted, "DELETE FROM pokemon_card_sets WHERE id = 'swshp'")

    result, run = replicate(cli, "--delete")

    assert result.exit_code == ExitCode.OK, result.output
    assert (run["metrics"]["cards_deleted"], run["metrics"]["sets_deleted"]) == (2, 1)
    assert run["metrics"]["verified"] == 1
    assert [recorded(c["method"]) for c in run["details"]["verification"]] == [0, 0]  # deleted: none left to read
    assert assert_primary_equals_sqlite(primary, handcrafted) == 3


def test_dry_run_reports_the_counts_and_writes_nothing(cli, handcrafted, primary):
    result, run = replicate(cli, "--dry-run", "--delete")

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["cards_inserted"] == 4 and run["details"]["dry_run"] is True
    assert "CREATE TABLE IF NOT EXISTS pokemon_cards" in run["details"]["schema_actions"]
    assert snapshot(primary) == {"pokemon_card_sets": [], "pokemon_cards": []}
    assert execute(primary, "SELECT to_regclass('pokemon_cards')") == [(None,)]


def test_not_configured_exits_78_without_trying_localhost(cli, handcrafted):
    result, run = replicate(cli)

    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "no PostgreSQL primary is configured" in result.output


@pytest.mark.parametrize("style", ["url", "variables"])
def test_an_unreachable_primary_exits_69_without_the_password(cli, env, handcrafted, style):
    if style == "url":
        env["TCGJOBS_POSTGRES_URL"] = "postgresql://tcg:Sup3rS3cretPw@127.0.0.1:1/pokemon"
    else:
        set_env(env, POSTGRES_HOST="127.0.0.1", POSTGRES_PORT="1", POSTGRES_USER="tcg",
                POSTGRES_PASSWORD="Sup3rS3cretPw", POSTGRES_DB="pokemon")

    completed = run_tcgjobs("run", "replicate-to-primary", "--ignore-deps")

    assert completed.returncode == ExitCode.UNAVAILABLE, completed.stdout + completed.stderr
    assert "cannot connect to PostgreSQL" in completed.stdout + completed.stderr
    assert "Sup3rS3cretPw" not in completed.stdout + completed.stderr


def test_a_server_that_never_answers_times_out_and_exits_69(cli, env, handcrafted):
    import socket

    silent = socket.socket()  # accepts TCP connections (backlog) but never speaks PostgreSQL
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    set_env(env, POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(silent.getsockname()[1]),
            POSTGRES_PASSWORD="Sup3rS3cretPw", TCGJOBS_POSTGRES_CONNECT_TIMEOUT="2")
    try:
        completed = run_tcgjobs("run", "replicate-to-primary", "--ignore-deps", timeout=60)
    finally:
        silent.close()

    output = completed.stdout + completed.stderr
    assert completed.returncode == ExitCode.UNAVAILABLE, output
    assert "timeout expired" in output and "Sup3rS3cretPw" not in output


def test_the_urls_own_options_are_kept_and_the_statement_timeout_is_applied(cli, env, handcrafted, primary):
    """libpq options in the URL (a search_path) are not replaced by tcgjobs' statement timeout,
    and a timeout of 0 means no limit even where the database sets one."""
    from tcgjobs.config import load_settings
    from tcgjobs.services import postgres

    execute(primary, "CREATE SCHEMA tcg")
    dbname = primary.rsplit("/", 1)[1]
    execute(primary, f'ALTER DATABASE "{dbname}" SET statement_timeout = \'7s\'')
    env["TCGJOBS_POSTGRES_URL"] = primary + "?options=-csearch_path%3Dtcg"

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert execute(primary, "SELECT count(*) FROM tcg.pokemon_cards") == [(4,)]
    assert execute(primary, "SELECT to_regclass('public.pokemon_cards')") == [(None,)]
    for timeout, shown in (("90", "90s"), ("0", "0")):
        settings = load_settings({**env, "TCGJOBS_POSTGRES_STATEMENT_TIMEOUT": timeout})
        connection = postgres.connect(settings)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW statement_timeout")
                assert cursor.fetchone() == (shown,)
                cursor.execute("SHOW search_path")
                assert cursor.fetchone() == ("tcg",)
        finally:
            connection.close()


@pytest.mark.parametrize("style", ["url", "variables"])
def test_sslmode_is_passed_to_libpq(cli, env, handcrafted, postgres_url, style):
    """verify-full cannot succeed against this server (without SSL, or without a root certificate
    to check its own), while the same server without sslmode accepts the run: the mode arrived."""
    from psycopg2.extensions import parse_dsn

    target = parse_dsn(postgres_url)
    if style == "url":
        env["TCGJOBS_POSTGRES_URL"] = postgres_url + "?sslmode=verify-full"
    else:
        set_env(env, POSTGRES_HOST=target["host"], POSTGRES_PORT=target.get("port", "5432"),
                POSTGRES_USER=target["user"], POSTGRES_DB=target["dbname"],
                POSTGRES_SSLMODE="verify-full")

    completed = run_tcgjobs("run", "replicate-to-primary", "--ignore-deps")

    output = completed.stdout + completed.stderr
    assert completed.returncode == ExitCode.CONFIG, output  # the server answered: no SSL here
    assert "SSL" in output or "certificate" in output


@pytest.mark.parametrize("refusal", ["role", "database"])
def test_a_refused_login_exits_78_without_the_password(cli, env, handcrafted, postgres_url, refusal):
    """The server answered and said no: retrying will not help, the settings must change."""
    if refusal == "role":
        env["TCGJOBS_POSTGRES_URL"] = postgres_url.replace("postgres@", "no_such_role_x:Sup3rS3cretPw@")
        named = "no_such_role_x"
    else:
        env["TCGJOBS_POSTGRES_URL"] = postgres_url.replace("postgres@", "postgres:Sup3rS3cretPw@") + "_gone"
        named = postgres_url.rsplit("/", 1)[1] + "_gone"

    completed = run_tcgjobs("run", "replicate-to-primary", "--ignore-deps")

    output = completed.stdout + completed.stderr
    assert completed.returncode == ExitCode.CONFIG, output
    assert "refused the connection" in output and named in output
    assert "Sup3rS3cretPw" not in output


def test_an_incompatible_existing_table_is_reported_precisely_and_left_alone(cli, handcrafted, primary):
    execute(primary, "CREATE TABLE pokemon_card_sets (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                     "series TEXT NOT NULL, printed_total INTEGER, total INTEGER, legalities JSONB, "
                     "ptcgo_code TEXT, release_date TEXT, updated_at TIMESTAMP, images JSONB)")
    execute(primary, "CREATE TABLE pokemon_cards (id TEXT, name TEXT, number INTEGER NOT NULL)")
    before = execute(primary, "SELECT table_name, column_name, data_type FROM "
                              "information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")

    result, _ = replicate(cli)

    assert result.exit_code == ExitCode.CONFIG, result.output
    output = " ".join(result.output.split())
    assert "pokemon_card_sets.release_date is text, expected date" in output
    assert "pokemon_cards.number is integer, expected text" in output
    assert "pokemon_cards has no column supertype" in output
    assert "pokemon_cards.id has no primary key" in output
    after = execute(primary, "SELECT table_name, column_name, data_type FROM "
                             "information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")
    assert after == before


#: docker/database/init.sql of the platform, verbatim.
ORIGINAL_PRIMARY_DDL = """
CREATE TABLE users (id SERIAL PRIMARY KEY, username VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE pokemon_card_sets (id TEXT PRIMARY KEY, name TEXT NOT NULL, series TEXT NOT NULL,
  printed_total INTEGER, total INTEGER, legalities JSONB, ptcgo_code TEXT, release_date DATE,
  updated_at TIMESTAMP, images JSONB, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE pokemon_cards (id TEXT PRIMARY KEY, name TEXT NOT NULL, supertype TEXT NOT NULL,
  subtypes TEXT[] NOT NULL, hp INTEGER, types TEXT[] NOT NULL, evolves_from TEXT[], evolves_to TEXT[],
  rules TEXT[], abilities JSONB, attacks JSONB, weaknesses JSONB, retreat_cost JSONB,
  converted_retreat_cost INTEGER, set_id TEXT NOT NULL REFERENCES pokemon_card_sets(id),
  number TEXT NOT NULL, artist TEXT, rarity TEXT, flavor_text TEXT, national_pokedex_numbers JSONB,
  legalities JSONB, images JSONB, tcgplayer_url TEXT, tcgplayer_updated_at DATE, tcgplayer_prices JSONB,
  cardmarket_url TEXT, cardmarket_updated_at DATE, cardmarket_prices JSONB,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE INDEX idx_pokemon_cards_set_id ON pokemon_cards(set_id);
"""


def test_the_schema_created_has_the_platforms_keys_indexes_and_defaults(cli, handcrafted, primary):
    """The cards' foreign key and set index (and the bookkeeping's key) are created after the rows
    are in (same transaction): the result must still be the platform's init.sql, constraint for
    constraint."""
    execute(primary, f"CREATE SCHEMA platform; SET search_path = platform; {ORIGINAL_PRIMARY_DDL}")
    result, run = replicate(cli)
    assert result.exit_code == ExitCode.OK, result.output
    assert run["details"]["schema_actions"][-3:] == [
        "ALTER TABLE pokemon_cards ADD CONSTRAINT pokemon_cards_set_id_fkey FOREIGN KEY",
        "CREATE INDEX IF NOT EXISTS idx_pokemon_cards_set_id ON pokemon_cards",
        "ALTER TABLE tcgjobs_replication_rows ADD PRIMARY KEY"]
    assert execute(primary, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conrelid = 'tcgjobs_replication_rows'::regclass") == [
        ("PRIMARY KEY (table_name, id)",)]

    def definitions(schema: str) -> list[tuple]:
        tables = "('pokemon_card_sets', 'pokemon_cards', 'users')"
        return execute(primary, f"""SET search_path = {schema};
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE connamespace = '{schema}'::regnamespace AND conrelid::regclass::text IN {tables}
            UNION ALL
            SELECT tablename, indexname, replace(indexdef, '{schema}.', '') FROM pg_indexes
            WHERE schemaname = '{schema}' AND tablename IN {tables}
            UNION ALL
            SELECT table_name, column_name, coalesce(column_default, '') || is_nullable
            FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name IN {tables}
              AND column_name IN (SELECT column_name FROM information_schema.columns
                                  WHERE table_schema = 'platform')
            ORDER BY 1, 2""")

    assert definitions("public") == definitions("platform")
    assert ("pokemon_cards", "pokemon_cards_set_id_fkey",
            "FOREIGN KEY (set_id) REFERENCES pokemon_card_sets(id)") in definitions("public")


def test_the_tables_created_have_the_platforms_columns_and_types_plus_the_declared_additions(
        cli, handcrafted, primary):
    """Column by column (type, NOT NULL, default), the tables replication creates are those of
    the platform's init.sql, plus exactly the columns the declaration says tcgjobs added."""
    from tcgjobs.db.card_schema import CARD_TABLES
    from tcgjobs.services.replication.pgrows import CATALOG_TYPES

    execute(primary, f"CREATE SCHEMA platform; SET search_path = platform; {ORIGINAL_PRIMARY_DDL}")
    result, _ = replicate(cli)
    assert result.exit_code == ExitCode.OK, result.output

    def columns(schema: str) -> dict[tuple[str, str], tuple]:
        return {(table, name): rest for table, name, *rest in execute(primary, """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   replace(pg_get_expr(d.adbin, d.adrelid), %s || '.', '')
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relnamespace = %s::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
              AND c.relname IN ('users', 'pokemon_card_sets', 'pokemon_cards')""", (schema, schema))}

    created, platform = columns("public"), columns("platform")
    added = {(table.name, c.name): [CATALOG_TYPES[c.pg_type], False, None]
             for table in CARD_TABLES for c in table.columns if c.added}
    assert {key: created[key] for key in set(created) - set(platform)} == added
    assert {key: created[key] for key in platform} == platform


def test_a_dry_run_on_the_original_platform_schema_counts_what_the_added_columns_change(
        cli, handcrafted, primary):
    execute(primary, ORIGINAL_PRIMARY_DDL)
    execute(primary, "INSERT INTO pokemon_card_sets (id, name, series) VALUES ('swshp', 'x', 'y')")
    before = snapshot(primary)

    result, run = replicate(cli, "--dry-run")

    assert result.exit_code == ExitCode.OK, result.output
    assert (run["metrics"]["sets_inserted"], run["metrics"]["sets_updated"]) == (1, 1)
    assert run["metrics"]["cards_inserted"] == 4
    assert "ALTER TABLE pokemon_cards ADD COLUMN IF NOT EXISTS level TEXT" in run["details"]["schema_actions"]
    assert snapshot(primary) == before


def test_the_original_platform_schema_gets_the_added_columns_and_keeps_its_rows(cli, handcrafted, primary):
    execute(primary, ORIGINAL_PRIMARY_DDL)
    execute(primary, "INSERT INTO pokemon_card_sets (id, name, series) VALUES ('old', 'Old', 'S')")
    level_columns = ("SELECT count(*) FROM information_schema.columns "
                     "WHERE table_name = 'pokemon_cards' AND column_name = 'level'")
    assert execute(primary, level_columns) == [(0,)]

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert "ALTER TABLE pokemon_cards ADD COLUMN IF NOT EXISTS level TEXT" in run["details"]["schema_actions"]
    assert run["metrics"]["sets_postgres_only"] == 1
    assert execute(primary, "SELECT level, regulation_mark FROM pokemon_cards WHERE id = 'swshp-177a'") == [("X", "E")]
    assert execute(primary, "SELECT name FROM pokemon_card_sets WHERE id = 'old'") == [("Old",)]


def test_verification_catches_a_row_altered_in_postgres_after_the_merge(cli, handcrafted, primary):
    execute(primary, "SELECT 1")
    assert replicate(cli)[0].exit_code == ExitCode.OK
    # Something else rewrites a card as it is written (the original's TG01 → 0 corruption).
    execute(primary, """
        CREATE FUNCTION corrupt() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 'swsh9tg-TG01' THEN NEW.number := '0'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER corrupt BEFORE INSERT OR UPDATE ON pokemon_cards
        FOR EACH ROW EXECUTE FUNCTION corrupt();""")
    write_card_db(handcrafted, [], [a_card_row("swsh9tg", "TG01", name="Flareon V")])

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "verification failed" in run["error"] and "swsh9tg-TG01" in run["error"]
    assert run["metrics"]["verified"] == 0
    cards = run["details"]["verification"][1]
    assert cards["different"] == ["swsh9tg-TG01"] and cards["equal"] is False


def test_the_first_run_verifies_by_scanning_every_row_after_the_commit(cli, handcrafted, primary):
    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert [c["method"] for c in run["details"]["verification"]] == ["scan", "scan"]


def test_a_trigger_changing_rows_the_run_never_named_is_caught_by_a_full_scan(cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    # Updating one card rewrites another: re-reading only the changed rows would miss it.
    execute(primary, """
        CREATE FUNCTION touch_other() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE pokemon_cards SET name = 'Tampered' WHERE id = 'swshp-177a'; RETURN NULL; END $$;
        CREATE TRIGGER touch_other AFTER UPDATE ON pokemon_cards FOR EACH ROW
        WHEN (NEW.id = 'swsh9tg-TG01') EXECUTE FUNCTION touch_other();""")
    write_card_db(handcrafted, [], [a_card_row("swsh9tg", "TG01", name="Flareon V")])

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.FAILED, result.output
    cards = run["details"]["verification"][1]
    assert cards["different"] == ["swshp-177a"] and cards["method"] == "scan"


def test_a_blob_is_replicated_as_null_and_reported_in_full_and_incremental_runs(cli, handcrafted, primary):
    execute_sqlite(handcrafted, "UPDATE pokemon_cards SET flavor_text = x'00ff' WHERE id = 'swshp-177a'")

    first, run = replicate(cli)
    before = snapshot(primary)
    second, again = replicate(cli)

    for result, payload in ((first, run), (second, again)):  # reported on every run, not just once
        assert result.exit_code == ExitCode.OK, result.output
        coerced = payload["details"]["tables"]["cards"]["coerced"]
        assert coerced == {"rows": 1, "columns": {"flavor_text": 1},
                           "examples": ["swshp-177a: flavor_text is a BLOB, not text (NULL written)"]}
        assert payload["metrics"]["cards_coerced"] == 1 and payload["metrics"]["cards_skipped"] == 0
        assert payload["metrics"]["verified"] == 1
        assert "1 with values replaced by what their columns hold" in payload["summary"]
        assert logged(result, "warning", "1 cards row(s) hold values", "flavor_text is a BLOB")
    assert (run["metrics"]["cards_inserted"], again["metrics"]["cards_unchanged"]) == (4, 4)
    assert snapshot(primary) == before, "the row sent again is identical: not written"
    assert execute(primary, "SELECT flavor_text FROM pokemon_cards WHERE id = 'swshp-177a'") == [(None,)]


@pytest.mark.parametrize("cards", [0, 4500])  # 4,500 more: several chunks of the read
def test_text_that_is_not_utf8_is_replaced_and_only_an_unusable_id_skips_its_row(cli, db, primary, cards):
    import sqlite3

    from tests.support.replication import CARD_COLUMNS

    sets, rows = handcrafted_rows()
    write_card_db(db, sets + [a_set_row("big")], rows)
    connection = sqlite3.connect(db)
    with connection:
        connection.executemany(
            f"INSERT INTO pokemon_cards ({', '.join(CARD_COLUMNS)}) VALUES ({', '.join('?' * len(CARD_COLUMNS))})",
            ([row[c] for c in CARD_COLUMNS] for row in (a_card_row("big", str(n)) for n in range(cards))))
        connection.execute("UPDATE pokemon_cards SET flavor_text = CAST(x'4361c328' AS TEXT) "
                           "WHERE id = 'swshp-177a'")
        connection.execute("UPDATE pokemon_cards SET id = CAST(x'62616421ff' AS TEXT) "
                           "WHERE id = 'swsh9tg-TG02'")
    connection.close()

    first, run = replicate(cli)
    execute_sqlite(db, "UPDATE pokemon_cards SET name = 'Renamed' WHERE id = 'swshp-SWSH050'")
    second, again = replicate(cli)

    for result, payload in ((first, run), (second, again)):
        assert result.exit_code == ExitCode.FAILED, result.output  # the unusable id
        assert "bad!\\xff: id is not valid UTF-8 text" in payload["error"]
        assert "flavor_text" not in payload["error"]
        assert payload["details"]["tables"]["cards"]["coerced"]["examples"] == [
            "swshp-177a: flavor_text is not valid UTF-8 text (written with U+FFFD for the bytes that "
            "are not UTF-8)"]
        assert payload["metrics"]["cards_skipped"] == 1 and payload["metrics"]["verified"] == 1
    assert run["metrics"]["cards_inserted"] == 3 + cards
    assert (again["metrics"]["cards_updated"], again["metrics"]["cards_unchanged"]) == (1, 2 + cards)
    assert execute(primary, "SELECT name FROM pokemon_cards WHERE id = 'swshp-SWSH050'") == [("Renamed",)]
    assert execute(primary, "SELECT flavor_text FROM pokemon_cards WHERE id = 'swshp-177a'") == [("Ca\ufffd(",)]


def test_a_blob_and_bad_text_in_later_chunks_switch_the_read_there_and_nothing_is_sent_twice(
        cli, db, primary):
    """The read goes 2,000 rows at a time: a BLOB in the second chunk and text that is not UTF-8
    in the third send those chunks (and the later ones) to the tolerant reads; every other row is
    replicated once, in the first run and in the incremental one (unchanged rows found by SQL)."""
    import sqlite3

    from tests.support.replication import CARD_COLUMNS

    write_card_db(db, [a_set_row("big")], [])
    connection = sqlite3.connect(db)
    with connection:
        connection.executemany(
            f"INSERT INTO pokemon_cards ({', '.join(CARD_COLUMNS)}) VALUES ({', '.join('?' * len(CARD_COLUMNS))})",
            ([row[c] for c in CARD_COLUMNS] for row in (a_card_row("big", str(n)) for n in range(5000))))
        connection.execute("UPDATE pokemon_cards SET flavor_text = x'00ff' WHERE id = 'big-2500'")
        connection.execute("UPDATE pokemon_cards SET flavor_text = CAST(x'4361c328' AS TEXT) "
                           "WHERE id = 'big-4500'")
        connection.execute("UPDATE pokemon_cards SET id = CAST(x'62616421ff' AS TEXT) WHERE id = 'big-4800'")
    connection.close()

    first, run = replicate(cli)
    execute_sqlite(db, "UPDATE pokemon_cards SET name = 'Renamed' WHERE id = 'big-4999'")
    second, again = replicate(cli)

    for result, payload in ((first, run), (second, again)):
        assert result.exit_code == ExitCode.FAILED, result.output  # the unusable id
        assert "bad!\\xff: id is not valid UTF-8 text" in payload["error"]
        assert payload["details"]["tables"]["cards"]["coerced"]["examples"] == [
            "big-2500: flavor_text is a BLOB, not text (NULL written)",
            "big-4500: flavor_text is not valid UTF-8 text (written with U+FFFD for the bytes that "
            "are not UTF-8)"]
        assert payload["metrics"]["cards_skipped"] == 1 and payload["metrics"]["verified"] == 1
    assert run["metrics"]["cards_inserted"] == 4999
    # The two coerced rows are sent again every run (identical: not written); one row renamed.
    assert (again["metrics"]["cards_updated"], again["metrics"]["cards_unchanged"]) == (1, 4998)
    assert execute(primary, "SELECT count(*), count(DISTINCT id) FROM pokemon_cards") == [(4999, 4999)]
    assert execute(primary, "SELECT name FROM pokemon_cards WHERE id = 'big-4999'") == [("Renamed",)]
    assert execute(primary, "SELECT flavor_text FROM pokemon_cards WHERE id IN ('big-2500', 'big-4500') "
                            "ORDER BY id") == [(None,), ("Ca\ufffd(",)]


@pytest.mark.parametrize("deep", ["[" * 400 + "1.5" + "]" * 400,   # printed by Python's recursion
                                  "[" * 2000 + "1" + "]" * 2000])  # deeper than the decoder goes
def test_json_nested_too_deeply_to_map_is_replicated_as_null_and_reported(cli, db, primary, deep):
    sets, cards = handcrafted_rows()
    cards.append(a_card_row("swshp", "DEEP", attacks=deep))
    write_card_db(db, sets, cards)

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["details"]["tables"]["cards"]["coerced"]["examples"] == [
        "swshp-DEEP: attacks holds a JSON value nested too deeply to map (NULL written)"]
    assert run["metrics"]["cards_inserted"] == 5 and run["metrics"]["verified"] == 1
    assert execute(primary, "SELECT attacks FROM pokemon_cards WHERE id = 'swshp-DEEP'") == [(None,)]


def sqlite_ids(path: Path, table: str) -> list[tuple[str]]:
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT id FROM {table}").fetchall()
    finally:
        connection.close()


def execute_sqlite(path: Path, sql: str) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(sql)
    finally:
        connection.close()


# --- interruption ------------------------------------------------------------------------------

def _wait_for_lock_wait(url: str, timeout: float = 30, waiting: int = 1) -> None:
    """Until ``waiting`` replication backends wait for a lock (mid-transaction)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = execute(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'tcgjobs' AND wait_event_type = 'Lock' "
                             "AND datname = current_database()")[0][0]
        if count >= waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the replication never reached the locked row")


def _wait_for_no_backend(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not execute(url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'tcgjobs' AND datname = current_database()")[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError("the replication's connection never went away")


def test_first_runs_from_two_hosts_at_once_wait_for_each_other(cli, env, handcrafted, primary, tmp_path):
    """Two hosts (two state databases, so no local lock between them) start on an empty primary
    together: the second waits for the first to commit, then finds nothing to do."""
    from tcgjobs.services.replication.engine import RUN_LOCK

    holder = psycopg2.connect(primary)
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (RUN_LOCK,))
    processes = []
    for host in ("a", "b"):
        host_env = {**os.environ, "TCGJOBS_STATE_PATH": str(tmp_path / host / "state.sqlite3"),
                    "TCGJOBS_TMPDIR": str(tmp_path / host / "tmp")}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tcgjobs", "run", "replicate-to-primary", "--ignore-deps", "--json"],
            env=host_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        _wait_for_lock_wait(primary, waiting=2)
    finally:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK,))
        holder.close()
    runs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == ExitCode.OK, out + err
        runs.append(json.loads(out)["run"]["metrics"])

    assert sorted((m["cards_inserted"], m["cards_unchanged"]) for m in runs) == [(0, 4), (4, 0)]
    assert all(m["verified"] == 1 for m in runs)
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6


@pytest.mark.parametrize("more", ["", "CREATE UNIQUE INDEX cards_id ON pokemon_cards (id);"])
def test_a_deferrable_key_on_id_is_reported_as_incompatible(cli, handcrafted, primary, more):
    """ON CONFLICT (id) refuses a deferrable key, even beside an immediate unique index."""
    execute(primary, ORIGINAL_PRIMARY_DDL.replace(
        "CREATE TABLE pokemon_cards (id TEXT PRIMARY KEY,",
        "CREATE TABLE pokemon_cards (id TEXT PRIMARY KEY DEFERRABLE,")
        + more)

    result, _ = replicate(cli)

    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "pokemon_cards.id has a DEFERRABLE unique key" in " ".join(result.output.split())


def test_a_statement_postgres_refuses_fails_the_run_with_its_sqlstate_and_changes_nothing(
        cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute(primary, "ALTER TABLE pokemon_cards ADD CONSTRAINT short_names CHECK (length(name) < 24)")
    write_card_db(handcrafted, [], [a_card_row("swsh9tg", "TG01", name="A name far longer than twenty")])
    before = snapshot(primary)

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "PostgreSQL refused a statement" in run["error"] and "SQLSTATE 23514" in run["error"]
    assert "nothing was changed" in run["error"]
    assert snapshot(primary) == before


def test_the_statement_timeout_names_its_setting(cli, env, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    write_card_db(handcrafted, [], [a_card_row("swsh9tg", "TG01", name="Changed")])
    env["TCGJOBS_POSTGRES_STATEMENT_TIMEOUT"] = "1"
    blocker = psycopg2.connect(primary)
    try:
        with blocker.cursor() as cursor:  # the merge waits for this row lock past the timeout
            cursor.execute("SELECT 1 FROM pokemon_cards WHERE id = 'swsh9tg-TG01' FOR UPDATE")
        result, run = replicate(cli)
    finally:
        blocker.close()

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "longer than TCGJOBS_POSTGRES_STATEMENT_TIMEOUT, 1 s" in run["error"]
    assert execute(primary, "SELECT name FROM pokemon_cards WHERE id = 'swsh9tg-TG01'") != [("Changed",)]


@pytest.fixture
def mid_transfer(cli, handcrafted, primary):
    """A replicated primary, changes in SQLite (a set and two cards), and a test transaction holding
    a row lock on one changed card, so the next replication stops inside its merge."""
    assert replicate(cli)[0].exit_code == ExitCode.OK
    write_card_db(handcrafted, [{"id": "swshp", "name": "Renamed", "series": "Test"}],
                  [a_card_row("swsh9tg", "TG01", name="Changed"), a_card_row("swsh9tg", "TG09")])
    before = snapshot(primary)
    blocker = psycopg2.connect(primary)
    with blocker.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pokemon_cards WHERE id = 'swsh9tg-TG01' FOR UPDATE")
    yield before, blocker
    blocker.close()


@pytest.mark.parametrize("how, code", [("sigterm", ExitCode.INTERRUPTED_SIGTERM),
                                        ("deadline", ExitCode.TIMEOUT)])
def test_an_interrupted_replication_cancels_the_statement_and_leaves_the_primary_unchanged(
        mid_transfer, primary, how, code):
    before, blocker = mid_transfer
    args = ("run", "replicate-to-primary", "--ignore-deps")
    process = popen_tcgjobs(*args, *(("--timeout", "3") if how == "deadline" else ()))
    _wait_for_lock_wait(primary)
    if how == "sigterm":
        process.send_signal(signal.SIGTERM)

    out, err = process.communicate(timeout=60)

    assert process.returncode == code, out + err
    blocker.rollback()
    _wait_for_no_backend(primary)
    assert snapshot(primary) == before


def test_kill_9_mid_transfer_leaves_the_primary_unchanged(mid_transfer, primary):
    before, blocker = mid_transfer
    process = popen_tcgjobs("run", "replicate-to-primary", "--ignore-deps")
    _wait_for_lock_wait(primary)

    process.kill()
    process.communicate(timeout=30)
    blocker.rollback()  # the orphaned backend finishes its statement, finds no client, rolls back
    _wait_for_no_backend(primary)

    assert process.returncode == -signal.SIGKILL
    assert snapshot(primary) == before


def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to see child processes")
def test_a_large_replication_streams_in_one_process_and_sigterm_mid_copy_changes_nothing(
        db, primary, tmp_path):
    """12,000 cards are read 2,000 at a time into one COPY: held at the third read of SQLite
    (the cards' COPY is under way), the run has no child process (no fork: the rendered pod has
    one CPU), and SIGTERM there exits 143 with the primary as it was (no table created)."""
    import sqlite3

    from tests.support.pause import PAUSED
    from tests.support.replication import CARD_COLUMNS

    write_card_db(db, [a_set_row("big")], [])
    connection = sqlite3.connect(db)
    with connection:
        connection.executemany(
            f"INSERT INTO pokemon_cards ({', '.join(CARD_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(CARD_COLUMNS))})",
            ([row[c] for c in CARD_COLUMNS] for row in (
                a_card_row("big", str(n), attacks=json.dumps([{"name": f"Attack {n}", "cost": ["Fire"]}]))
                for n in range(12_000))))
    connection.close()
    pause = str(Path(__file__).resolve().parents[1] / "support" / "pause.py")
    process = subprocess.Popen([sys.executable, pause, "tcgjobs.services.replication.source:_Chunks._fetch",
                                "3", "run", "replicate-to-primary", "--ignore-deps"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith(PAUSED):
            break
    assert lines and lines[-1].startswith(PAUSED), "".join(lines)
    assert _children(process.pid) == []
    assert execute(primary, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                            "AND query LIKE 'COPY pokemon_cards%%'") == [(1,)]

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)

    assert process.returncode == ExitCode.INTERRUPTED_SIGTERM, out + err
    _wait_for_no_backend(primary)
    assert execute(primary, "SELECT to_regclass('pokemon_cards')") == [(None,)]


# --- round trips of data synced by the sync jobs ------------------------------------------------

def _sync(cli) -> None:
    for job in ("sync-missing-sets", "sync-missing-cards"):
        result = invoke(cli, "run", job)
        assert result.exit_code == ExitCode.OK, result.output


def _round_trip(cli, db: Path, url: str) -> dict[str, int]:
    _sync(cli)
    result, run = replicate(cli)
    assert result.exit_code == ExitCode.OK, result.output
    compared = assert_primary_equals_sqlite(url, db)
    before = snapshot(url)
    again, second = replicate(cli)
    assert again.exit_code == ExitCode.OK, again.output
    m = second["metrics"]
    assert (m["sets_inserted"], m["sets_updated"], m["cards_inserted"], m["cards_updated"]) == (0, 0, 0, 0)
    # Nothing was even sent: the fingerprints of the first (full) read match the second's.
    assert [recorded(c["method"]) for c in second["details"]["verification"]] == [0, 0]
    assert snapshot(url) == before
    return {"compared": compared, **run["metrics"]}


def test_the_bundled_sample_round_trips_exactly_and_a_second_run_changes_nothing(cli, db, primary):
    metrics = _round_trip(cli, db, primary)

    assert metrics["cards_inserted"] > 0 and metrics["verified"] == 1
    special = dict(execute(primary, "SELECT id, number FROM pokemon_cards "
                                    "WHERE number !~ '^[0-9]+$' ORDER BY id"))
    assert special, "the sample has non-numeric card numbers (TG01, SWSH050, ...)"
    assert all(value != "0" for value in special.values())
    assert execute(primary, "SELECT count(*) FROM pokemon_cards WHERE hp IS NULL")[0][0] > 0


@pytest.mark.slow
@pytest.mark.shared
def test_the_2023_snapshot_round_trips_exactly_and_a_second_run_changes_nothing(
        cli, db, env, primary, shared_data):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)

    metrics = _round_trip(cli, db, primary)

    assert metrics["cards_inserted"] == 16109 and metrics["sets_inserted"] == 151
    assert metrics["compared"] == 16109 + 151
    # The 2023 snapshot carries no market URLs; the handcrafted and sample tests cover those.
    counts = execute(primary, "SELECT count(*) FILTER (WHERE hp IS NULL), "
                              "count(*) FILTER (WHERE evolves_from IS NOT NULL), "
                              "count(*) FILTER (WHERE number = 'TG01') FROM pokemon_cards")[0]
    assert counts == (2502, 5753, 4)


@pytest.mark.slow
@pytest.mark.shared
def test_one_percent_of_the_2023_snapshot_changed_is_exactly_what_is_rewritten(
        cli, db, env, primary, shared_data):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)
    _sync(cli)
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute_sqlite(db, "UPDATE pokemon_cards SET name = name || ' (changed)' "
                       "WHERE rowid % 100 = 0")

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["cards_updated"] == 161 and run["metrics"]["cards_unchanged"] == 16109 - 161
    assert recorded(run["details"]["verification"][1]["method"]) == 161
    assert assert_primary_equals_sqlite(primary, db) == 16109 + 151


def test_a_row_altered_directly_in_postgres_fails_verification_and_the_next_run_repairs_it(
        cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute(primary, "UPDATE pokemon_cards SET number = '0', cardmarket_url = NULL "
                     "WHERE id = 'swsh9tg-TG01'")

    failed, run = replicate(cli)
    repaired, second = replicate(cli)

    assert failed.exit_code == ExitCode.FAILED, failed.output
    assert run["details"]["verification"][1]["different"] == ["swsh9tg-TG01"]
    assert repaired.exit_code == ExitCode.OK, repaired.output
    assert second["metrics"]["cards_updated"] == 1 and second["metrics"]["cards_unchanged"] == 3
    assert execute(primary, "SELECT number FROM pokemon_cards WHERE id = 'swsh9tg-TG01'") == [("TG01",)]
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6


CARD_IDS = ["swsh9tg-TG01", "swsh9tg-TG02", "swshp-177a", "swshp-SWSH050"]
#: Changes made directly in PostgreSQL between two runs: (statements, the next run's exit code,
#: the cards its verification names as different, how many cards it sends again).
DIRECT_CHANGES = {
    "a value": (["UPDATE pokemon_cards SET number = '0' WHERE id = 'swsh9tg-TG01'"],
                ExitCode.FAILED, ["swsh9tg-TG01"], 0),
    # Every row keeps its row version: only the table's columns tell.
    "a column dropped and added again with a default": (
        ["ALTER TABLE pokemon_cards DROP COLUMN artist",
         "ALTER TABLE pokemon_cards ADD COLUMN artist TEXT DEFAULT 'Nobody'"],
        ExitCode.FAILED, CARD_IDS, 0),
    "a row deleted": (["DELETE FROM pokemon_cards WHERE id = 'swshp-177a'"], ExitCode.OK, [], 1),
    "an update to the same value": (["UPDATE pokemon_cards SET name = name"], ExitCode.OK, [], 0),
}


@pytest.mark.parametrize("change", list(DIRECT_CHANGES))
def test_changes_made_in_postgres_are_never_hidden_by_the_recorded_checksums(
        cli, handcrafted, primary, change):
    """A run that finds the tables' row versions as the last run recorded them uses that run's
    checksums instead of scanning; a change made in PostgreSQL in between, of any kind, makes
    the next run scan every row again, and the run after that repairs what differs."""
    statements, code, different, sent = DIRECT_CHANGES[change]
    assert replicate(cli)[0].exit_code == ExitCode.OK
    assert [recorded(c["method"]) for c in replicate(cli)[1]["details"]["verification"]] == [0, 0]
    for statement in statements:
        execute(primary, statement)

    result, run = replicate(cli)
    repaired, again = replicate(cli)

    assert result.exit_code == code, result.output
    sets, cards = run["details"]["verification"]
    assert recorded(sets["method"]) == 0 and cards["method"].startswith("scan"), cards
    assert cards["different"] == different
    assert run["metrics"]["cards_inserted"] + run["metrics"]["cards_updated"] == sent
    assert repaired.exit_code == ExitCode.OK, repaired.output
    assert again["metrics"]["cards_updated"] == len(different)
    assert recorded(again["details"]["verification"][1]["method"]) == len(different)
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6


def test_a_table_emptied_in_postgres_loses_the_bookkeeping_of_rows_not_sent_again(
        cli, handcrafted, primary):
    """A run into a table emptied behind tcgjobs' back keeps bookkeeping only of the rows it
    sends, so a card SQLite lacked then and has again later is sent, not taken for one
    PostgreSQL still has (the next run trusts the bookkeeping while the row versions hold)."""
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute_sqlite(handcrafted, "CREATE TABLE saved AS SELECT * FROM pokemon_cards "
                                "WHERE id = 'swshp-SWSH050'")
    execute_sqlite(handcrafted, "DELETE FROM pokemon_cards WHERE id = 'swshp-SWSH050'")
    execute(primary, "TRUNCATE pokemon_cards")
    assert replicate(cli)[1]["metrics"]["cards_inserted"] == 3
    execute_sqlite(handcrafted, "INSERT INTO pokemon_cards SELECT * FROM saved")

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert (run["metrics"]["cards_inserted"], run["metrics"]["cards_unchanged"]) == (1, 3)
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6


def test_a_set_back_in_sqlite_after_postgres_lost_it_is_sent_before_its_changed_card(
        cli, handcrafted, primary):
    """The same for a set: one gone from SQLite while PostgreSQL's tables were emptied, then
    back with a changed card. The set is sent again, so the card's key finds it."""
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute_sqlite(handcrafted, "CREATE TABLE saved AS SELECT * FROM pokemon_card_sets "
                                "WHERE id = 'swshp'")
    execute_sqlite(handcrafted, "DELETE FROM pokemon_card_sets WHERE id = 'swshp'")
    execute(primary, "TRUNCATE pokemon_card_sets CASCADE")
    replicate(cli)  # the set's cards are skipped: their set is not replicated
    execute_sqlite(handcrafted, "INSERT INTO pokemon_card_sets SELECT * FROM saved")
    execute_sqlite(handcrafted, "UPDATE pokemon_cards SET name = 'Renamed' WHERE id = 'swshp-177a'")

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    assert run["metrics"]["sets_inserted"] == 1 and run["metrics"]["cards_inserted"] == 2
    assert assert_primary_equals_sqlite(primary, handcrafted) == 6


def test_row_versions_the_server_cannot_read_cost_a_scan_never_the_run(cli, env, handcrafted, primary):
    """The signature of the row versions is an optimisation: where the server refuses it (here
    a function of the same name earlier on the search path raises), the run still commits and
    verifies by scanning, records nothing, and says why in the log."""
    execute(primary, "CREATE SCHEMA tcg")
    execute(primary, "CREATE FUNCTION tcg.hashtextextended(text, bigint) RETURNS bigint "
                     "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$")
    env["TCGJOBS_POSTGRES_URL"] = primary + "?options=-csearch_path%3Dtcg,pg_catalog"

    first, run = replicate(cli)
    second, again = replicate(cli)

    assert first.exit_code == ExitCode.OK, first.output
    assert run["metrics"]["cards_inserted"] == 4 and run["metrics"]["verified"] == 1
    assert "the row versions of pokemon_cards could not be read" in first.stderr
    assert second.exit_code == ExitCode.OK, second.output
    assert [c["method"] for c in again["details"]["verification"]] == ["scan", "scan"]
    assert execute(primary, "SELECT count(*) FROM tcg.tcgjobs_replication_state") == [(0,)]


def test_recorded_checksums_older_than_a_week_are_computed_again(cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    execute(primary, "UPDATE tcgjobs_replication_state SET scanned_at = scanned_at - interval '7 days'")

    result, run = replicate(cli)
    again = replicate(cli)[1]

    assert result.exit_code == ExitCode.OK, result.output
    assert [c["method"] for c in run["details"]["verification"]] == [
        "scan before the writes, 0 changed rows re-read"] * 2
    assert [recorded(c["method"]) for c in again["details"]["verification"]] == [0, 0]
    assert execute(primary, "SELECT count(*) FROM tcgjobs_replication_state "
                            "WHERE scanned_at > now() - interval '1 hour'") == [(2,)]


def test_dry_run_on_a_replicated_primary_counts_exactly_what_would_change(cli, handcrafted, primary):
    assert replicate(cli)[0].exit_code == ExitCode.OK
    write_card_db(handcrafted, [], [a_card_row("swsh9tg", "TG01", name="Flareon", hp=130,
                                               evolves_from="Eevee", types='["Fire"]'),
                                    a_card_row("swsh9tg", "TG04")])
    execute_sqlite(handcrafted, "DELETE FROM pokemon_cards WHERE id = 'swshp-SWSH050'")
    before = snapshot(primary)

    result, run = replicate(cli, "--dry-run", "--delete")

    assert result.exit_code == ExitCode.OK, result.output
    m = run["metrics"]
    assert (m["cards_inserted"], m["cards_updated"], m["cards_unchanged"], m["cards_deleted"]) == (1, 1, 2, 1)
    assert snapshot(primary) == before
