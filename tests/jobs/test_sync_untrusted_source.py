"""Source data that lies to the sync jobs: files that leave the source through symlinks, files and
fields too large to be card data, values no database column can store. Each test checks the exit
code, the run's JSON and ledger row, the log and the card database together."""

from __future__ import annotations

import json

import pytest

from tcgjobs.errors import ExitCode
from tests.sources.builders import a_card, a_set, rows, run_json, write_package, write_upstream
from tests.support.runs import ledger_row, logged


def card_ids(db) -> list[str]:
    return [row[0] for row in rows(db, "SELECT id FROM pokemon_cards ORDER BY id")]


def set_ids(db) -> list[str]:
    """The stored set ids; none when the run never created the database."""
    if not db.exists():
        return []
    return [row[0] for row in rows(db, "SELECT id FROM pokemon_card_sets ORDER BY id")]


# --- symlinks (issue 13, item 13) --------------------------------------------------------------

def git_sync_checkout(tmp_path, env, sets, cards):
    """A checkout the way git-sync leaves it: a revision directory and a symlink to it, which
    TCGJOBS_DATA_SOURCE names."""
    revision = write_upstream(tmp_path / "git" / "rev-1", sets, cards)
    link = tmp_path / "git" / "current"
    link.symlink_to(revision)
    env["TCGJOBS_DATA_SOURCE"] = str(link)
    return revision


def test_a_card_file_symlinked_outside_the_source_is_refused_by_name(cli, db, env, tmp_path):
    revision = git_sync_checkout(tmp_path, env, [a_set("s1"), a_set("s2"), a_set("s3")],
                                 {"s1": [a_card("s1", "1")]})
    outside = tmp_path / "elsewhere" / "loot.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps([a_card("s2", "stolen")]))
    (revision / "cards" / "en" / "s2.json").symlink_to(outside)
    (revision / "shared").mkdir()  # a symlink that stays inside the checkout is fine
    (revision / "shared" / "s3.json").write_text(json.dumps([a_card("s3", "1")]))
    (revision / "cards" / "en" / "s3.json").symlink_to("../../shared/s3.json")
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "s2.json: resolves to" in run["error"] and "outside the card data source" in run["error"]
    assert list(run["details"]["failed"]) == ["s2"] and run["metrics"]["sets_failed"] == 1
    assert logged(result, "error", "set s2 skipped", "outside the card data source")
    assert card_ids(db) == ["s1-1", "s3-1"]
    ledger = ledger_row(cli, "sync-missing-cards")
    assert (ledger["status"], ledger["exit_code"]) == ("failed", 1)
    assert "s2.json" in ledger["error"]


def test_a_sets_file_symlinked_outside_the_source_writes_nothing(cli, db, data, tmp_path):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1")]})
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps([a_set("evil")]))
    (data / "sets" / "en.json").unlink()
    (data / "sets" / "en.json").symlink_to(outside)

    result, run = run_json(cli, "sync-missing-sets")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "en.json: resolves to" in run["error"] and "refused" in run["error"]
    assert set_ids(db) == []
    assert ledger_row(cli, "sync-missing-sets")["status"] == "failed"


def test_a_data_package_card_directory_linked_outside_is_refused(cli, db, data, tmp_path):
    write_package(data, [a_set("s1"), a_set("s2")], {"s1": [a_card("s1", "1")]})
    outside = write_package(tmp_path / "other", [a_set("s2")], {"s2": [a_card("s2", "1")]})
    (data / "cards" / "s2.d").symlink_to(outside / "cards" / "s2.d")
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "outside the card data source" in run["details"]["failed"]["s2"]
    assert card_ids(db) == ["s1-1"]


# --- size limits (issue 13, item 12) -----------------------------------------------------------

def test_a_field_above_the_default_limit_rejects_its_record_and_nothing_of_it_is_written(cli, db, data):
    huge = "x" * (2 << 20)  # 2 MiB of flavour text: not card data
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1"), a_card("s1", "2", flavorText=huge)]})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert ("id 's1-2' (position 1): field 'flavorText' is 2,097,152 bytes, above the field size "
            "limit of 1,048,576 bytes (TCGJOBS_SOURCE_MAX_FIELD_SIZE)") in run["error"]
    assert run["metrics"]["cards_rejected"] == 1 and run["metrics"]["cards_added"] == 1
    assert logged(result, "error", "rejected card record", "s1-2", "field size limit")
    assert card_ids(db) == ["s1-1"]
    assert ledger_row(cli, "sync-missing-cards")["exit_code"] == 1


def test_the_field_limit_is_a_setting_and_applies_to_nested_fields_and_set_records(cli, db, data, env):
    env["TCGJOBS_SOURCE_MAX_FIELD_SIZE"] = "2KiB"
    attacks = [{"name": "Big", "text": "y" * 3000}]
    write_upstream(data, [a_set("s1"), a_set("s2", legalities={"note": "z" * 3000})],
                   {"s1": [a_card("s1", "1"), a_card("s1", "2", attacks=attacks)]})

    sets, run = run_json(cli, "sync-missing-sets")
    assert sets.exit_code == ExitCode.FAILED, sets.output
    assert "id 's2' (position 1): field 'legalities' is" in run["error"]
    cards, run = run_json(cli, "sync-missing-cards")

    assert cards.exit_code == ExitCode.FAILED, cards.output
    assert "id 's1-2' (position 1): field 'attacks' is 3," in run["error"]
    assert set_ids(db) == ["s1"] and card_ids(db) == ["s1-1"]


def test_a_card_file_above_the_file_limit_is_refused_and_nothing_of_it_is_read(cli, db, data, env):
    env["TCGJOBS_SOURCE_MAX_FILE_SIZE"] = "8KiB"
    write_upstream(data, [a_set("s1"), a_set("big")],
                   {"s1": [a_card("s1", "1")], "big": [a_card("big", str(n)) for n in range(40)]})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")

    assert result.exit_code == ExitCode.FAILED, result.output
    failed = run["details"]["failed"]["big"]
    assert "big.json: " in failed and "above the file size limit of 8,192 bytes" in failed
    assert "TCGJOBS_SOURCE_MAX_FILE_SIZE" in failed and "nothing read from it" in failed
    assert logged(result, "error", "set big skipped", "above the file size limit")
    assert card_ids(db) == ["s1-1"]
    assert ledger_row(cli, "sync-missing-cards")["status"] == "failed"


def test_a_sets_file_above_the_file_limit_writes_no_set(cli, db, data, env):
    env["TCGJOBS_SOURCE_MAX_FILE_SIZE"] = "4KiB"
    write_upstream(data, [a_set(f"s{n}") for n in range(20)], {})

    result, run = run_json(cli, "sync-missing-sets")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "en.json: " in run["error"] and "above the file size limit of 4,096 bytes" in run["error"]
    assert set_ids(db) == []


@pytest.mark.parametrize("value", ["64 MB", "0", "1.5MiB"])
def test_a_size_setting_that_is_not_a_size_is_a_configuration_error(cli, db, data, env, value):
    env["TCGJOBS_SOURCE_MAX_FILE_SIZE"] = value
    write_upstream(data, [a_set("s1")], {})

    result, _ = run_json(cli, "sync-missing-sets")

    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "TCGJOBS_SOURCE_MAX_FILE_SIZE" in result.output


# --- values no column can store ----------------------------------------------------------------

def test_a_card_file_nested_too_deeply_to_read_fails_only_its_set(cli, db, data):
    deep = '[{"id": "deep-1", "name": "x", "supertype": "P", "number": "1", "attacks": ' \
           + "[" * 100_000 + "]" * 100_000 + "}]"
    write_upstream(data, [a_set("s1"), a_set("deep")], {"s1": [a_card("s1", "1")], "deep": deep})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "deep.json: JSON nested too deeply to read" in run["details"]["failed"]["deep"]
    assert card_ids(db) == ["s1-1"]


def test_an_integer_beyond_sqlite_rejects_its_record_instead_of_crashing_the_run(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1"), a_card("s1", "2", hp="9" * 30),
                                                a_card("s1", "3", convertedRetreatCost=2**70)]})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")

    assert result.exit_code == ExitCode.FAILED, result.output
    assert "id 's1-2' (position 1): field 'hp' is beyond the range of an SQLite integer" in run["error"]
    assert "id 's1-3' (position 2): field 'convertedRetreatCost' is beyond" in run["error"]
    assert run["metrics"]["cards_rejected"] == 2 and card_ids(db) == ["s1-1"]


def test_a_surrogate_escape_without_its_pair_rejects_its_record_and_the_rest_is_synced(cli, db, data):
    """JSON may escape half of a UTF-16 pair ("\\ud800"); Python decodes it to a string that is not
    Unicode and no UTF-8 column can store, which used to crash the whole run. Such a record is
    rejected by name, like any invalid one; a whole pair (an emoji) stays valid."""
    cards = (b'[' + json.dumps(a_card("s1", "1", name="Smile \U0001F600")).encode() + b', '
             + json.dumps(a_card("s1", "2")).replace('"s1-2"', '"s1-2\\ud800"').encode() + b', '
             + json.dumps(a_card("s1", "3", attacks=[{"name": "Odd", "text": "x"}]))
             .replace('"x"', '"\\uDC00x"').encode() + b']')
    sets = json.dumps([a_set("s1"), a_set("s2")]).replace('"name": "', '"name": "\\udbff', 1)
    write_upstream(data, sets, {"s1": cards})

    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == ExitCode.FAILED, result.output
    assert ("id 's1' (position 0): field 'name' holds a UTF-16 surrogate escape without its pair "
            "(\\ud800-\\udfff), which is not Unicode text") in run["error"]
    assert set_ids(db) == ["s2"]
    write_upstream(data, [a_set("s1"), a_set("s2")], {})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0

    result, run = run_json(cli, "sync-missing-cards")
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "id 's1-2\\ud800' (position 1): field 'id' holds a UTF-16 surrogate escape" in run["error"]
    assert "id 's1-3' (position 2): field 'attacks' holds a UTF-16 surrogate escape" in run["error"]
    assert run["metrics"]["cards_rejected"] == 2 and card_ids(db) == ["s1-1"]
    assert rows(db, "SELECT name FROM pokemon_cards") == [("Smile \U0001F600",)]
    result, run = run_json(cli, "validate-data-integrity")  # reads the same card file
    assert result.exit_code == ExitCode.OK, result.output
    assert (run["metrics"]["total_cards"], run["metrics"]["errors"]) == (1, 0)
