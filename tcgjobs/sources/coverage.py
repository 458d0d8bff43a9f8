"""The source side of validate-data-integrity: which set and card ids the source holds, read one
card file at a time, with the duplicates and unusable files it found on the way."""

from __future__ import annotations

from dataclasses import dataclass, field

from tcgjobs.sources.layouts import Source, SourceFileError


@dataclass
class SourceIds:
    """Every id in the source. ``cards`` maps card id → set id (the first file that has it)."""

    sets: set[str] = field(default_factory=set)
    cards: dict[str, str] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)
    rejected: int = 0


def source_ids(source: Source) -> SourceIds:
    """Read the whole source, a set at a time. Unusable files and records are counted, not raised
    (except an unusable sets file: SourceFileError)."""
    ids = SourceIds()
    read = source.read_sets()
    ids.sets = {record["id"] for record in read.sets}
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
        ids.rejected += len(cards.rejected)
        ids.duplicates.extend(cards.duplicates)
        for card in cards.cards:
            if card["id"] in ids.cards:
                ids.duplicates.append(card["id"])
            else:
                ids.cards[card["id"]] = set_id
    return ids
