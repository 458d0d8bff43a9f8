"""The source side of validate-data-integrity: which set and card ids the source holds, read one
card file at a time, with the duplicates and unusable files it found on the way; and the rule
both sync-missing-cards and validate apply to a card file holding few of its set's cards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tcgjobs.sources.drift import Shape
from tcgjobs.sources.layouts import Source, SourceFileError
from tcgjobs.sources.rows import CARD_ROWS, SET_ROWS, card_row, set_row


@dataclass
class SourceIds:
    """Every id in the source. ``cards`` maps card id → set id (the first file that has it);
    ``totals`` each set record's total, ``counts`` the valid cards of each set's card file
    (absent: no card file or an unusable one); the shapes of the set records (one group, "sets")
    and of each set's cards (drift.py)."""

    sets: set[str] = field(default_factory=set)
    cards: dict[str, str] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)
    rejected: int = 0
    totals: dict[str, int | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    set_shape: Shape = field(default_factory=lambda: Shape(SET_ROWS))
    card_shape: Shape = field(default_factory=lambda: Shape(CARD_ROWS))


def set_total(record: dict[str, Any]) -> int | None:
    """A set's total (its printed total when it has none), the number coverage compares with."""
    total = record.get("total")
    return total if total is not None else record.get("printedTotal")


def below_coverage(cards: int, total: int | None, min_percent: float) -> bool:
    """Whether a card file holding ``cards`` cards covers less than ``min_percent`` of its set's
    ``total`` (TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT; 0 and sets without a total never are). Every
    set of the 2023 snapshot holds at least its total (promos more), so this flags truncated,
    emptied or half-published card files."""
    return total is not None and total > 0 and cards * 100 < total * min_percent


def describe_coverage(cards: int, total: int) -> str:
    return f"{cards} of {total} cards ({cards * 100 // total}%)"


def source_ids(source: Source) -> SourceIds:
    """Read the whole source, a set at a time. Unusable files and records are counted, not raised
    (except an unusable sets file: SourceFileError)."""
    ids = SourceIds()
    read = source.read_sets()
    ids.sets = {record["id"] for record in read.sets}
    ids.totals = {record["id"]: set_total(record) for record in read.sets}
    ids.set_shape.add("sets", [set_row(record) for record in read.sets])
    ids.duplicates.extend(f"set {set_id}" for set_id in read.duplicates)
    ids.rejected += len(read.rejected)
    file_ids, unusable = source.card_file_set_ids()
    ids.unusable.extend(unusable)
    for set_id in [s["id"] for s in read.sets] + [i for i in file_ids if i not in ids.sets]:
        try:
            cards = source.read_cards(set_id)
        except SourceFileError as exc:
            ids.unusable.append(str(exc))
            continue
        if cards is None:
            continue
        ids.counts[set_id] = len(cards.cards)
        ids.card_shape.add(set_id, [card_row(card, set_id) for card in cards.cards])
        ids.rejected += len(cards.rejected)
        ids.duplicates.extend(cards.duplicates)
        for card in cards.cards:
            if card["id"] in ids.cards:
                ids.duplicates.append(card["id"])
            else:
                ids.cards[card["id"]] = set_id
    return ids
