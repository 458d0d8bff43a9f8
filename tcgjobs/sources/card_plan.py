"""Planning and applying one set's card sync: which cards to add, which to update, in one
transaction. Shared by sync-missing-cards (apply) and its ``--dry-run`` (plan only).

"Changed" means the mapped column values differ from the stored ones (``created_at`` and
``updated_at`` are not compared). A column whose source field the layout does not carry (market
URLs in the upstream layout) keeps its stored value. Rows written by the platform's old seed script
(``evolves_from`` as JSON text, ``hp = -1``, NULL ``national_pokedex_numbers``) differ from the
mapped values and are therefore rewritten in the cron path's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.sources.layouts import CardsRead
from tcgjobs.sources.mapping import CARD_COLUMNS, card_row, for_insert, merged

_INSERT = (f"INSERT INTO pokemon_cards ({', '.join(CARD_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(CARD_COLUMNS))})")
_UPDATE = (f"UPDATE pokemon_cards SET {', '.join(f'{c} = ?' for c in CARD_COLUMNS[1:])}, "
           "updated_at = datetime('now') WHERE id = ?")
_HP = CARD_COLUMNS.index("hp")
_EVOLVES_FROM = CARD_COLUMNS.index("evolves_from")


def is_legacy_row(row: tuple[Any, ...]) -> bool:
    """A row in the old seed script's encoding (JSON-encoded evolves_from or hp = -1)."""
    evolves_from = row[_EVOLVES_FROM]
    legacy_evolves = isinstance(evolves_from, str) and (evolves_from == "[]" or evolves_from.startswith('"'))
    return legacy_evolves or row[_HP] == -1


@dataclass
class SetPlan:
    """What syncing one set's cards does."""

    set_id: str
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    unchanged: int = 0
    legacy_normalised: int = 0
    database_only: list[str] = field(default_factory=list)
    cross_set_duplicates: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.inserts) + len(self.updates)

    def as_json(self, with_ids: bool) -> dict[str, Any]:
        plan: dict[str, Any] = {"set": self.set_id, "add": len(self.inserts),
                                "update": len(self.updates), "unchanged": self.unchanged}
        if with_ids:
            plan["add_ids"] = [row[0] for row in self.inserts]
            plan["update_ids"] = [row[0] for row in self.updates]
        if self.database_only:
            plan["database_only"] = self.database_only
        return plan


def plan_set(db: SqliteDatabase | None, select: str, read: CardsRead, homes: dict[str, str],
             seen: dict[str, str]) -> SetPlan:
    """Compare one set's source cards with the stored rows (fetched once, by set).

    ``homes`` maps every stored card id to its set; ``seen`` maps the card ids already synced in
    this run to their set, so a card id repeated in another set's file is skipped (first set
    wins across files; inside one file the last record wins) and reported.
    """
    plan = SetPlan(read.set_id)
    stored: dict[str, tuple[Any, ...]] = {}
    if db is not None:
        rows = db.execute_sql(f"SELECT {select} FROM pokemon_cards WHERE set_id = ?", (read.set_id,))
        stored = {row[0]: row for row in rows}
        moved = [card["id"] for card in read.cards
                 if card["id"] not in stored and homes.get(card["id"]) not in (None, read.set_id)]
        for card_id in moved:  # stored under another set: update it into this one
            row = db.execute_sql(f"SELECT {select} FROM pokemon_cards WHERE id = ?", (card_id,)).fetchone()
            if row is not None:
                stored[card_id] = row
    source_ids = set()
    for card in read.cards:
        card_id = card["id"]
        if card_id in seen and seen[card_id] != read.set_id:
            plan.cross_set_duplicates.append(card_id)
            continue
        seen[card_id] = read.set_id
        source_ids.add(card_id)
        row = card_row(card, read.set_id)
        old = stored.get(card_id)
        if old is None:
            plan.inserts.append(for_insert(row))
            continue
        new = merged(row, old)
        if new == old:
            plan.unchanged += 1
        else:
            plan.updates.append(new)
            plan.legacy_normalised += is_legacy_row(old)
    plan.database_only = sorted(card_id for card_id, row in stored.items()
                                if card_id not in source_ids and row[CARD_COLUMNS.index("set_id")] == read.set_id)
    return plan


def apply_plan(db: SqliteDatabase, plan: SetPlan) -> None:
    """Write one set's plan in one transaction: all of it or (on any error) none of it."""
    if not plan.writes:
        return
    with db.atomic():
        connection = db.connection()
        if plan.inserts:
            connection.executemany(_INSERT, plan.inserts)
        if plan.updates:
            connection.executemany(_UPDATE, [row[1:] + (row[0],) for row in plan.updates])
