"""Source data that drifts: card files that suddenly hold few of their set's cards, fields renamed
upstream. Small handcrafted sources first, then drifting copies of the real 2023 snapshot. Each
test checks the exit code, the run's JSON and ledger row, the log and the card database together."""

from __future__ import annotations

import pytest

from tcgjobs.errors import ExitCode
from tests.sources.builders import a_card, a_set, rows, run_json, write_upstream
from tests.support.drift import drifting_copy, emptied
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
