"""sync-missing-sets through the CLI: inserts, updates, never deletes, rejects malformed records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcgjobs.db.card_schema import POKEMON_CARD_SETS
from tcgjobs.errors import ExitCode
from tests.conftest import run_tcgjobs
from tests.sources.builders import a_card, a_set, every_field, execute, rows, run_json, write_package, write_upstream

SAMPLE_SETS = ["base1", "sm12", "swsh9tg", "swshp", "xy7"]


def set_ids(db: Path) -> list[str]:
    return [r[0] for r in rows(db, "SELECT id FROM pokemon_card_sets ORDER BY id")]


def test_the_quick_start_syncs_the_bundled_sample_from_any_directory(tmp_path, db):
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    first = run_tcgjobs("run", "sync-missing-sets", cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert "USING THE BUNDLED SAMPLE DATASET" in first.stderr
    second = run_tcgjobs("run", "sync-missing-cards", cwd=elsewhere)
    assert second.returncode == 0, second.stderr
    assert set_ids(db) == SAMPLE_SETS
    assert rows(db, "SELECT count(*) FROM pokemon_cards") == [(24,)]


def test_missing_sets_are_inserted_with_the_cron_path_encodings(cli, db, data):
    write_upstream(data, [a_set("s1", ptcgoCode="S1"), a_set("s2", printedTotal=None, images=...)], {})
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == 0, result.output
    assert run["metrics"] == {"sets_checked": 2, "sets_added": 2, "sets_updated": 0, "sets_unchanged": 0,
                              "sets_rejected": 0, "sets_database_only": 0, "source_duplicates": 0,
                              "sets_drifted": 0, "unknown_fields": 0}
    assert rows(db, "SELECT id, printed_total, legalities, ptcgo_code, images FROM pokemon_card_sets ORDER BY id") == [
        ("s1", 2, '{"unlimited":"Legal"}', "S1", '{"symbol":"https://img/s1/symbol.png","logo":"https://img/s1/logo.png"}'),
        ("s2", None, '{"unlimited":"Legal"}', None, None)]


def test_a_changed_set_is_updated_and_a_database_only_set_is_kept(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("s2")], {})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0
    execute(db, "INSERT INTO pokemon_card_sets (id, name, series) VALUES ('old9', 'Old', 'Gone')")
    write_upstream(data, [a_set("s1", total=5, name="Renamed"), a_set("s2")], {})
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == 0, result.output
    assert (run["metrics"]["sets_updated"], run["metrics"]["sets_unchanged"]) == (1, 1)
    assert run["metrics"]["sets_database_only"] == 1
    assert run["details"]["update"] == {"s1": ["name", "total"]}
    assert run["details"]["database_only"] == ["old9"]
    assert rows(db, "SELECT name, total FROM pokemon_card_sets WHERE id = 's1'") == [("Renamed", 5)]
    assert set_ids(db) == ["old9", "s1", "s2"]


def test_every_declared_column_is_written_and_rewritten_from_the_source(cli, db, data):
    declared = [c.name for c in POKEMON_CARD_SETS.columns if c.sqlite is not None]
    select = f"SELECT {', '.join(declared)} FROM pokemon_card_sets"
    write_upstream(data, [every_field(POKEMON_CARD_SETS, "s1", 1)], {})
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0
    first = dict(zip(declared, rows(db, select)[0], strict=True))
    assert [name for name, value in first.items() if value is None] == []
    assert first["extra"] == '{"newField":{"variant":1}}'

    write_upstream(data, [every_field(POKEMON_CARD_SETS, "s1", 2)], {})
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == 0, result.output
    second = dict(zip(declared, rows(db, select)[0], strict=True))
    written = [c.name for c in POKEMON_CARD_SETS.columns if c.in_row and not c.primary_key]
    assert run["details"]["update"] == {"s1": written}
    assert [name for name in written if second[name] == first[name]] == []
    assert second["created_at"] == first["created_at"]


def test_a_second_run_changes_nothing(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("s2")], {})
    run_json(cli, "sync-missing-sets")
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == 0
    assert (run["metrics"]["sets_added"], run["metrics"]["sets_updated"], run["metrics"]["sets_unchanged"]) == (0, 0, 2)


@pytest.mark.parametrize(("bad", "message"), [
    (a_set("../evil"), "unsafe set id '../evil'"),
    (a_set("bad1", name=...), "missing required field 'name'"),
    (a_set("bad1", total="many"), "field 'total' must be an integer or null, got str"),
])
def test_a_malformed_set_record_is_rejected_named_and_the_others_are_synced(cli, db, data, bad, message):
    write_upstream(data, [a_set("s1"), bad, a_set("s2")], {})
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == ExitCode.FAILED, result.output
    assert message in run["error"] and "position 1" in run["error"] and "en.json" in run["error"]
    assert run["metrics"]["sets_rejected"] == 1
    assert set_ids(db) == ["s1", "s2"]


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty file"), ('[{"id": "s1",}]', "invalid JSON at line 1 column 14"), ("{}", "expected a JSON array")])
def test_an_unusable_sets_file_fails_the_run_and_writes_nothing(cli, db, data, content, message):
    write_upstream(data, content, {})
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == ExitCode.FAILED, result.output
    assert message in run["error"] and str(data / "sets" / "en.json") in run["error"]
    assert not db.exists() or set_ids(db) == []


def test_a_source_in_neither_layout_is_a_configuration_error(cli, db, data):
    data.mkdir()
    (data / "readme.txt").write_text("not card data")
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert f"{data} is in neither known layout" in run["error"]


def test_the_sample_is_refused_for_a_database_holding_other_sets(cli, db, env):
    execute_on_new_db(cli, db)
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "refusing to load the bundled sample dataset" in run["error"] and "real1" in run["error"]
    assert set_ids(db) == ["real1"]


def execute_on_new_db(cli, db: Path) -> None:
    from tcgjobs.db.cards import open_card_database

    open_card_database(db, create=True).close()
    execute(db, "INSERT INTO pokemon_card_sets (id, name, series) VALUES ('real1', 'Real', 'R')")


def test_dry_run_reports_the_plan_and_creates_nothing(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("s2")], {})
    result, run = run_json(cli, "sync-missing-sets", "--dry-run")
    assert result.exit_code == 0, result.output
    assert run["status"] == "dry-run"
    assert run["details"]["add"] == ["s1", "s2"] and run["metrics"]["sets_added"] == 2
    assert not db.exists()


def test_dry_run_on_an_existing_database_writes_nothing(cli, db, data):
    write_upstream(data, [a_set("s1")], {})
    run_json(cli, "sync-missing-sets")
    write_upstream(data, [a_set("s1", name="New name"), a_set("s2")], {})
    before = db.read_bytes()
    result, run = run_json(cli, "sync-missing-sets", "--dry-run")
    assert result.exit_code == 0, result.output
    assert run["details"]["add"] == ["s2"] and run["details"]["update"] == {"s1": ["name"]}
    assert set_ids(db) == ["s1"] and db.read_bytes() == before


def test_the_data_package_layout_syncs_the_same_sets(cli, db, data):
    write_package(data, [a_set("s1"), a_set("s2")], {"s1": [a_card("s1", "1")]})
    result, run = run_json(cli, "sync-missing-sets")
    assert result.exit_code == 0, result.output
    assert "data-package layout" in run["summary"]
    assert set_ids(db) == ["s1", "s2"]
