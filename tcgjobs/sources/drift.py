"""Drift: source data that would silently erase what the card database holds.

Upstream renames a field (``hp`` → ``HP``, ``artist`` → ``illustrator``): every record still
validates (the new name is an unknown field, kept in ``extra``), and the old column becomes NULL
for every card. The rule, applied by both sync jobs before they write and by
validate-data-integrity when it compares the source with the database:

    a column the database holds for at least half of a group's rows (a set's cards; all the
    sets) is drift when the source's records for that group carry it in none of their rows.

Only optional fields are watched: a required one cannot be missing (the record is rejected), a
market URL absent from the layout keeps its stored value, and ``extra`` is not one field.
"Holding" a value means holding something other than NULL and what the column's encoding writes
for an absent field (``[]`` or ``{}`` for the JSON arrays and objects that default to them). A
group the source gives no records is not drift (a card file that is ``[]``: see the coverage
warning). Fields under names the table does not know are reported separately
(:func:`unknown_fields`), since a renamed field appears as one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tcgjobs.db.card_schema import CardTable, Encoding
from tcgjobs.sources.rows import EMPTY_VALUES, TableRows

#: A column held by at least this share of a group's rows may not be emptied without consent.
DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class Watched:
    """A column watched for drift: its place in the rows, its source field, its empty value."""

    index: int
    column: str
    field: str
    empty: Any


def watched_columns(rows: TableRows) -> tuple[Watched, ...]:
    """The columns of ``rows``' table that drift can empty (see the module docstring)."""
    watched = []
    for index, name in enumerate(rows.columns):
        column = rows.table.column(name)
        if (column.source is None or column.source.required or column.sync is None
                or column.sync not in EMPTY_VALUES or column.sync is Encoding.MARKET_URL):
            continue
        watched.append(Watched(index, name, column.source.name, EMPTY_VALUES[column.sync]))
    return tuple(watched)


@dataclass(frozen=True)
class Drift:
    """A column the update would empty: ``held`` of ``rows`` stored rows hold it, none of the
    source's ``records`` records for the group would."""

    field: str
    column: str
    held: int
    rows: int
    records: int

    def __str__(self) -> str:
        return (f"field {self.field!r} (column {self.column}): {self.held} of {self.rows} stored "
                f"rows hold a value, none of the source's {self.records} records would")

    def accepted_by(self, accepted: frozenset[str]) -> bool:
        return self.field in accepted or self.column in accepted


def held(rows: Iterable[Sequence[Any]], watched: Sequence[Watched]) -> list[int]:
    """Per watched column, how many of ``rows`` hold a value."""
    return tally(rows, watched)[1]


def tally(rows: Iterable[Sequence[Any]], watched: Sequence[Watched]) -> tuple[int, list[int]]:
    """How many ``rows`` there are and, per watched column, how many of them hold a value: one
    pass, so the rows may come straight from a query."""
    counts = [0] * len(watched)
    total = 0
    for row in rows:
        total += 1
        for number, column in enumerate(watched):
            value = row[column.index]
            if value is not None and value != column.empty:
                counts[number] += 1
    return total, counts


def filled(rows: Sequence[Sequence[Any]], watched: Sequence[Watched]) -> list[bool]:
    """Per watched column, whether any of ``rows`` holds a value (stops at the first)."""
    return [any(row[column.index] is not None and row[column.index] != column.empty for row in rows)
            for column in watched]


def drifts(watched: Sequence[Watched], stored: int, held_before: Sequence[int],
           records: int, filled_after: Sequence[bool]) -> list[Drift]:
    """The drift of one group: ``stored`` rows of which ``held_before`` hold each watched
    column, and ``records`` source records of which some fill the columns ``filled_after``."""
    if not stored or not records:
        return []
    return [Drift(column.field, column.column, count, stored, records)
            for column, count, any_after in zip(watched, held_before, filled_after, strict=True)
            if count and count >= DRIFT_SHARE * stored and not any_after]


def unknown_fields(rows: Iterable[Sequence[Any]], extra_index: int) -> Counter[str]:
    """How many of ``rows`` carry each field the table has no column for (the keys of their
    ``extra`` JSON object)."""
    found: Counter[str] = Counter()
    for row in rows:
        if row[extra_index] is not None:
            found.update(json.loads(row[extra_index]).keys())
    return found


def accepted_names(text: str, table: CardTable, watched: Sequence[Watched]) -> frozenset[str]:
    """The fields (source or column names) an accept-drift option names. Raises ValueError
    naming those that no watched column of ``table`` has."""
    names = frozenset(name for name in text.split(",") if name)
    known = {column.field for column in watched} | {column.column for column in watched}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a field of {table.name} that drift can "
                         f"empty (one of {', '.join(sorted(c.field for c in watched))})")
    return names


@dataclass
class Shape:
    """What the source's records of one table carry, group by group (a set's cards; all the
    sets): how many records each group has and which watched columns some of them fill, and the
    fields under unknown names with how many records carry each and an example record id. Built
    by validate-data-integrity from the mapped source rows, to compare with the database's."""

    rows: TableRows
    watched: tuple[Watched, ...] = ()
    records: dict[str, int] = field(default_factory=dict)
    filled: dict[str, list[bool]] = field(default_factory=dict)
    unknown: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watched = watched_columns(self.rows)
        self._extra = self.rows.columns.index("extra")

    def add(self, group: str, rows: Sequence[Sequence[Any]]) -> None:
        """The mapped source rows of one group."""
        self.records[group] = len(rows)
        self.filled[group] = filled(rows, self.watched)
        for row in rows:
            if row[self._extra] is not None:
                for name in json.loads(row[self._extra]):
                    self.unknown[name] += 1
                    self.examples.setdefault(name, row[0])

    def drifts(self, stored: Callable[[str], Iterable[Sequence[Any]]]) -> list[tuple[str, Drift]]:
        """(group, drift) for each group of the source, in group order, whose records would
        empty a column of the database's rows of it, ``stored(group)``: read one group at a
        time, once, so only a group's counts are ever held."""
        found = []
        for group in sorted(self.records):
            rows, held_before = tally(stored(group), self.watched)
            found += [(group, drift) for drift in drifts(
                self.watched, rows, held_before, self.records[group], self.filled[group])]
        return found
