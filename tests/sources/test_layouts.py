"""Reading both layouts, detecting them, and refusing what is malformed or unsafe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcgjobs.errors import ConfigError
from tcgjobs.sources import SAMPLE_DIR, Layout, SourceFileError, detect, open_source
from tcgjobs.sources.ids import is_safe_set_id
from tests.sources.builders import a_card, a_set, write_package, write_upstream


def test_the_upstream_layout_is_detected_and_read(tmp_path):
    root = write_upstream(tmp_path / "data", [a_set("s1")], {"s1": [a_card("s1", "1"), a_card("s1", "TG01")]})
    source = detect(root)
    assert source.layout is Layout.UPSTREAM
    assert [s["id"] for s in source.read_sets().sets] == ["s1"]
    cards = source.read_cards("s1")
    assert [c["id"] for c in cards.cards] == ["s1-1", "s1-TG01"]
    assert cards.file == root / "cards" / "en" / "s1.json"


def test_the_data_package_layout_is_detected_from_the_package_or_its_data_directory(tmp_path):
    write_package(tmp_path / "pkg" / "data", [a_set("s1")], {"s1": [a_card("s1", "1")]})
    for root in (tmp_path / "pkg" / "data", tmp_path / "pkg"):
        source = detect(root)
        assert source.layout is Layout.PACKAGE
        assert source.root == tmp_path / "pkg" / "data"
        assert [c["id"] for c in source.read_cards("s1").cards] == ["s1-1"]


def test_the_language_setting_selects_the_upstream_files(tmp_path):
    root = write_upstream(tmp_path, [a_set("de1")], {"de1": [a_card("de1", "1")]}, language="de")
    assert detect(root, "de").read_sets().sets[0]["id"] == "de1"
    with pytest.raises(ConfigError, match="no language 'en'.*available: de"):
        detect(root, "en")


def test_an_unsafe_language_is_refused_before_any_path_is_built(tmp_path):
    root = write_upstream(tmp_path, [a_set("s1")], {})
    with pytest.raises(ConfigError, match="unsafe data language '../en'"):
        detect(root, "../en")


def test_a_directory_in_neither_layout_is_a_config_error_naming_it(tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(ConfigError, match=f"{tmp_path / 'junk'} is in neither known layout"):
        detect(tmp_path / "junk")
    with pytest.raises(ConfigError, match="does not exist"):
        detect(tmp_path / "missing")


def test_the_default_source_is_the_bundled_sample():
    source = open_source(None)
    assert source.is_sample and source.root == SAMPLE_DIR and source.layout is Layout.UPSTREAM
    assert "SAMPLE" in source.describe()


def test_the_bundled_sample_covers_the_hard_cases():
    source = open_source(None)
    sets = source.read_sets()
    assert not sets.rejected
    cards = {c["id"]: c for s in sets.sets for c in source.read_cards(s["id"]).cards}
    numbers = {c["number"] for c in cards.values()}
    assert {"TG01", "SWSH050", "177a"} <= numbers
    assert any(c["supertype"] == "Trainer" and "hp" not in c for c in cards.values())
    promo = next(s for s in sets.sets if s["id"] == "swshp")
    assert len(source.read_cards("swshp").cards) > promo["total"]
    assert any("resistances" in c for c in cards.values())
    assert any("evolvesFrom" in c for c in cards.values())
    assert any(w["value"] == "×2" for c in cards.values() for w in c.get("weaknesses", []))
    assert any("é" in c["name"] or "♀" in c["name"] for c in cards.values())


@pytest.mark.parametrize("set_id", ["../x", "..", "a/b", ".hidden", "", "x" * 65, "a b", "a\\b"])
def test_unsafe_set_ids_are_refused(set_id):
    assert not is_safe_set_id(set_id)


def test_a_path_traversal_set_id_is_rejected_and_never_opened(tmp_path):
    root = write_upstream(tmp_path / "data", [a_set("../secret"), a_set("ok1")], {"ok1": [a_card("ok1", "1")]})
    (tmp_path / "data" / "cards" / "secret.json").write_text("[]")  # what ../secret would open
    source = detect(root)
    read = source.read_sets()
    assert [s["id"] for s in read.sets] == ["ok1"]
    assert "unsafe set id '../secret'" in str(read.rejected[0])
    assert "position 0" in str(read.rejected[0])
    with pytest.raises(ValueError, match="unsafe set id"):
        source.card_file("../secret")


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "empty file"),
    (b"[{\"id\": \"s1-1\",}]", "invalid JSON at line 1"),
    (b"{\"data\": []}", "expected a JSON array, got dict"),
    (b"[\"\xc3\x28\"]", "not UTF-8"),
    (b"[\"\xed\xa0\x80\"]", "not UTF-8"),  # a surrogate encoded as UTF-8 (no column holds it)
    ('[{"id": "s1-\\ud800"}]'.encode("utf-16"), "not UTF-8"),  # json.loads(bytes) would take it
])
def test_an_unusable_card_file_raises_naming_the_file(tmp_path, content, problem):
    root = write_upstream(tmp_path, [a_set("s1")], {"s1": content})
    with pytest.raises(SourceFileError, match=problem) as caught:
        detect(root).read_cards("s1")
    assert str(tmp_path / "cards" / "en" / "s1.json") in str(caught.value)


def test_a_card_file_may_start_with_a_utf8_byte_order_mark(tmp_path):
    cards = json.dumps([a_card("s1", "1", name="Pokémon")], ensure_ascii=False)
    root = write_upstream(tmp_path, [a_set("s1")], {"s1": b"\xef\xbb\xbf" + cards.encode()})
    assert [c["name"] for c in detect(root).read_cards("s1").cards] == ["Pokémon"]


def test_malformed_card_records_are_rejected_with_file_and_id_or_position(tmp_path):
    cards = [a_card("s1", "1"), a_card("s1", "2", hp=["60"]), a_card("s1", "3", name=...),
             {**a_card("s1", "4"), "number": 4}, "not an object", a_card("s1", "5", supertype=""),
             a_card("s1", "6", convertedRetreatCost=True), {"name": "no id"}]
    root = write_upstream(tmp_path, [a_set("s1")], {"s1": cards})
    read = detect(root).read_cards("s1")
    assert [c["id"] for c in read.cards] == ["s1-1", "s1-4"]  # a numeric number is accepted
    messages = [str(r) for r in read.rejected]
    assert len(messages) == 6
    assert "record id 's1-2' (position 1): field 'hp' must be a string or an integer or null, got list" in messages[0]
    assert "id 's1-3' (position 2): missing required field 'name'" in messages[1]
    assert "position 4: expected an object, got str" in messages[2]
    assert "field 'supertype' is empty" in messages[3]
    assert "'convertedRetreatCost' must be an integer or null, got bool" in messages[4]
    assert "position 7: missing required field 'id'" in messages[5]
    assert all(str(tmp_path / "cards" / "en" / "s1.json") in m for m in messages)


def test_malformed_set_records_are_rejected_and_the_others_kept(tmp_path):
    root = write_upstream(tmp_path, [a_set("s1", total="2"), a_set("s2", series=...), a_set("s3")], {})
    read = detect(root).read_sets()
    assert [s["id"] for s in read.sets] == ["s3"]
    assert "id 's1' (position 0): field 'total' must be an integer or null, got str" in str(read.rejected[0])
    assert "id 's2' (position 1): missing required field 'series'" in str(read.rejected[1])


def test_duplicate_ids_in_one_file_keep_the_last_record(tmp_path):
    root = write_upstream(tmp_path, [a_set("s1")], {"s1": [a_card("s1", "1", name="Old"),
                                                            a_card("s1", "2"), a_card("s1", "1", name="New")]})
    read = detect(root).read_cards("s1")
    assert [(c["id"], c["name"]) for c in read.cards] == [("s1-1", "New"), ("s1-2", "Card 2")]
    assert read.duplicates == ["s1-1"]


def test_a_set_without_a_card_file_reads_as_none_and_card_files_are_listed(tmp_path):
    root = write_upstream(tmp_path, [a_set("s1"), a_set("s2")], {"s1": [], "extra9": []})
    (tmp_path / "cards" / "en" / "..bad.json").write_text("[]")
    source = detect(root)
    assert source.read_cards("s2") is None
    ids, unusable = source.card_file_set_ids()
    assert ids == ["extra9", "s1"] and unusable == []  # dot files are never considered


def test_a_sets_file_of_the_wrong_shape_is_an_error_naming_it(tmp_path):
    root = write_upstream(tmp_path, '{"data": []}', {})
    with pytest.raises(SourceFileError, match="sets/en.json: expected a JSON array"):
        detect(root).read_sets()
    package = write_package(tmp_path / "pkg", [], {})
    (package / "sets.json").write_text("[]")
    with pytest.raises(SourceFileError, match='expected an object with a "data" array'):
        detect(package).read_sets()


def test_sample_files_are_packaged_as_package_data():
    assert (Path(SAMPLE_DIR) / "sets" / "en.json").is_file()
    assert len(list((Path(SAMPLE_DIR) / "cards" / "en").glob("*.json"))) == 5


def test_integral_json_numbers_read_as_javascript_holds_them(tmp_path):
    root = write_upstream(tmp_path, [a_set("s1")], {"s1": '[{"id": "s1-1", "name": "A", "supertype": "Pokémon", '
                                                         '"number": "1", "convertedRetreatCost": 2.0, '
                                                         '"attacks": [{"convertedEnergyCost": 1e1, "x": 0.5}]}]'})
    card = detect(root).read_cards("s1").cards[0]
    assert card["convertedRetreatCost"] == 2 and type(card["convertedRetreatCost"]) is int
    assert card["attacks"] == [{"convertedEnergyCost": 10, "x": 0.5}]
    assert type(card["attacks"][0]["convertedEnergyCost"]) is int


def test_a_root_that_is_a_symlink_is_resolved_once_and_described_with_its_link(tmp_path):
    revision = write_upstream(tmp_path / "rev-1", [a_set("s1")], {"s1": [a_card("s1", "1")]})
    (tmp_path / "current").symlink_to(revision)
    source = detect(tmp_path / "current")
    (tmp_path / "current").unlink()  # git-sync swaps the link mid-run: this run keeps reading rev-1
    (tmp_path / "current").symlink_to(tmp_path / "elsewhere")
    assert source.root == revision.resolve()
    assert source.describe().startswith(f"{tmp_path / 'current'} -> {revision.resolve()}")
    assert [c["id"] for c in source.read_cards("s1").cards] == ["s1-1"]


def test_a_source_file_that_is_not_a_regular_file_is_refused(tmp_path):
    import os

    root = write_upstream(tmp_path / "data", [a_set("s1")], {})
    os.mkfifo(root / "cards" / "en" / "s1.json")  # would block a plain read forever
    with pytest.raises(SourceFileError, match="s1.json: is not a regular file; refused"):
        detect(root).read_cards("s1")
