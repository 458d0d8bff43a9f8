"""sync-missing-cards through the CLI: every missing card, changed cards, one transaction per set,
bad files and records isolated, legacy rows normalised, dry-run plans, and the real 2023 snapshot."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tcgjobs.db.card_schema import POKEMON_CARDS
from tcgjobs.errors import ExitCode
from tests.conftest import popen_tcgjobs
from tests.sources.builders import a_card, a_set, every_field, execute, rows, run_json, write_package, write_upstream


def sync(cli, *args: str):
    sets, _ = run_json(cli, "sync-missing-sets")
    assert sets.exit_code in (0, 1), sets.output
    return run_json(cli, "sync-missing-cards", *args)


def card_ids(db: Path, set_id: str | None = None) -> list[str]:
    if set_id is None:
        return [r[0] for r in rows(db, "SELECT id FROM pokemon_cards ORDER BY id")]
    return [r[0] for r in rows(db, "SELECT id FROM pokemon_cards WHERE set_id = ? ORDER BY id", (set_id,))]


def test_every_missing_card_is_inserted_whatever_the_set_total(cli, db, data):
    write_upstream(data, [a_set("promo", total=1, printedTotal=1)],
                   {"promo": [a_card("promo", "SWSH001")]})
    sync(cli)
    write_upstream(data, [a_set("promo", total=1, printedTotal=1)],
                   {"promo": [a_card("promo", "SWSH001"), a_card("promo", "SWSH050"), a_card("promo", "177a")]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_added"] == 2 and run["metrics"]["cards_unchanged"] == 1
    assert card_ids(db) == ["promo-177a", "promo-SWSH001", "promo-SWSH050"]
    assert rows(db, "SELECT number FROM pokemon_cards WHERE id = 'promo-177a'") == [("177a",)]


def test_the_bundled_sample_syncs_end_to_end_and_a_second_run_changes_nothing(cli, db):
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_added"] == 24 and run["metrics"]["sets_processed"] == 5
    assert "SAMPLE" in run["summary"]
    assert rows(db, "SELECT hp, evolves_from, weaknesses, resistances FROM pokemon_cards WHERE id = 'base1-4'") == [
        (120, "Charmeleon", '[{"type":"Water","value":"×2"}]', '[{"type":"Fighting","value":"-30"}]')]
    assert rows(db, "SELECT hp, types FROM pokemon_cards WHERE id = 'base1-91'") == [(None, "[]")]
    again, run = sync(cli)
    assert again.exit_code == 0
    metrics = run["metrics"]
    assert (metrics["cards_added"], metrics["cards_updated"], metrics["cards_unchanged"]) == (0, 0, 24)


def test_a_card_changed_in_the_source_is_updated(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1"), a_card("s1", "2")]})
    sync(cli)
    execute(db, "UPDATE pokemon_cards SET updated_at = '2000-01-01 00:00:00'")
    changed = a_card("s1", "1", hp="70", weaknesses=[{"type": "Water", "value": "×2"}])
    write_upstream(data, [a_set("s1")], {"s1": [changed, a_card("s1", "2")]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert (run["metrics"]["cards_updated"], run["metrics"]["cards_unchanged"]) == (1, 1)
    assert rows(db, "SELECT id, hp, weaknesses, updated_at > '2000-01-01 00:00:00' FROM pokemon_cards ORDER BY id") == [
        ("s1-1", 70, '[{"type":"Water","value":"×2"}]', 1), ("s1-2", 60, "[]", 0)]


def test_every_declared_column_is_written_and_rewritten_from_the_source(cli, db, data):
    declared = [c.name for c in POKEMON_CARDS.columns if c.sqlite is not None]
    select = f"SELECT {', '.join(declared)} FROM pokemon_cards"
    write_package(data, [a_set("s1")], {"s1": [every_field(POKEMON_CARDS, "s1-1", 1)]})
    assert sync(cli)[0].exit_code == 0
    first = dict(zip(declared, rows(db, select)[0], strict=True))
    assert [name for name, value in first.items() if value is None] == []
    assert first["extra"] == '{"newField":{"variant":1}}'  # the embedded set is dropped

    execute(db, "UPDATE pokemon_cards SET updated_at = '2000-01-01 00:00:00'")
    first["updated_at"] = "2000-01-01 00:00:00"
    write_package(data, [a_set("s1")], {"s1": [every_field(POKEMON_CARDS, "s1-1", 2)]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_updated"] == 1
    second = dict(zip(declared, rows(db, select)[0], strict=True))
    unchanged = [name for name in declared if second[name] == first[name]]
    assert unchanged == ["id", "set_id", "created_at"]


def test_a_row_changed_in_the_database_is_repaired_on_the_next_run(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1"), a_card("s1", "2")]})
    sync(cli)
    execute(db, "UPDATE pokemon_cards SET name = 'Tampered' WHERE id = 's1-2'",
            "DELETE FROM pokemon_cards WHERE id = 's1-1'")
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert (run["metrics"]["cards_added"], run["metrics"]["cards_updated"]) == (1, 1)
    assert rows(db, "SELECT id, name FROM pokemon_cards ORDER BY id") == [("s1-1", "Card 1"), ("s1-2", "Card 2")]


def test_a_new_set_appearing_later_is_added_with_all_its_cards_in_one_run(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1")]})
    sync(cli)
    write_upstream(data, [a_set("s1"), a_set("s2")], {"s1": [a_card("s1", "1")],
                                                      "s2": [a_card("s2", str(n)) for n in range(1, 31)]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_added"] == 30
    assert len(card_ids(db, "s2")) == 30


def test_cards_of_a_set_missing_from_the_database_are_skipped_with_the_reason(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1")], "loose": [a_card("loose", "1")]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert run["details"]["skipped"] == {"loose": "set not in the database (run sync-missing-sets first)"}
    assert run["metrics"]["sets_skipped"] == 1
    assert card_ids(db) == ["s1-1"]


def test_duplicate_source_ids_keep_the_last_record_and_are_counted(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1", name="First"), a_card("s1", "1", name="Last")]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert run["metrics"]["source_duplicates"] == 1
    assert rows(db, "SELECT name FROM pokemon_cards") == [("Last",)]
    assert "repeated" in result.stderr and "the last record wins" in result.stderr


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b'[{"id": "bad-1", "name": "X",}]', "invalid JSON at line 1"),
    (b'{"cards": []}', "expected a JSON array"),
])
def test_an_unusable_card_file_skips_that_set_and_syncs_the_others(cli, db, data, content, message):
    write_upstream(data, [a_set("s1"), a_set("bad"), a_set("s2")],
                   {"s1": [a_card("s1", "1")], "bad": content, "s2": [a_card("s2", "1")]})
    result, run = sync(cli)
    assert result.exit_code == ExitCode.FAILED, result.output
    assert message in run["error"] and "bad.json" in run["error"] and "every other set was synced" in run["error"]
    assert run["metrics"]["sets_failed"] == 1 and run["metrics"]["cards_added"] == 2
    assert card_ids(db) == ["s1-1", "s2-1"]


def test_a_malformed_card_record_is_rejected_and_the_rest_of_its_set_synced(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1"), a_card("s1", "2", hp={"value": 60}),
                                                a_card("s1", "3", supertype=...), a_card("s1", "4")]})
    result, run = sync(cli)
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "id 's1-2' (position 1): field 'hp' must be" in run["error"]
    assert "id 's1-3' (position 2): missing required field 'supertype'" in run["error"]
    assert run["metrics"]["cards_rejected"] == 2
    assert card_ids(db) == ["s1-1", "s1-4"]
    again, run = sync(cli)  # the rejection is reported again, not hidden by the repeat-sync shortcut
    assert again.exit_code == ExitCode.FAILED and run["metrics"]["cards_rejected"] == 2


def test_a_card_file_named_like_a_path_traversal_is_never_opened(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("../x")], {"s1": [a_card("s1", "1")]})
    (data / "x.json").write_text(json.dumps([a_card("s1", "evil")]))  # where cards/en/../../x.json would lead
    sets, run = run_json(cli, "sync-missing-sets")
    assert sets.exit_code == ExitCode.FAILED, sets.output
    assert "unsafe set id '../x'" in run["error"]
    cards, run = run_json(cli, "sync-missing-cards")
    assert cards.exit_code == 0, cards.output
    assert [plan["set"] for plan in run["details"]["sets"]] == ["s1"]
    assert card_ids(db) == ["s1-1"]


def test_legacy_seed_rows_are_normalised_to_the_cron_encoding(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1", evolvesFrom="Zorua"),
                                                a_card("s1", "2", supertype="Trainer", hp=..., types=...)]})
    run_json(cli, "sync-missing-sets")
    execute(db, """INSERT INTO pokemon_cards (id, name, supertype, subtypes, hp, types, evolves_from, set_id, number,
                   national_pokedex_numbers, legalities, images)
                   VALUES ('s1-1', 'Card 1', 'Pokémon', '["Basic"]', 60, '["Fire"]', '"Zorua"', 's1', '1', NULL,
                           '{"unlimited":"Legal"}', '{"small":"https://img/s1/1.png"}'),
                          ('s1-2', 'Card 2', 'Trainer', '["Basic"]', -1, '[]', '[]', 's1', '2', NULL,
                           '{"unlimited":"Legal"}', '{"small":"https://img/s1/2.png"}')""")
    result, run = run_json(cli, "sync-missing-cards")
    assert result.exit_code == 0, result.output
    assert run["metrics"]["legacy_rows_normalised"] == 2 and run["metrics"]["cards_updated"] == 2
    assert rows(db, "SELECT id, evolves_from, hp, national_pokedex_numbers FROM pokemon_cards ORDER BY id") == [
        ("s1-1", "Zorua", 60, "[]"), ("s1-2", None, None, "[]")]


def test_the_upstream_layout_never_clears_stored_market_urls(cli, db, data):
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1")]})
    sync(cli)
    execute(db, "UPDATE pokemon_cards SET tcgplayer_url = 'https://tcgplayer/1', cardmarket_url = 'https://cm/1'")
    write_upstream(data, [a_set("s1")], {"s1": [a_card("s1", "1", name="Renamed")]})
    result, run = sync(cli)
    assert result.exit_code == 0 and run["metrics"]["cards_updated"] == 1
    assert rows(db, "SELECT name, tcgplayer_url, cardmarket_url FROM pokemon_cards") == [
        ("Renamed", "https://tcgplayer/1", "https://cm/1")]


def test_the_data_package_layout_stores_market_urls(cli, db, data):
    write_package(data, [a_set("s1")], {"s1": [
        a_card("s1", "1", tcgplayer={"url": "https://tcgplayer/1", "prices": {"holofoil": {"low": 1.5}}},
               cardmarket={"url": "https://cm/1", "updatedAt": "2023/01/01"}),
        a_card("s1", "2", tcgplayer=None, cardmarket=None)]})
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT id, tcgplayer_url, cardmarket_url, extra FROM pokemon_cards ORDER BY id") == [
        ("s1-1", "https://tcgplayer/1", "https://cm/1", None), ("s1-2", None, None, None)]


def test_dry_run_reports_the_exact_plan_per_set_and_writes_nothing(cli, db, data):
    write_upstream(data, [a_set("s1"), a_set("s2")], {"s1": [a_card("s1", "1")], "s2": [a_card("s2", "1")]})
    sync(cli)
    write_upstream(data, [a_set("s1"), a_set("s2")], {"s1": [a_card("s1", "1", name="New"), a_card("s1", "2")],
                                                      "s2": [a_card("s2", "1")]})
    before = db.read_bytes()
    result, run = run_json(cli, "sync-missing-cards", "--dry-run")
    assert result.exit_code == 0, result.output
    plans = {plan["set"]: plan for plan in run["details"]["sets"]}
    assert plans["s1"] == {"set": "s1", "add": 1, "update": 1, "unchanged": 0,
                           "add_ids": ["s1-2"], "update_ids": ["s1-1"]}
    assert plans["s2"]["add_ids"] == [] and plans["s2"]["unchanged"] == 1
    assert db.read_bytes() == before and card_ids(db) == ["s1-1", "s2-1"]


def test_dry_run_without_a_database_plans_against_an_empty_one(cli, db):
    result, run = run_json(cli, "sync-missing-cards", "--dry-run")
    assert result.exit_code == 0, result.output
    assert all(reason.startswith("set not in the database") for reason in run["details"]["skipped"].values())
    assert not db.exists()


def test_the_sample_is_refused_for_a_database_holding_other_sets(cli, db):
    from tcgjobs.db.cards import open_card_database

    open_card_database(db, create=True).close()
    execute(db, "INSERT INTO pokemon_card_sets (id, name, series) VALUES ('real1', 'Real', 'R')")
    result, run = run_json(cli, "sync-missing-cards")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "refusing to load the bundled sample" in run["error"]
    assert card_ids(db) == []


def source_cards_by_set(data: Path) -> dict[str, set[str]]:
    sets = json.loads((data / "sets" / "en.json").read_text())
    return {s["id"]: {c["id"] for c in json.loads((data / "cards" / "en" / f"{s['id']}.json").read_text())}
            for s in sets}


@pytest.mark.shared
@pytest.mark.slow
def test_the_real_2023_snapshot_syncs_exactly_and_a_second_run_changes_nothing(cli, db, env, shared_data):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)
    result, run = sync(cli)
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT count(*) FROM pokemon_card_sets") == [(151,)]
    assert rows(db, "SELECT count(*) FROM pokemon_cards") == [(16109,)]
    metrics = run["metrics"]
    assert (metrics["cards_added"], metrics["source_duplicates"], metrics["sets_processed"]) == (16109, 5, 151)
    assert rows(db, "SELECT count(*) FROM pokemon_cards WHERE number GLOB '*[^0-9]*'")[0][0] > 1000
    again, run = sync(cli)
    assert again.exit_code == 0
    metrics = run["metrics"]
    assert (metrics["cards_added"], metrics["cards_updated"], metrics["cards_unchanged"]) == (0, 0, 16109)
    assert run["metrics"]["source_duplicates"] == 5


@pytest.mark.shared
@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_card_sync_leaves_no_half_written_set(cli, db, env, shared_data):
    env["TCGJOBS_DATA_SOURCE"] = str(shared_data)
    env["TCGJOBS_LOG_LEVEL"] = "info"
    assert run_json(cli, "sync-missing-sets")[0].exit_code == 0
    process = popen_tcgjobs("run", "sync-missing-cards")
    for line in process.stderr:  # the job logs each set once it is committed
        if "card(s) added" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = Counter(set_id for (set_id,) in connection.execute("SELECT set_id FROM pokemon_cards"))
    connection.close()
    expected = source_cards_by_set(shared_data)
    assert 0 < len(stored) < len(expected), "the kill must land after the first and before the last set"
    for set_id, count in stored.items():
        assert count == len(expected[set_id]), f"set {set_id} is half written: {count}/{len(expected[set_id])}"
    result, run = run_json(cli, "sync-missing-cards")  # and the next run completes the rest
    assert result.exit_code == 0, result.output
    assert rows(db, "SELECT count(*) FROM pokemon_cards") == [(16109,)]


class RecordingReporter:
    """A real Reporter that remembers the progress it was given (what the CLI renders as a bar)."""

    def __init__(self) -> None:
        self.bars: list[dict] = []

    def progress(self, description: str, total: int | None):
        from contextlib import contextmanager

        bar = {"description": description, "total": total, "done": 0}
        self.bars.append(bar)

        @contextmanager
        def scope():
            class Advance:
                def advance(self, amount: int = 1) -> None:
                    bar["done"] += amount

            yield Advance()

        return scope()


def test_progress_is_reported_set_by_set(db, settings):
    from tcgjobs.registry import get_job
    from tcgjobs.runner import RunRequest, run_job

    run_job(RunRequest(job=get_job("sync-missing-sets"), settings=settings))
    reporter = RecordingReporter()
    outcome = run_job(RunRequest(job=get_job("sync-missing-cards"), settings=settings, reporter=reporter))
    assert int(outcome.exit_code) == 0, outcome.error
    assert reporter.bars == [{"description": "syncing cards, set by set", "total": 5, "done": 5}]


def test_piped_json_output_carries_no_progress_bar(cli, db):
    result, run = sync(cli)
    assert result.exit_code == 0
    assert "━" not in result.output and "syncing cards" not in result.output


def test_a_row_written_by_the_original_cron_keeps_its_original_columns_byte_for_byte(cli, db, data):
    card = a_card("s1", "TG01", evolvesFrom="Abra", weaknesses=[{"type": "Fire", "value": "×2"}],
                  resistances=[{"type": "Fighting", "value": "-30"}], hp="90+", subtypes=["Stage 1"])
    write_upstream(data, [a_set("s1")], {"s1": [card]})
    run_json(cli, "sync-missing-sets")
    original = {  # the row as the original cron path wrote it
        "id": "s1-TG01", "name": "Card TG01", "supertype": "Pokémon", "subtypes": '["Stage 1"]', "hp": 90,
        "types": '["Fire"]', "evolves_from": "Abra", "evolves_to": "[]", "rules": "[]", "abilities": "[]",
        "attacks": "[]", "weaknesses": '[{"type":"Fire","value":"×2"}]', "retreat_cost": "[]",
        "converted_retreat_cost": None, "set_id": "s1", "number": "TG01", "artist": "Someone", "rarity": "Common",
        "flavor_text": None, "national_pokedex_numbers": "[]", "legalities": '{"unlimited":"Legal"}',
        "images": '{"small":"https://img/s1/TG01.png"}', "tcgplayer_url": None, "cardmarket_url": None}
    assert list(original) == [c.name for c in POKEMON_CARDS.columns if c.in_row and not c.added]
    columns = ", ".join(original)
    execute(db, f"INSERT INTO pokemon_cards ({columns}) VALUES ({', '.join(map(_sql, original.values()))})")
    result, run = run_json(cli, "sync-missing-cards")
    assert result.exit_code == 0, result.output
    assert run["metrics"]["cards_updated"] == 1  # only to fill the added columns
    assert rows(db, f"SELECT {columns} FROM pokemon_cards") == [tuple(original.values())]
    assert rows(db, "SELECT resistances FROM pokemon_cards") == [('[{"type":"Fighting","value":"-30"}]',)]


def _sql(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"
