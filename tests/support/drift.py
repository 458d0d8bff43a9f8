"""Drifting copies of the 2023 snapshot: the real data, with the edits a drifting or broken
upstream makes (fields renamed in every card file, a card file emptied), written to tmp_path."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

Cards = list[dict[str, Any]]


def drifting_copy(snapshot: Path, target: Path,
                  edit: Callable[[str, Cards], Cards | None] = lambda set_id, cards: None) -> Path:
    """A copy of ``snapshot`` (pokemon-tcg-data layout, English) at ``target`` whose card files are
    ``edit(set_id, cards)`` where that returns a list (unchanged where it returns None)."""
    shutil.copytree(snapshot, target)
    for path in sorted((target / "cards" / "en").glob("*.json")):
        cards = json.loads(path.read_bytes())
        edited = edit(path.stem, cards)
        if edited is not None:
            path.write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    return target


def renamed(mapping: dict[str, str]) -> Callable[[str, Cards], Cards]:
    """An edit renaming fields of every card (``{"hp": "HP"}``), keeping each field's place."""
    def edit(set_id: str, cards: Cards) -> Cards:
        return [{mapping.get(key, key): value for key, value in card.items()} for card in cards]

    return edit


def emptied(*set_ids: str) -> Callable[[str, Cards], Cards | None]:
    """An edit leaving the card files of ``set_ids`` as ``[]``."""
    def edit(set_id: str, cards: Cards) -> Cards | None:
        return [] if set_id in set_ids else None

    return edit
