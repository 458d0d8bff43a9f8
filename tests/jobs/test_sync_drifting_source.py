"""Source data that drifts: card files that suddenly hold few of their set's cards, fields renamed
upstream. Small handcrafted sources first, then drifting copies of the real 2023 snapshot. Each
test checks the exit code, the run's JSON and ledger row, the log and the card database together."""

from __future__ import annotations

import pytest

from tcgjobs.errors import ExitCode
from tests.sources.builders import a_card, a_set, rows, run_json, write_upstream
from tests.support.drift import drifting_copy, emptied, renamed
from tests.support.runs import ledger_row, logged


def sync(cli, *args: str):
    sets, _ = run_json(cli, "sync-missing-sets")
    assert sets.exit_code == 0, sets.output
    return run_json(cli, "sync-missing-cards", *args)


def finding(run: dict, check: str) -> dict:
    return next(f for f in run["details"]["findings"] if f["check"] == check)


# --- coverage (issue 13, item 14) --------------------------------------------------------------

def test_an_empty_card_file_for_a_set_of_62_is_a_warning_in_the_summary_and_in_validate(cli, db, data):
    write_upstream(data, [a_set("s1", total=2), a_set("fossil", total=62, printedTotal=62)],
                   {"s1": [a_card("s1", "1"), a_card("s1", "2")], "fossil": []})

    result, run = sync(cli)

    assert result.exit_code == 0, result.output
    assert "1 card file(s) below 90% of their set's total: fossil 0 of 62 cards (0%)" in run["summary"]
    assert run["metrics"]["sets_low_coverage"] == 1 and run["details"]["low_coverage"] == {
        "fossil": "0 of 62 cards (0%)"}
    assert logged(result, "warning", "set fossil: its card file holds 0 of 62 cards (0%)",
                  "TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT")
    assert ledger_row(cli, "sync-missing-cards")["status"] == "succeeded"
    assert rows(db, "SELECT count(*) FROM pokemon_cards WHERE set_id = 'fossil'") == [(0,)]

    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output
    low = finding(report, "low_source_coverage")
    assert (low["severity"], low["count"], low["examples"]) == ("warning", 1, ["fossil: 0 of 62 cards (0%)"])
    assert logged(validate, "warning", "low_source_coverage", "fossil: 0 of 62 cards")


def test_the_coverage_threshold_is_a_setting_and_zero_turns_the_warning_off(cli, db, data, env):
    write_upstream(data, [a_set("s1", total=4)], {"s1": [a_card("s1", "1"), a_card("s1", "2"),
                                                         a_card("s1", "3")]})
    env["TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT"] = "80"
    result, run = sync(cli)
    assert result.exit_code == 0 and run["details"]["low_coverage"] == {"s1": "3 of 4 cards (75%)"}

    env["TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT"] = "0"
    result, run = sync(cli)
    assert result.exit_code == 0 and run["metrics"]["sets_low_coverage"] == 0
    assert "warning" not in run["summary"]
    _, report = run_json(cli, "validate-data-integrity")
    assert finding(report, "low_source_coverage")["count"] == 0


def test_a_repeat_sync_skipping_an_unchanged_set_still_warns_about_its_coverage(cli, db, data):
    write_upstream(data, [a_set("s1", total=62)], {"s1": [a_card("s1", "1")]})
    sync(cli)
    result, run = sync(cli)  # the set's fingerprint matches: its file is not parsed again
    assert run["metrics"]["cards_unchanged"] == 1
    assert run["details"]["low_coverage"] == {"s1": "1 of 62 cards (1%)"}


@pytest.mark.shared
@pytest.mark.slow
def test_the_2023_snapshot_with_fossil_emptied_keeps_its_cards_and_warns(cli, db, env, shared_data, tmp_path):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)
    first, run = sync(cli)
    assert first.exit_code == 0 and run["metrics"]["sets_low_coverage"] == 0  # real data: none
    env["TCGJOBS_DATA_SOURCE"] = str(drifting_copy(shared_data, tmp_path / "drifted", emptied("base3")))

    result, run = sync(cli)

    assert result.exit_code == 0, result.output
    assert run["details"]["low_coverage"] == {"base3": "0 of 62 cards (0%)"}
    assert "base3 0 of 62 cards" in run["summary"] and run["metrics"]["database_only"] == 62
    assert logged(result, "warning", "set base3: its card file holds 0 of 62 cards")
    assert ledger_row(cli, "sync-missing-cards")["exit_code"] == 0
    assert rows(db, "SELECT count(*) FROM pokemon_cards WHERE set_id = 'base3'") == [(62,)]  # kept
    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output
    assert finding(report, "low_source_coverage")["examples"] == ["base3: 0 of 62 cards (0%)"]


def test_validate_counts_a_set_without_a_card_file_as_holding_none(cli, db, data):
    write_upstream(data, [a_set("s1", total=1), a_set("gone", total=10)], {"s1": [a_card("s1", "1")]})
    sync(cli)
    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output
    assert finding(report, "low_source_coverage")["examples"] == [
        "gone: 0 of 10 cards (0%), no usable card file"]
    assert ExitCode(validate.exit_code) is ExitCode.OK


# --- renamed fields (issue 13, item 10) --------------------------------------------------------

def renamed_cards(set_id: str, count: int, **renames: str) -> list[dict]:
    """``count`` cards whose fields are renamed as ``renames`` says (``hp="HP"``)."""
    return [{renames.get(key, key): value for key, value in a_card(set_id, str(n)).items()}
            for n in range(1, count + 1)]


def test_fields_renamed_upstream_stop_their_set_and_name_the_field_and_counts(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("s2")], {"s1": renamed_cards("s1", 2), "s2": renamed_cards("s2", 1)})
    sync(cli)
    write_upstream(data, [a_set("s1"), a_set("s2")], {"s1": renamed_cards("s1", 2, hp="HP", artist="illustrator"),
                                                      "s2": renamed_cards("s2", 2)})

    result, run = sync(cli)

    assert result.exit_code == ExitCode.FAILED, result.output
    drift = ("field 'hp' (column hp): 2 of 2 stored rows hold a value, none of the source's 2 records "
             "would; field 'artist' (column artist): 2 of 2 stored rows hold a value, none of the "
             "source's 2 records would; fields under unknown names in its cards: HP, illustrator")
    assert run["details"]["drifted"] == {"s1": drift}
    assert f"s1: {drift}" in run["error"] and "--accept-drift FIELD" in run["error"]
    assert run["metrics"]["sets_drifted"] == 1 and run["metrics"]["cards_added"] == 1  # s2 synced
    assert run["metrics"]["unknown_fields"] == 2
    assert "unknown card fields kept in extra: HP (2), illustrator (2)" in run["summary"]
    assert logged(result, "error", "set s1 not synced, nothing written", "--accept-drift hp,artist",
                  "TCGJOBS_SYNC_MISSING_CARDS_ACCEPT_DRIFT")
    assert logged(result, "warning", "card field 'HP' is unknown", "in 2 record(s)")
    ledger = ledger_row(cli, "sync-missing-cards")
    assert (ledger["status"], ledger["exit_code"], ledger["metrics"]["sets_drifted"]) == ("failed", 1, 1)
    assert rows(db, "SELECT id, hp, artist, extra FROM pokemon_cards WHERE set_id = 's1' ORDER BY id") == [
        ("s1-1", 60, "Someone", None), ("s1-2", 60, "Someone", None)]

    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output  # warnings: the database itself is whole
    assert finding(report, "source_drift")["examples"] == [
        "set s1: field 'hp' (column hp): 2 of 2 stored rows hold a value, none of the source's 2 records would",
        "set s1: field 'artist' (column artist): 2 of 2 stored rows hold a value, none of the source's 2 "
        "records would"]
    assert finding(report, "unknown_source_fields")["examples"] == [
        "card field 'HP': 2 record(s), e.g. s1-1", "card field 'illustrator': 2 record(s), e.g. s1-1"]
    assert logged(validate, "warning", "source_drift", "set s1: field 'hp'")


def test_accepted_drift_empties_the_column_and_says_so(cli, db, data, env):
    write_upstream(data, [a_set("s1")], {"s1": renamed_cards("s1", 2)})
    sync(cli)
    write_upstream(data, [a_set("s1")], {"s1": renamed_cards("s1", 2, hp="HP", artist="illustrator")})
    env["TCGJOBS_SYNC_MISSING_CARDS_ACCEPT_DRIFT"] = "hp"  # the setting accepts hp only

    refused, run = sync(cli)
    assert refused.exit_code == ExitCode.FAILED and "field 'artist'" in run["details"]["drifted"]["s1"]
    assert "field 'hp'" not in run["details"]["drifted"]["s1"]
    assert rows(db, "SELECT hp, artist FROM pokemon_cards WHERE id = 's1-1'") == [(60, "Someone")]

    result, run = sync(cli, "--accept-drift", "hp, artist")  # the option wins over the setting

    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_updated"] == 2 and run["details"]["drifted"] == {}
    assert "field 'artist' (column artist): 2 of 2" in run["details"]["drift_accepted"]["s1"]
    assert logged(result, "warning", "set s1: accepted drift", "field 'hp'")
    assert rows(db, "SELECT hp, artist, extra FROM pokemon_cards WHERE id = 's1-1'") == [
        (None, None, '{"HP":"60","illustrator":"Someone"}')]
    assert ledger_row(cli, "sync-missing-cards")["status"] == "succeeded"


@pytest.mark.parametrize("value", ["hitpoints", "name", "tcgplayer"])
def test_accepting_drift_of_a_field_drift_cannot_empty_is_a_usage_error(cli, db, data, value):
    write_upstream(data, [a_set("s1")], {"s1": renamed_cards("s1", 1)})
    sync(cli)
    result, run = run_json(cli, "sync-missing-cards", "--accept-drift", value)
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert f"--accept-drift (TCGJOBS_SYNC_MISSING_CARDS_ACCEPT_DRIFT): {value}: not a field" in run["error"]


def test_a_field_most_cards_never_held_may_go_and_the_set_syncs(cli, db, data):
    cards = renamed_cards("s1", 4)
    cards[0]["flavorText"] = "Only one card has flavour text."
    write_upstream(data, [a_set("s1")], {"s1": cards})
    sync(cli)
    del cards[0]["flavorText"]
    write_upstream(data, [a_set("s1")], {"s1": cards})

    result, run = sync(cli)

    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_updated"] == 1 and run["metrics"]["sets_drifted"] == 0
    assert rows(db, "SELECT count(flavor_text) FROM pokemon_cards") == [(0,)]


def test_a_set_field_renamed_upstream_writes_no_set(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("s2")], {})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0
    renamed = [{("release_date" if k == "releaseDate" else k): v for k, v in a_set(i, name=f"New {i}").items()}
               for i in ("s1", "s2", "s3")]
    write_upstream(data, renamed, {})

    result, run = run_json(cli, "sync-missing-sets")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert run["error"] == (
        "nothing written: the update would empty what most stored sets hold (drift: a field renamed "
        "upstream?): field 'releaseDate' (column release_date): 2 of 2 stored rows hold a value, "
        "none of the source's 3 records would. Accept with --accept-drift releaseDate "
        "(TCGJOBS_SYNC_MISSING_SETS_ACCEPT_DRIFT)")
    assert run["metrics"]["sets_drifted"] == 1 and run["details"]["unknown_fields"] == {"release_date": 3}
    assert (run["metrics"]["sets_added"], run["metrics"]["sets_updated"], run["metrics"]["sets_unchanged"]) == (0, 0, 0)
    assert logged(result, "warning", "set field 'release_date' is unknown")
    assert rows(db, "SELECT id, name, release_date FROM pokemon_card_sets ORDER BY id") == [
        ("s1", "Set s1", "2020/01/01"), ("s2", "Set s2", "2020/01/01")]
    assert ledger_row(cli, "sync-missing-sets")["exit_code"] == 1

    accepted, run = run_json(cli, "sync-missing-sets", "--accept-drift", "release_date")
    assert accepted.exit_code == 0, accepted.output
    assert rows(db, "SELECT id, release_date FROM pokemon_card_sets ORDER BY id") == [
        ("s1", None), ("s2", None), ("s3", None)]


@pytest.mark.shared
@pytest.mark.slow
def test_the_2023_snapshot_with_hp_and_artist_renamed_erases_nothing(cli, db, env, shared_data, tmp_path):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)
    assert sync(cli)[0].exit_code == 0
    held = "SELECT count(hp), count(artist) FROM pokemon_cards"
    before = rows(db, held)[0]
    assert before == (13_607, 15_912)
    env["TCGJOBS_DATA_SOURCE"] = str(drifting_copy(shared_data, tmp_path / "drifted",
                                                   renamed({"hp": "HP", "artist": "illustrator"})))

    result, run = sync(cli)

    assert result.exit_code == ExitCode.FAILED, result.output
    metrics = run["metrics"]
    assert metrics["sets_drifted"] == 151 and metrics["cards_updated"] == 0
    assert run["details"]["drifted"]["base1"] == (
        "field 'hp' (column hp): 70 of 102 stored rows hold a value, none of the source's 102 records "
        "would; field 'artist' (column artist): 102 of 102 stored rows hold a value, none of the "
        "source's 102 records would; fields under unknown names in its cards: HP, illustrator")
    assert run["summary"].endswith("; unknown card fields kept in extra: illustrator (15912), HP (13607)")
    assert logged(result, "error", "set base1 not synced, nothing written", "field 'hp'")
    assert ledger_row(cli, "sync-missing-cards")["status"] == "failed"
    assert rows(db, held)[0] == before and rows(db, "SELECT count(extra) FROM pokemon_cards") == [(0,)]

    validate, report = run_json(cli, "validate-data-integrity")
    assert validate.exit_code == 0, validate.output
    assert finding(report, "source_drift")["count"] >= 151
    assert finding(report, "unknown_source_fields")["examples"] == [
        "card field 'illustrator': 15912 record(s), e.g. base1-1", "card field 'HP': 13607 record(s), e.g. base1-1"]
