"""validate-data-integrity on real databases: each planted problem is found with its exact count,
errors exit 3 (and alert), warnings alone exit 0, and nothing is ever written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tcgjobs.db.card_schema import POKEMON_CARD_SETS, POKEMON_CARDS
from tcgjobs.errors import ExitCode
from tests.sources.builders import a_card, a_set, execute, rows, run_json, write_upstream


@pytest.fixture
def synced(cli, db, tmp_path, env) -> Path:
    """A database synced from a small source: s1 with 3 cards, s2 with 2 (total 2 each)."""
    root = write_upstream(tmp_path / "data", [a_set("s1", total=3), a_set("s2")],
                          {"s1": [a_card("s1", str(n)) for n in (1, 2, 3)],
                           "s2": [a_card("s2", str(n)) for n in (1, 2)]})
    env["TCGJOBS_DATA_SOURCE"] = str(root)
    sync(cli)
    return db


def sync(cli) -> None:
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0
    assert run_json(cli, "sync-missing-cards")[0].exit_code == 0


def findings(run) -> dict[str, dict]:
    return {f["check"]: f for f in run["details"]["findings"]}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_clean_database_passes_with_every_count_zero(cli, synced):
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    assert run["metrics"]["errors"] == 0 and run["metrics"]["warnings"] == 0
    assert all(f["count"] == 0 for f in run["details"]["findings"])
    assert (run["metrics"]["total_sets"], run["metrics"]["total_cards"]) == (2, 5)


def test_the_synced_sample_has_only_the_promo_total_warning(cli, db):
    sync(cli)
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    found = findings(run)
    assert found["set_totals_disagree"]["count"] == 1
    assert found["set_totals_disagree"]["examples"] == ["swshp: 5 cards, total 3"]
    assert run["metrics"]["errors"] == 0 and run["metrics"]["warnings"] == 1


def test_each_planted_error_is_found_with_its_exact_count_and_exits_3(cli, synced):
    execute(synced,
            "INSERT INTO pokemon_cards (id, name, supertype, subtypes, types, set_id, number) "
            "VALUES ('ghost-1', 'Ghost', 'Pokémon', '[]', '[]', 'ghost', '1'),"
            "       ('ghost-2', 'Ghost', 'Pokémon', '[]', '[]', 'ghost', '2')",
            "UPDATE pokemon_cards SET name = '' WHERE id = 's1-1'",
            "UPDATE pokemon_cards SET attacks = '[{\"name\":' WHERE id IN ('s1-2', 's2-1')",
            "UPDATE pokemon_card_sets SET images = 'not json' WHERE id = 's2'",
            foreign_keys=False)
    before = digest(synced)
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    found = findings(run)
    assert found["orphan_cards"]["count"] == 2
    assert found["orphan_cards"]["examples"] == ["ghost-1 (set ghost)", "ghost-2 (set ghost)"]
    assert found["foreign_key_check"]["count"] == 2
    assert found["missing_required_card_fields"]["count"] == 1
    assert found["missing_required_card_fields"]["examples"] == ["s1-1: name"]
    assert found["invalid_json_cards"]["count"] == 2
    assert found["invalid_json_cards"]["examples"] == ["s1-2: attacks", "s2-1: attacks"]
    assert found["invalid_json_sets"]["count"] == 1
    assert found["database_only_cards"]["count"] == 2  # the ghosts: warnings beside the errors
    assert run["metrics"]["errors"] == 5
    assert "orphan_cards: 2" in run["error"] and "invalid_json_cards: 2" in run["error"]
    assert digest(synced) == before, "validate-data-integrity must never write"


def test_invalid_json_is_found_in_every_declared_json_column(cli, synced):
    cards = [c.name for c in POKEMON_CARDS.columns if c.holds_json]
    sets = [c.name for c in POKEMON_CARD_SETS.columns if c.holds_json]
    execute(synced, f"UPDATE pokemon_cards SET {', '.join(f'{c} = {c!r}' for c in cards)} WHERE id = 's1-1'",
            f"UPDATE pokemon_card_sets SET {', '.join(f'{c} = {c!r}' for c in sets)} WHERE id = 's2'")
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    found = findings(run)
    assert found["invalid_json_cards"]["examples"] == [f"s1-1: {' '.join(cards)}"]
    assert found["invalid_json_sets"]["examples"] == [f"s2: {' '.join(sets)}"]


def test_an_empty_value_is_found_in_every_declared_not_null_column(cli, synced):
    cards = [c.name for c in POKEMON_CARDS.columns if c.not_null]
    sets = [c.name for c in POKEMON_CARD_SETS.columns if c.not_null]
    def emptied(columns: list[str]) -> str:
        return ", ".join(f"{column} = ''" for column in columns)

    execute(synced, f"UPDATE pokemon_cards SET {emptied(cards)} WHERE id = 's1-1'",
            f"UPDATE pokemon_card_sets SET {emptied(sets)} WHERE id = 's2'", foreign_keys=False)
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    found = findings(run)
    assert found["missing_required_card_fields"]["examples"] == [f"s1-1: {' '.join(cards)}"]
    assert found["missing_required_set_fields"]["examples"] == [f"s2: {' '.join(sets)}"]


def test_integrity_check_corruption_is_an_error(cli, synced):
    execute(synced, "PRAGMA writable_schema = ON",
            "UPDATE sqlite_master SET sql = 'CREATE INDEX idx_pokemon_cards_set_id ON pokemon_cards(number)' "
            "WHERE name = 'idx_pokemon_cards_set_id'", "PRAGMA writable_schema = OFF")
    result, run = run_json(cli, "validate-data-integrity", "--examples", "2")
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    found = findings(run)["integrity_check"]
    assert found["count"] >= 2 and len(found["examples"]) == 2
    assert "missing from index" in found["examples"][0] or "wrong # of entries" in found["examples"][0]


def test_warnings_alone_exit_0_with_exact_counts(cli, synced):
    execute(synced, "DELETE FROM pokemon_cards WHERE id IN ('s1-3', 's2-2')",
            "INSERT INTO pokemon_card_sets (id, name, series, total) VALUES ('local', 'Local', 'L', 0)",
            "UPDATE pokemon_cards SET evolves_from = '\"Zorua\"', hp = -1 WHERE id = 's1-1'",
            "UPDATE pokemon_cards SET national_pokedex_numbers = NULL WHERE id = 's1-2'")
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    found = findings(run)
    assert found["cards_missing_from_database"]["count"] == 2
    assert found["cards_missing_from_database"]["examples"] == ["s1-3", "s2-2"]
    assert found["database_only_sets"]["examples"] == ["local"]
    assert found["legacy_encodings"]["count"] == 2
    assert found["set_totals_disagree"]["count"] == 2  # s1 2/3 and s2 1/2 (local 0/0 agrees)
    # s1-1's evolves_from, set here, is held by half of s1's stored cards and by no source card:
    # the next sync would refuse to empty it (drift)
    assert found["source_drift"]["examples"] == [
        "set s1: field 'evolvesFrom' (column evolves_from): 1 of 2 stored rows hold a value, none of "
        "the source's 3 records would"]
    assert run["metrics"]["errors"] == 0 and run["metrics"]["warnings"] == 5


def test_the_examples_option_limits_examples_but_never_counts(cli, synced):
    execute(synced, "UPDATE pokemon_cards SET types = '' ", foreign_keys=False)
    result, run = run_json(cli, "validate-data-integrity", "--examples", "1")
    assert result.exit_code == ExitCode.PROBLEMS
    found = findings(run)["missing_required_card_fields"]
    assert found["count"] == 5 and len(found["examples"]) == 1


def test_source_duplicates_and_unusable_source_files_are_warnings(cli, synced, tmp_path):
    data = tmp_path / "data"
    write_upstream(data, [a_set("s1", total=3), a_set("s2")],
                   {"s1": [a_card("s1", str(n)) for n in (1, 2, 3, 3)], "s2": "{broken"})
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    found = findings(run)
    assert found["source_duplicates"]["count"] == 1
    assert found["unusable_source_files"]["count"] == 1 and "s2.json" in found["unusable_source_files"]["examples"][0]


def test_an_unset_source_with_real_data_skips_coverage_with_a_warning(cli, synced, env):
    del env["TCGJOBS_DATA_SOURCE"]
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    assert "bundled sample lacks" in findings(run)["source_coverage"]["examples"][0]


def test_errors_alert_slack_when_notifications_are_enabled(cli, synced, env, slack):
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = slack.webhook()
    execute(synced, "UPDATE pokemon_cards SET attacks = '{' WHERE id = 's1-1'")
    result, _ = run_json(cli, "validate-data-integrity")
    assert result.exit_code == ExitCode.PROBLEMS
    assert len(slack.requests) == 1
    attachment = slack.requests[0].json["attachments"][0]
    assert "validate-data-integrity" in attachment["title"] and "invalid_json_cards: 1" in attachment["text"]


def test_a_missing_database_is_a_configuration_error(cli, db):
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert not db.exists()


@pytest.mark.shared
@pytest.mark.slow
def test_the_real_2023_snapshot_validates_with_exact_source_counts(cli, db, env, shared_data):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)
    sync(cli)
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    found = findings(run)
    assert found["source_duplicates"]["count"] == 5
    assert found["cards_missing_from_database"]["count"] == 0 and found["database_only_cards"]["count"] == 0
    totals = rows(db, "SELECT count(*) FROM pokemon_card_sets s WHERE (SELECT count(*) FROM pokemon_cards c "
                      "WHERE c.set_id = s.id) != coalesce(s.total, s.printed_total, 0)")[0][0]
    assert found["set_totals_disagree"]["count"] == totals


def test_damaged_pages_are_an_integrity_error_exit_3_not_a_crash(cli, synced):
    from tests.support.bigdb import damage_pages

    damage_pages(synced)
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    errors = {f["check"]: f for f in run["details"]["findings"] if f["severity"] == "error" and f["count"]}
    assert "integrity_check" in errors, errors
    assert run["status"] == "failed" and "data integrity errors" in run["error"]
