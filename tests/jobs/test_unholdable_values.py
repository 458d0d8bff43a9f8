"""Values the sync stores and a PostgreSQL column cannot hold (issue 13, item 11), from the source
through sync, validate and replication: the card database keeps the source's value, validate
warns naming set, card and column, replication writes what the column holds and succeeds, run
after run; TCGJOBS_STRICT_VALUES makes both fail. Each step checks exit code, the run's JSON and
ledger row, the log and the data."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tcgjobs.errors import ExitCode
from tests.conftest import invoke
from tests.sources.builders import a_card, a_set, rows, run_json, write_upstream
from tests.support.replication import a_card_row, a_set_row, execute, handcrafted_rows, write_card_db
from tests.support.runs import ledger_row, logged

pytestmark = pytest.mark.postgres

SET_NOTE = "set tba: release_date is not a YYYY/MM/DD date: 'TBA' (NULL written)"
CARD_NOTE = ("card tba-1 (set tba): name contains a NUL character, which PostgreSQL text cannot "
             "store (written without its NUL characters)")


def replicate(cli, *args: str):
    result = invoke(cli, "run", "replicate-to-primary", "--json", "--ignore-deps", *args)
    return result, json.loads(result.stdout)["run"]


@pytest.fixture
def synced(cli, db, data, env, postgres_url):
    """A source whose set has a placeholder release date and whose card has a NUL in its name,
    synced into SQLite; the URL of an empty primary, not configured yet."""
    write_upstream(data, [a_set("ok", total=1), a_set("tba", releaseDate="TBA")],
                   {"ok": [a_card("ok", "1")], "tba": [a_card("tba", "1", name="Nul\x00Name"), a_card("tba", "2")]})
    for job in ("sync-missing-sets", "sync-missing-cards"):
        result, _ = run_json(cli, job)
        assert result.exit_code == 0, result.output
    return postgres_url


def finding(run: dict, check: str) -> dict:
    return next(f for f in run["details"]["findings"] if f["check"] == check)


def test_the_card_database_keeps_the_value_validate_warns_and_replication_writes_what_fits(cli, db, env,
                                                                                          synced):
    assert rows(db, "SELECT release_date FROM pokemon_card_sets WHERE id = 'tba'") == [("TBA",)]
    assert rows(db, "SELECT name FROM pokemon_cards WHERE id = 'tba-1'") == [("Nul\x00Name",)]

    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output
    sets, cards = finding(report, "unholdable_values_sets"), finding(report, "unholdable_values_cards")
    assert (sets["severity"], sets["count"], sets["examples"]) == ("warning", 1, [SET_NOTE])
    assert (cards["severity"], cards["count"], cards["examples"]) == ("warning", 1, [CARD_NOTE])
    assert logged(validate, "warning", "unholdable_values_sets", SET_NOTE)
    env["TCGJOBS_POSTGRES_URL"] = synced

    for _ in (1, 2):  # every run replicates and reports them, never "skipped forever"
        result, run = replicate(cli)
        assert result.exit_code == ExitCode.OK, result.output
        assert (run["metrics"]["sets_coerced"], run["metrics"]["cards_coerced"]) == (1, 1)
        assert run["metrics"]["sets_skipped"] == run["metrics"]["cards_skipped"] == 0
        assert run["metrics"]["verified"] == 1
        assert run["details"]["tables"]["sets"]["coerced"]["examples"] == [SET_NOTE[4:]]
        assert logged(result, "warning", "1 sets row(s) hold values", "release_date is not a YYYY/MM/DD date")
        assert ledger_row(cli, "replicate-to-primary")["status"] == "succeeded"
    assert (run["metrics"]["sets_unchanged"], run["metrics"]["cards_unchanged"]) == (2, 3)
    assert execute(synced, "SELECT id, release_date FROM pokemon_card_sets ORDER BY id") == [
        ("ok", date(2020, 1, 1)), ("tba", None)]
    assert execute(synced, "SELECT id, name FROM pokemon_cards ORDER BY id") == [
        ("ok-1", "Card 1"), ("tba-1", "NulName"), ("tba-2", "Card 2")]

    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output  # the primary holds what replication wrote
    assert finding(report, "primary_parity_pokemon_card_sets")["count"] == 0
    assert finding(report, "primary_parity_pokemon_cards")["count"] == 0


def test_strict_values_make_validate_and_replication_fail(cli, db, env, synced):
    env["TCGJOBS_STRICT_VALUES"] = "true"

    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == ExitCode.PROBLEMS, validate.output
    assert finding(report, "unholdable_values_sets")["severity"] == "error"
    assert f"unholdable_values_sets: 1 (e.g. {SET_NOTE})" in report["error"]
    assert ledger_row(cli, "validate-data-integrity")["exit_code"] == 3

    env["TCGJOBS_POSTGRES_URL"] = synced
    result, run = replicate(cli)
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "sets: 1 rows hold values their PostgreSQL columns cannot hold as they are" in run["error"]
    assert "(TCGJOBS_STRICT_VALUES)" in run["error"] and run["metrics"]["verified"] == 1
    assert ledger_row(cli, "replicate-to-primary")["status"] == "failed"
    assert execute(synced, "SELECT count(*) FROM pokemon_cards") == [(3,)]


# --- every kind, on handcrafted card databases ---------------------------------------------------

def test_every_kind_of_value_a_column_cannot_hold_is_replaced_and_reported(cli, db, env, postgres_url):
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    sets, cards = handcrafted_rows()
    sets.append(a_set_row("tba", release_date="TBA", updated_at="soon", printed_total=2**40))
    cards += [a_card_row("tba", "1", attacks="[{not json", name="Nul\x00Name", hp="abc",
                         types='["Fire\\u0000", "Water"]', abilities='[{"text": "a\\u0000b"}]'),
              a_card_row("tba", "2", subtypes='{"not": "an array"}', rules="[NaN]")]
    write_card_db(db, sets, cards)

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.OK, result.output
    tables = run["details"]["tables"]
    assert tables["sets"]["coerced"]["examples"] == [
        "tba: printed_total is out of PostgreSQL INTEGER range: 1099511627776 (NULL written); "
        "release_date is not a YYYY/MM/DD date: 'TBA' (NULL written); updated_at is not a "
        "YYYY/MM/DD HH:MM:SS timestamp: 'soon' (NULL written)"]
    examples = tables["cards"]["coerced"]["examples"]
    assert examples[0].startswith("tba-1: name contains a NUL character, which PostgreSQL text cannot "
                                  "store (written without its NUL characters); hp is not an integer: "
                                  "'abc' (NULL written); types ")
    assert "attacks is not valid JSON" in examples[0] and "abilities contains \\u0000" in examples[0]
    assert examples[1].startswith("tba-2: subtypes is not a JSON array of strings (empty value written "
                                  "(NOT NULL)); rules contains NaN")
    assert (run["metrics"]["sets_coerced"], run["metrics"]["cards_coerced"]) == (1, 2)
    assert run["metrics"]["cards_skipped"] == 0 and run["metrics"]["verified"] == 1
    assert logged(result, "warning", "2 cards row(s) hold values PostgreSQL's columns cannot hold")
    assert ledger_row(cli, "replicate-to-primary")["status"] == "succeeded"
    assert execute(postgres_url, "SELECT release_date, updated_at, printed_total FROM pokemon_card_sets "
                            "WHERE id = 'tba'") == [(None, None, None)]
    assert execute(postgres_url, "SELECT name, hp, attacks, types, abilities, subtypes, rules FROM pokemon_cards "
                            "WHERE id IN ('tba-1', 'tba-2') ORDER BY id") == [
        ("NulName", None, None, ["Fire", "Water"], [{"text": "ab"}], ["Basic"], []),
        ("Card 2", 60, [{"name": "Tackle", "cost": ["Colorless"], "convertedEnergyCost": 1, "damage": "10",
                         "text": ""}], ["Grass"], [], [], None)]


def test_strict_values_fail_replication_but_write_the_same_values(cli, db, env, postgres_url):
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    sets, cards = handcrafted_rows()
    sets.append(a_set_row("tba", release_date="TBA"))
    write_card_db(db, sets, cards)
    env["TCGJOBS_STRICT_VALUES"] = "true"

    result, run = replicate(cli)

    assert result.exit_code == ExitCode.FAILED, result.output
    assert run["error"] == ("sets: 1 rows hold values their PostgreSQL columns cannot hold as they are "
                            "(TCGJOBS_STRICT_VALUES): tba: release_date is not a YYYY/MM/DD date: 'TBA' "
                            "(NULL written)")
    assert run["metrics"]["verified"] == 1 and ledger_row(cli, "replicate-to-primary")["exit_code"] == 1
    assert execute(postgres_url, "SELECT release_date FROM pokemon_card_sets WHERE id = 'tba'") == [(None,)]
