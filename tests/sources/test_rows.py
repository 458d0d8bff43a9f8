"""The card and set row encodings, checked byte for byte against values written by hand from the
original's cron path (its sqlite.insertCard) — never against our own encoder."""

from __future__ import annotations

import pytest

from tcgjobs.sources.rows import CARD_COLUMNS, KEEP, SET_COLUMNS, card_row, for_insert, hp_value, merged, set_row

CHARIZARD = {
    "id": "base1-4", "name": "Charizard", "supertype": "Pokémon", "subtypes": ["Stage 2"],
    "level": "76", "hp": "120", "types": ["Fire"], "evolvesFrom": "Charmeleon",
    "abilities": [{"name": "Energy Burn", "text": "Turn all Energy into Fire Energy.", "type": "Pokémon Power"}],
    "attacks": [{"name": "Fire Spin", "cost": ["Fire", "Fire"], "convertedEnergyCost": 2, "damage": "100", "text": ""}],
    "weaknesses": [{"type": "Water", "value": "×2"}],
    "resistances": [{"type": "Fighting", "value": "-30"}],
    "retreatCost": ["Colorless", "Colorless", "Colorless"], "convertedRetreatCost": 3,
    "number": "4", "artist": "Mitsuhiro Arita", "rarity": "Rare Holo",
    "flavorText": "Spits fire that is hot enough to melt boulders.",
    "nationalPokedexNumbers": [6], "legalities": {"unlimited": "Legal"},
    "images": {"small": "https://images.pokemontcg.io/base1/4.png", "large": "https://images.pokemontcg.io/base1/4_hires.png"},
}


def row_of(record, set_id="base1"):
    return dict(zip(CARD_COLUMNS, card_row(record, set_id), strict=True))


def test_a_pokemon_maps_to_the_exact_bytes_of_the_cron_path():
    row = row_of(CHARIZARD)
    assert row["id"] == "base1-4"
    assert row["supertype"] == "Pokémon"
    assert row["subtypes"] == '["Stage 2"]'
    assert row["hp"] == 120
    assert row["types"] == '["Fire"]'
    assert row["evolves_from"] == "Charmeleon"
    assert row["evolves_to"] == "[]"
    assert row["rules"] == "[]"
    assert row["abilities"] == ('[{"name":"Energy Burn","text":"Turn all Energy into Fire Energy.",'
                                '"type":"Pokémon Power"}]')
    assert row["attacks"] == ('[{"name":"Fire Spin","cost":["Fire","Fire"],"convertedEnergyCost":2,'
                              '"damage":"100","text":""}]')
    assert row["weaknesses"] == '[{"type":"Water","value":"×2"}]'
    assert row["retreat_cost"] == '["Colorless","Colorless","Colorless"]'
    assert row["converted_retreat_cost"] == 3
    assert row["set_id"] == "base1"
    assert row["number"] == "4"
    assert (row["artist"], row["rarity"]) == ("Mitsuhiro Arita", "Rare Holo")
    assert row["flavor_text"] == "Spits fire that is hot enough to melt boulders."
    assert row["national_pokedex_numbers"] == "[6]"
    assert row["legalities"] == '{"unlimited":"Legal"}'
    assert row["images"] == ('{"small":"https://images.pokemontcg.io/base1/4.png",'
                             '"large":"https://images.pokemontcg.io/base1/4_hires.png"}')
    assert row["resistances"] == '[{"type":"Fighting","value":"-30"}]'
    assert row["level"] == "76"
    assert row["ancient_trait"] is None and row["regulation_mark"] is None and row["extra"] is None


def test_a_trainer_without_hp_gets_null_hp_and_empty_array_defaults():
    row = row_of({"id": "base1-91", "name": "Bill", "supertype": "Trainer", "rules": ["Draw 2 cards."],
                  "number": "91", "legalities": {"unlimited": "Legal"}, "images": {}})
    assert row["hp"] is None
    assert row["subtypes"] == "[]" and row["types"] == "[]" and row["attacks"] == "[]"
    assert row["national_pokedex_numbers"] == "[]" and row["resistances"] == "[]"
    assert row["rules"] == '["Draw 2 cards."]'
    assert row["images"] == "{}"
    assert row["evolves_from"] is None and row["converted_retreat_cost"] is None
    assert row["artist"] is None and row["rarity"] is None and row["flavor_text"] is None


def test_absent_legalities_and_images_become_empty_objects_and_null_fields_defaults():
    row = row_of({"id": "x-1", "name": "X", "supertype": "Energy", "number": "1", "rules": None,
                  "subtypes": None})
    assert row["legalities"] == "{}" and row["images"] == "{}"
    assert row["rules"] == "[]" and row["subtypes"] == "[]"


@pytest.mark.parametrize("number", ["TG01", "SWSH050", "177a", "SV107", "?", "1"])
def test_the_card_number_is_stored_verbatim(number):
    assert row_of({**CHARIZARD, "number": number})["number"] == number


@pytest.mark.parametrize(("raw", "expected"), [
    ("120", 120), ("60", 60), (" 70", 70), ("90+", 90), ("-10", -10), ("0", None), ("", None),
    ("abc", None), ("∞", None), (None, None), (80, 80), (0, None),
])
def test_hp_is_parse_int_or_null_like_the_original(raw, expected):
    assert hp_value(raw) == expected


def test_non_ascii_text_and_key_order_are_kept_as_in_the_source():
    card = {**CHARIZARD, "name": "Flabébé", "ancientTrait": {"text": "Ω", "name": "Θ Stop"},
            "weaknesses": [{"value": "×2", "type": "Metal"}]}
    row = row_of(card)
    assert row["name"] == "Flabébé"
    assert row["ancient_trait"] == '{"text":"Ω","name":"Θ Stop"}'
    assert row["weaknesses"] == '[{"value":"×2","type":"Metal"}]'


def test_unknown_fields_go_to_extra_and_the_embedded_set_and_prices_are_dropped():
    card = {**CHARIZARD, "set": {"id": "base1"}, "cardmarket": {"url": "https://cm/4", "prices": {"avg1": 1.5}},
            "newField": {"a": 1}, "regulationMark": "F"}
    row = row_of(card)
    assert row["extra"] == '{"newField":{"a":1}}'
    assert row["cardmarket_url"] == "https://cm/4"
    assert row["regulation_mark"] == "F"


def test_market_urls_are_kept_when_the_layout_does_not_carry_them():
    row = card_row(CHARIZARD, "base1")
    url_columns = [CARD_COLUMNS.index("tcgplayer_url"), CARD_COLUMNS.index("cardmarket_url")]
    assert all(row[i] is KEEP for i in url_columns)
    assert all(for_insert(row)[i] is None for i in url_columns)
    stored = list(for_insert(row))
    stored[url_columns[0]] = "https://tcgplayer/4"
    assert merged(row, tuple(stored)) == tuple(stored)


def test_an_explicit_null_market_object_clears_the_url():
    row = row_of({**CHARIZARD, "tcgplayer": None, "cardmarket": {"url": None}})
    assert row["tcgplayer_url"] is None and row["cardmarket_url"] is None


def test_a_set_maps_to_the_exact_bytes_of_the_cron_path():
    record = {"id": "swshp", "name": "SWSH Black Star Promos", "series": "Sword & Shield",
              "printedTotal": 307, "total": 304, "legalities": {"unlimited": "Legal", "standard": "Legal"},
              "ptcgoCode": "PR-SW", "releaseDate": "2019/11/15", "updatedAt": "2022/10/28 15:43:00",
              "images": {"symbol": "https://images.pokemontcg.io/swshp/symbol.png"}}
    assert dict(zip(SET_COLUMNS, set_row(record), strict=True)) == {
        "id": "swshp", "name": "SWSH Black Star Promos", "series": "Sword & Shield",
        "printed_total": 307, "total": 304, "legalities": '{"unlimited":"Legal","standard":"Legal"}',
        "ptcgo_code": "PR-SW", "release_date": "2019/11/15", "updated_at": "2022/10/28 15:43:00",
        "images": '{"symbol":"https://images.pokemontcg.io/swshp/symbol.png"}', "extra": None}


def test_a_set_without_optional_fields_stores_null_not_empty_json():
    row = dict(zip(SET_COLUMNS, set_row({"id": "exe1", "name": "Ex", "series": "E"}), strict=True))
    assert row["legalities"] is None and row["images"] is None and row["printed_total"] is None
