"""Planning and applying one set's card sync: which cards to add, which to update, in one
transaction. Shared by sync-missing-cards (apply) and its ``--dry-run`` (plan only).

"Changed" means the mapped column values differ from the stored ones (``created_at`` and
``updated_at`` are not compared). A column whose source field the layout does not carry (market
URLs in the upstream layout) keeps its stored value. Rows written by the platform's old seed script
(``evolves_from`` as JSON text, ``hp = -1``, NULL ``national_pokedex_numbers``) differ from the
mapped values and are therefore rewritten in the cron path's encoding.

A fingerprint per set (``tcgjobs_card_sync``: SHA-256 of the card file and of the set's stored
rows) lets a repeat run skip a set whose file and rows are both unchanged since its last sync
without parsing the file. It is written in the same transaction as the set's rows, and only when
the set synced cleanly (no rejected records, no ids skipped as duplicates of another set).
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from peewee import SqliteDatabase

from tcgjobs.sources.drift import Drift, drifts, filled, held, unknown_fields, watched_columns
from tcgjobs.sources.layouts import CardsRead
from tcgjobs.sources.rows import CARD_COLUMNS, CARD_ROWS, card_row, for_insert, merged

#: Bump when the mapping of a card to its row changes, so fingerprints of older runs are ignored.
MAPPING_VERSION = 1

_SAVE_FINGERPRINT = ("INSERT OR REPLACE INTO tcgjobs_card_sync (set_id, file_sha256, rows_sha256, "
                     "mapping_version, cards, duplicates, database_only, synced_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, datetime('now'))")
_HP = CARD_COLUMNS.index("hp")
_EVOLVES_FROM = CARD_COLUMNS.index("evolves_from")
_SET_ID = CARD_COLUMNS.index("set_id")
_EXTRA = CARD_COLUMNS.index("extra")
#: The card columns a drifting source could empty (drift.py).
WATCHED = watched_columns(CARD_ROWS)


def is_legacy_row(row: Sequence[Any]) -> bool:
    """A row in the old seed script's encoding (JSON-encoded evolves_from or hp = -1)."""
    evolves_from = row[_EVOLVES_FROM]
    legacy_evolves = isinstance(evolves_from, str) and (evolves_from == "[]" or evolves_from.startswith('"'))
    return legacy_evolves or row[_HP] == -1


def file_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def rows_digest(rows: Sequence[tuple[Any, ...]]) -> str:
    """SHA-256 of a set's rows as read back (ordered by id); any stored change alters it.

    marshal format 2 has no back-references, so equal values give equal bytes whatever the
    object identities (a new Python version may change the bytes: the next run then compares
    every set once in full and stores new fingerprints).
    """
    return hashlib.sha256(marshal.dumps(list(rows), 2)).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    file_sha256: str
    rows_sha256: str
    mapping_version: int
    cards: int
    duplicates: tuple[str, ...]
    database_only: tuple[str, ...]


def load_fingerprints(db: SqliteDatabase | None) -> dict[str, Fingerprint]:
    """The stored fingerprints (none without a database or before migration 3)."""
    if db is None or not db.table_exists("tcgjobs_card_sync"):
        return {}
    rows = db.execute_sql("SELECT set_id, file_sha256, rows_sha256, mapping_version, cards, "
                          "duplicates, database_only FROM tcgjobs_card_sync").fetchall()
    return {row[0]: Fingerprint(row[1], row[2], row[3], row[4], tuple(json.loads(row[5])),
                                tuple(json.loads(row[6]))) for row in rows}


def stored_rows(db: SqliteDatabase | None, select: str, set_id: str) -> list[tuple[Any, ...]]:
    """The set's stored rows, ordered by id (one indexed query per set)."""
    if db is None:
        return []
    return db.execute_sql(f"SELECT {select} FROM pokemon_cards WHERE set_id = ? ORDER BY id",
                          (set_id,)).fetchall()


@dataclass
class SetPlan:
    """What syncing one set's cards does."""

    set_id: str
    file_sha256: str
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    unchanged: int = 0
    legacy_normalised: int = 0
    database_only: list[str] = field(default_factory=list)
    cross_set_duplicates: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: int = 0
    source_cards: int = 0
    rows_before: list[tuple[Any, ...]] = field(default_factory=list)
    #: The stored fingerprint still matches: nothing to write, not even the fingerprint.
    current: bool = False
    #: Fields without a column (kept in ``extra``) → how many of the set's cards carry them.
    unknown: Counter[str] = field(default_factory=Counter)

    @property
    def writes(self) -> int:
        return len(self.inserts) + len(self.updates)

    @property
    def clean(self) -> bool:
        """Whether the outcome may be fingerprinted (nothing rejected or skipped from the file)."""
        return not self.rejected and not self.cross_set_duplicates

    def as_json(self, with_ids: bool) -> dict[str, Any]:
        plan: dict[str, Any] = {"set": self.set_id, "add": len(self.inserts),
                                "update": len(self.updates), "unchanged": self.unchanged}
        if with_ids:
            plan["add_ids"] = [row[0] for row in self.inserts]
            plan["update_ids"] = [row[0] for row in self.updates]
        if self.database_only:
            plan["database_only"] = self.database_only
        return plan


def unchanged_plan(set_id: str, file_sha256: str, rows: list[tuple[Any, ...]],
                   fingerprint: Fingerprint) -> SetPlan:
    """The plan of a set whose file and rows match its fingerprint: nothing to do."""
    gone = set(fingerprint.database_only)
    return SetPlan(set_id, file_sha256, unchanged=len(rows) - len(fingerprint.database_only),
                   duplicates=list(fingerprint.duplicates),
                   database_only=list(fingerprint.database_only),
                   source_cards=fingerprint.cards, rows_before=rows, current=True,
                   unknown=unknown_fields((row for row in rows if row[0] not in gone), _EXTRA))


def plan_set(db: SqliteDatabase | None, select: str, read: CardsRead, file_sha256: str,
             rows: list[tuple[Any, ...]], homes: dict[str, str], seen: dict[str, str]) -> SetPlan:
    """Compare one set's source cards with its stored ``rows``.

    ``homes`` maps every stored card id to its set; ``seen`` maps the card ids already synced in
    this run to their set, so a card id repeated in another set's file is skipped (first set
    wins across files; inside one file the last record wins) and reported.
    """
    plan = SetPlan(read.set_id, file_sha256, duplicates=list(read.duplicates),
                   rejected=len(read.rejected), source_cards=len(read.cards), rows_before=rows)
    stored = {row[0]: row for row in rows}
    if db is not None:
        for card in read.cards:  # stored under another set: update it into this one
            card_id = card["id"]
            if card_id not in stored and homes.get(card_id) not in (None, read.set_id):
                row = db.execute_sql(f"SELECT {select} FROM pokemon_cards WHERE id = ?",
                                     (card_id,)).fetchone()
                if row is not None:
                    stored[card_id] = row
    source_ids = set()
    for card in read.cards:
        card_id = card["id"]
        if seen.get(card_id, read.set_id) != read.set_id:
            plan.cross_set_duplicates.append(card_id)
            continue
        seen[card_id] = read.set_id
        source_ids.add(card_id)
        row = card_row(card, read.set_id)
        if row[_EXTRA] is not None:
            plan.unknown.update(json.loads(row[_EXTRA]).keys())
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
                                if card_id not in source_ids and row[_SET_ID] == read.set_id)
    return plan


def rows_after(plan: SetPlan) -> list[tuple[Any, ...]]:
    """The set's rows as a SELECT ordered by id will read them once the plan is written.

    Computed instead of read back: every value written is str, int or None, which SQLite returns
    unchanged, and SQLite's BINARY order of UTF-8 text is Python's order of str. (Were it ever
    wrong, the fingerprint would just never match and the set would be compared in full.)
    """
    written = {row[0]: row for row in plan.inserts}
    written.update((row[0], row) for row in plan.updates)
    rows = [row for row in plan.rows_before if row[0] not in written and row[_SET_ID] == plan.set_id]
    rows.extend(written.values())
    rows.sort(key=lambda row: row[0])
    return rows


def plan_drifts(plan: SetPlan) -> list[Drift]:
    """The columns this plan would empty although most of the set's stored cards hold them
    (drift.py): the set's cards from the source, as they will be stored, against its rows
    before. None without updates: inserts alone never empty a stored row."""
    if not plan.updates:
        return []
    gone = set(plan.database_only)
    after = [row for row in rows_after(plan) if row[0] not in gone]
    filled_after = filled(after, WATCHED)
    if all(filled_after):
        return []
    before = plan.rows_before
    return drifts(WATCHED, len(before), held(before, WATCHED), len(after), filled_after)


def apply_plan(db: SqliteDatabase, plan: SetPlan) -> None:
    """Write one set's plan and its new fingerprint in one transaction: all of it or none."""
    if plan.current or (not plan.writes and not plan.clean):
        return
    with db.atomic():
        connection = db.connection()
        if plan.inserts:
            connection.executemany(CARD_ROWS.insert, plan.inserts)
        if plan.updates:
            connection.executemany(CARD_ROWS.update, map(CARD_ROWS.update_parameters, plan.updates))
        if not plan.clean:
            connection.execute("DELETE FROM tcgjobs_card_sync WHERE set_id = ?", (plan.set_id,))
            return
        connection.execute(_SAVE_FINGERPRINT, (plan.set_id, plan.file_sha256, rows_digest(rows_after(plan)),
                                               MAPPING_VERSION, plan.source_cards,
                                               json.dumps(plan.duplicates),
                                               json.dumps(plan.database_only)))


def fingerprint_matches(fingerprint: Fingerprint | None, file_sha256: str,
                        rows: list[tuple[Any, ...]]) -> bool:
    """Whether a set may be skipped: same file, same rows, same mapping as its last clean sync."""
    return (fingerprint is not None and fingerprint.mapping_version == MAPPING_VERSION
            and fingerprint.file_sha256 == file_sha256
            and fingerprint.rows_sha256 == rows_digest(rows))
