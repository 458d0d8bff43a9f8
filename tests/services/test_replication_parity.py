"""SQLite ↔ PostgreSQL parity: the service function and validate-data-integrity's use of it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tcgjobs.db.cards import open_card_database
from tcgjobs.errors import ExitCode
from tcgjobs.services import postgres
from tcgjobs.services.replication import check_parity
from tests.conftest import invoke, make_settings
from tests.support.replication import execute, handcrafted_rows, write_card_db

pytestmark = pytest.mark.postgres


@pytest.fixture
def replicated(cli, env, postgres_url) -> tuple[Path, str]:
    path = Path(env["DATABASE_PATH"])
    write_card_db(path, *handcrafted_rows())
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    result = invoke(cli, "run", "replicate-to-primary", "--ignore-deps")
    assert result.exit_code == ExitCode.OK, result.output
    return path, postgres_url


def parity(path: Path, url: str):
    db = open_card_database(path, readonly=True)
    connection = postgres.connect(make_settings(TCGJOBS_POSTGRES_URL=url))
    try:
        return {c.table: c for c in check_parity(connection, db)}
    finally:
        connection.close()
        db.close()


def test_parity_holds_after_a_replication(replicated):
    result = parity(*replicated)

    assert all(c.equal for c in result.values())
    assert (result["pokemon_cards"].source_rows, result["pokemon_cards"].primary_rows) == (4, 4)
    assert result["pokemon_cards"].source_checksum == result["pokemon_cards"].primary_checksum


def test_parity_names_rows_altered_added_or_removed_in_postgres(replicated):
    path, url = replicated
    execute(url, "UPDATE pokemon_cards SET number = '0' WHERE id = 'swsh9tg-TG01'")
    execute(url, "DELETE FROM pokemon_cards WHERE id = 'swshp-177a'")
    execute(url, "INSERT INTO pokemon_cards (id, name, supertype, subtypes, types, set_id, number) "
                 "VALUES ('extra-1', 'E', 'Pokémon', '{}', '{}', 'swshp', '1')")

    cards = parity(path, url)["pokemon_cards"]

    assert not cards.equal
    assert (cards.different, cards.missing, cards.extra) == (["swsh9tg-TG01"], ["swshp-177a"], ["extra-1"])
    assert "different: swsh9tg-TG01" in cards.describe()


def test_parity_on_an_empty_primary_reports_every_row_missing(env, postgres_url):
    path = Path(env["DATABASE_PATH"])
    write_card_db(path, *handcrafted_rows())

    result = parity(path, postgres_url)

    assert result["pokemon_cards"].primary_rows == 0 and len(result["pokemon_cards"].missing) == 4


def test_validate_data_integrity_reports_a_primary_out_of_parity(cli, replicated):
    path, url = replicated
    execute(url, "UPDATE pokemon_card_sets SET name = 'changed' WHERE id = 'swshp'")

    result = invoke(cli, "run", "validate-data-integrity", "--json")

    run = json.loads(result.stdout)["run"]
    findings = {f["check"]: f for f in run["details"]["findings"]}
    assert findings["primary_parity_pokemon_card_sets"]["count"] == 1
    assert findings["primary_parity_pokemon_card_sets"]["examples"] == ["different: swshp"]
    assert findings["primary_parity_pokemon_cards"]["count"] == 0
    assert result.exit_code == ExitCode.PROBLEMS, result.output


def test_docs_sync_lists_every_check_validate_data_integrity_reports(cli, replicated):
    from tests.conftest import ROOT

    result = invoke(cli, "run", "validate-data-integrity", "--json")
    checks = {f["check"] for f in json.loads(result.stdout)["run"]["details"]["findings"]}
    section = (ROOT / "docs" / "sync.md").read_text().split("## validate-data-integrity")[1].split("\n## ")[0]
    table = {name for line in section.splitlines() if line.startswith("| `")
             for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert {"primary_parity_pokemon_card_sets", "primary_parity_pokemon_cards"} <= checks
    assert checks <= table, f"docs/sync.md lacks {sorted(checks - table)}"
    assert "primary_parity" in table and "hypothetical" not in section


def test_validate_data_integrity_without_a_primary_checks_no_parity(cli, env):
    write_card_db(Path(env["DATABASE_PATH"]), *handcrafted_rows())

    result = invoke(cli, "run", "validate-data-integrity", "--json")

    run = json.loads(result.stdout)["run"]
    assert not [f for f in run["details"]["findings"] if f["check"].startswith("primary_parity")]


def test_parity_against_the_platforms_original_schema_reads_the_columns_it_lacks_as_null(env, postgres_url):
    """A primary still on the platform's init.sql has no `level`, `extra`, ... columns yet."""
    from tests.jobs.test_replicate_to_primary import ORIGINAL_PRIMARY_DDL

    path = Path(env["DATABASE_PATH"])
    write_card_db(path, *handcrafted_rows())
    execute(postgres_url, ORIGINAL_PRIMARY_DDL)
    execute(postgres_url, "INSERT INTO pokemon_card_sets (id, name, series) VALUES ('swshp', 'x', 'y')")

    result = parity(path, postgres_url)

    sets = result["pokemon_card_sets"]
    assert (sets.primary_rows, sets.different, sets.missing) == (1, ["swshp"], ["swsh9tg"])
    assert result["pokemon_cards"].primary_rows == 0 and len(result["pokemon_cards"].missing) == 4


def test_a_primary_that_cannot_be_compared_is_a_finding_and_the_other_checks_still_run(cli, env, replicated):
    """A lock held on the cards and a statement timeout of one second: the comparison fails."""
    import psycopg2

    path, url = replicated
    env["TCGJOBS_POSTGRES_STATEMENT_TIMEOUT"] = "1"
    holder = psycopg2.connect(url)
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE pokemon_cards IN ACCESS EXCLUSIVE MODE")
        result = invoke(cli, "run", "validate-data-integrity", "--json")
    finally:
        holder.close()

    run = json.loads(result.stdout)["run"]
    findings = {f["check"]: f for f in run["details"]["findings"]}
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    assert findings["primary_parity"]["count"] == 1
    assert "TCGJOBS_POSTGRES_STATEMENT_TIMEOUT" in findings["primary_parity"]["examples"][0]
    assert len(findings) > 1  # the SQLite checks ran and reported


def ledger_row(job: str):
    from datetime import timedelta

    from tcgjobs.db.state import open_view

    view = open_view(make_settings().state_path, busy_timeout_ms=1000, stale_after=timedelta(minutes=1))
    return view.last_run(job)


@pytest.mark.parametrize("primary", ["empty", "the platform's tables, never replicated"])
def test_validate_before_the_first_replication_warns_never_replicated_and_exits_0(
        cli, env, postgres_url, slack, primary):
    from tests.jobs.test_replicate_to_primary import ORIGINAL_PRIMARY_DDL

    write_card_db(Path(env["DATABASE_PATH"]), *handcrafted_rows())
    if primary != "empty":
        execute(postgres_url, ORIGINAL_PRIMARY_DDL)
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = slack.webhook()

    result = invoke(cli, "run", "validate-data-integrity", "--json")

    assert result.exit_code == ExitCode.OK, result.output
    run = json.loads(result.stdout)["run"]
    findings = {f["check"]: f for f in run["details"]["findings"]}
    never = findings["primary_never_replicated"]
    assert (never["severity"], never["count"]) == ("warning", 1)
    assert "never replicated" in never["description"]
    assert not [name for name in findings if name.startswith("primary_parity")]
    assert run["metrics"]["errors"] == 0
    assert ledger_row("validate-data-integrity").status.value == "succeeded"
    assert slack.requests == []
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("primary_never_replicated" in m and "never replicated" in m for m in messages), messages


def test_validate_with_compare_primary_off_never_touches_the_primary(cli, env, replicated):
    path, url = replicated
    execute(url, "UPDATE pokemon_card_sets SET name = 'changed' WHERE id = 'swshp'")
    assert invoke(cli, "run", "validate-data-integrity", "--json").exit_code == ExitCode.PROBLEMS

    for how in ("option", "setting"):
        env["TCGJOBS_POSTGRES_URL"] = "postgresql://postgres@127.0.0.1:1/nowhere"  # not even reachable
        args = ["--no-compare-primary"] if how == "option" else []
        if how == "setting":
            env["TCGJOBS_VALIDATE_DATA_INTEGRITY_COMPARE_PRIMARY"] = "false"
        result = invoke(cli, "run", "validate-data-integrity", "--json", *args)

        assert result.exit_code == ExitCode.OK, result.output
        run = json.loads(result.stdout)["run"]
        assert not [f for f in run["details"]["findings"] if f["check"].startswith("primary")]
        assert run["details"]["primary"].startswith("not compared")
        assert ledger_row("validate-data-integrity").status.value == "succeeded"
