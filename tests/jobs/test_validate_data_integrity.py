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


def nine_sets(data: Path, **extra: list[dict]) -> dict[str, list[dict]]:
    """Sets s01..s09 with cards 1, 2, 3 and 10 each (s09 also a, B and é: BINARY order is not
    case-insensitive order), written as the source; ``extra`` cards appended to a set's file."""
    cards = {f"s{n:02}": [a_card(f"s{n:02}", number) for number in ("1", "2", "3", "10")]
             for n in range(1, 10)}
    cards["s09"] += [a_card("s09", number) for number in ("a", "B", "é")]
    for set_id, more in extra.items():
        cards[set_id] = cards[set_id] + more
    write_upstream(data, [a_set(set_id, total=len(set_cards)) for set_id, set_cards in cards.items()], cards)
    return cards


@pytest.mark.parametrize("limit", [3, 100])
def test_gaps_beyond_the_example_limit_are_counted_exactly_and_shown_in_id_order(cli, db, data, limit):
    cards = nine_sets(data)
    sync(cli)
    execute(db, "DELETE FROM pokemon_cards WHERE set_id IN ('s07', 's08', 's09') OR id IN ('s02-2', 's03-10')",
            "DELETE FROM pokemon_card_sets WHERE id IN ('s07', 's08', 's09')",
            "INSERT INTO pokemon_card_sets (id, name, series, total) VALUES "
            + ", ".join(f"('local{n}', 'Local', 'L', 12)" for n in (1, 2, 10, 11, 3)),
            "INSERT INTO pokemon_cards (id, name, supertype, subtypes, types, set_id, number) VALUES "
            + ", ".join(f"('loc-{n}', 'Loc', 'Pokémon', '[]', '[]', 'local1', '{n}')" for n in range(12, 0, -1)))
    before = digest(db)
    source_sets, source_cards = set(cards), {card["id"] for file in cards.values() for card in file}
    db_sets = {row[0] for row in rows(db, "SELECT id FROM pokemon_card_sets")}
    db_cards = {row[0] for row in rows(db, "SELECT id FROM pokemon_cards")}
    expected = {"sets_missing_from_database": sorted(source_sets - db_sets),
                "cards_missing_from_database": sorted(source_cards - db_cards),
                "database_only_sets": sorted(db_sets - source_sets),
                "database_only_cards": sorted(db_cards - source_cards)}
    assert [len(ids) for ids in expected.values()] == [3, 17, 5, 12]
    assert expected["cards_missing_from_database"][-4:] == ["s09-3", "s09-B", "s09-a", "s09-é"]

    result, run = run_json(cli, "validate-data-integrity", "--examples", str(limit))
    assert result.exit_code == 0, result.output
    found = findings(run)
    for check, ids in expected.items():
        assert (found[check]["count"], found[check]["examples"]) == (len(ids), ids[:limit]), check
    assert digest(db) == before, "the source's ids go to temporary tables, never the card database"


def test_drift_is_found_for_a_set_in_the_middle_from_that_sets_rows_alone(cli, db, data):
    nine_sets(data)
    sync(cli)
    execute(db, "UPDATE pokemon_cards SET level = '12' WHERE set_id = 's05'",
            "UPDATE pokemon_cards SET level = '12' WHERE id = 's04-1'")  # 1 of 4: fewer than half
    result, run = run_json(cli, "validate-data-integrity")
    assert result.exit_code == 0, result.output
    assert findings(run)["source_drift"]["count"] == 1
    assert findings(run)["source_drift"]["examples"] == [
        "set s05: field 'level' (column level): 4 of 4 stored rows hold a value, none of the "
        "source's 4 records would"]


def test_duplicates_and_unusable_files_beyond_the_example_limit_keep_the_first_in_order_found(cli, db, data):
    nine_sets(data)
    sync(cli)
    cards = nine_sets(data, s02=[a_card("s01", "2"), a_card("s01", "1")],
                      s03=[a_card("s03", "1"), a_card("s03", "3")])
    sets = [a_set(set_id, total=len(set_cards)) for set_id, set_cards in cards.items()]
    write_upstream(data, [*sets, a_set("s04")], {"zz1": "{", "zz2": "", "bad name": "[]",
                                                 "zz3": [{"id": 7}, {"id": "zz3-1"}]})
    everything = ["set s04", "s01-2", "s01-1", "s03-1", "s03-3"]  # file order; the first file keeps an id
    for limit in (2, 100):
        result, run = run_json(cli, "validate-data-integrity", "--examples", str(limit))
        assert result.exit_code == 0, result.output
        found = findings(run)
        assert (found["source_duplicates"]["count"], found["source_duplicates"]["examples"]) == (
            5, everything[:limit])
        unusable = found["unusable_source_files"]
        assert unusable["count"] == 3 + 2  # three files, and zz3's two records (no name; no set)
        assert [example.split(":")[0].rsplit("/", 1)[-1] for example in unusable["examples"]] == \
            ["bad name.json", "zz1.json", "zz2.json"][:limit]
