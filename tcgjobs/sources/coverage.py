"""The source side of validate-data-integrity: which set and card ids the source holds, read one
card file at a time into temporary tables of the card database's connection (so that the gaps
between source and database are anti-joins in SQL, whatever the data size), with the duplicates
and unusable files it found on the way; and the rule both sync-missing-cards and validate apply
to a card file holding few of its set's cards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.sources.drift import Shape
from tcgjobs.sources.layouts import Source, SourceFileError
from tcgjobs.sources.rows import CARD_ROWS, SET_ROWS, card_row, set_row

#: The temporary tables holding the source's set ids and card ids (with the set of the first card
#: file holding each), ``id`` their primary key.
SOURCE_SETS = "temp.tcgjobs_source_sets"
SOURCE_CARDS = "temp.tcgjobs_source_cards"


@dataclass
class Listed:
    """How many items were found, and the first ``limit`` of them in the order found."""

    limit: int
    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, item: str) -> None:
        self.count += 1
        if len(self.first) < self.limit:
            self.first.append(item)


@dataclass
class SourceIds:
    """What validate-data-integrity keeps of the source; its ids are in :data:`SOURCE_SETS` and
    :data:`SOURCE_CARDS`. ``totals`` each set record's total, ``counts`` the valid cards of each
    set's card file (absent: no card file or an unusable one); the shapes of the set records (one
    group, "sets") and of each set's cards (drift.py); the repeated ids and the unusable files,
    each counted with the first ``limit``."""

    limit: int
    duplicates: Listed = field(init=False)
    unusable: Listed = field(init=False)
    rejected: int = 0
    totals: dict[str, int | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    set_shape: Shape = field(default_factory=lambda: Shape(SET_ROWS))
    card_shape: Shape = field(default_factory=lambda: Shape(CARD_ROWS))

    def __post_init__(self) -> None:
        self.duplicates, self.unusable = Listed(self.limit), Listed(self.limit)


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


def source_ids(source: Source, db: SqliteDatabase, limit: int) -> SourceIds:
    """Read the whole source, a set at a time, its ids into :data:`SOURCE_SETS` and
    :data:`SOURCE_CARDS` (created anew on ``db``'s connection, which may be read-only: temporary
    tables live in SQLite's temporary database, a file under SQLITE_TMPDIR, never in the card
    database). Unusable files and records are counted, not raised (except an unusable sets file:
    SourceFileError). ``limit``: how many duplicates and unusable files are kept as examples."""
    connection = db.connection()
    connection.execute("PRAGMA temp_store = FILE")  # the ids spill to disk, not to memory
    for table, columns in ((SOURCE_SETS, "id TEXT PRIMARY KEY"),
                           (SOURCE_CARDS, "id TEXT PRIMARY KEY, set_id TEXT NOT NULL")):
        connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(f"CREATE TABLE {table} ({columns}) WITHOUT ROWID")
    ids = SourceIds(limit)
    read = source.read_sets()
    ids.totals = {record["id"]: set_total(record) for record in read.sets}
    ids.set_shape.add("sets", [set_row(record) for record in read.sets])
    with db.atomic():
        connection.executemany(f"INSERT INTO {SOURCE_SETS} (id) VALUES (?)",
                               ((set_id,) for set_id in ids.totals))
    for set_id in read.duplicates:
        ids.duplicates.add(f"set {set_id}")
    ids.rejected += len(read.rejected)
    file_ids, unusable = source.card_file_set_ids()
    for name in unusable:
        ids.unusable.add(name)
    for set_id in [s["id"] for s in read.sets] + [i for i in file_ids if i not in ids.totals]:
        try:
            cards = source.read_cards(set_id)
        except SourceFileError as exc:
            ids.unusable.add(str(exc))
            continue
        if cards is None:
            continue
        ids.counts[set_id] = len(cards.cards)
        ids.card_shape.add(set_id, [card_row(card, set_id) for card in cards.cards])
        ids.rejected += len(cards.rejected)
        for card_id in cards.duplicates:
            ids.duplicates.add(card_id)
        before = connection.total_changes
        with db.atomic():
            connection.executemany(f"INSERT OR IGNORE INTO {SOURCE_CARDS} (id, set_id) VALUES (?, ?)",
                                   ((card["id"], set_id) for card in cards.cards))
        if connection.total_changes - before < len(cards.cards):
            # A set's own ids are unique (the last record won): an id left out is one an earlier
            # set's file holds too, and that first file keeps it.
            for card in cards.cards:
                first = connection.execute(f"SELECT set_id FROM {SOURCE_CARDS} WHERE id = ?",
                                           (card["id"],)).fetchone()[0]
                if first != set_id:
                    ids.duplicates.add(card["id"])
    return ids
