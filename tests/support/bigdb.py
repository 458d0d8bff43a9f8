"""A real card database large enough that VACUUM takes a noticeable time, with many free pages."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tcgjobs.db.cards import open_card_database


def build(path: Path, rows: int = 120_000, blob_bytes: int = 1000) -> dict[str, int]:
    """Fill ``path`` with ``rows`` cards of ``blob_bytes`` random bytes each (as hex), then delete
    most of them in a contiguous range plus every third, leaving about half the pages free."""
    open_card_database(path, create=True).close()
    connection = sqlite3.connect(path)
    connection.execute("INSERT INTO pokemon_card_sets(id, name, series) VALUES ('big1', 'Big', 'Test')")
    connection.execute(
        f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
            INSERT INTO pokemon_cards(id, name, supertype, subtypes, types, set_id, number, flavor_text)
            SELECT 'big-' || i, 'Card ' || i, 'Pokémon', '[]', '[]', 'big1', i, hex(randomblob({blob_bytes}))
            FROM n""")
    connection.commit()
    connection.execute(f"DELETE FROM pokemon_cards WHERE rowid % 3 = 0 OR rowid > {rows * 2 // 3}")
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    facts = snapshot(connection)
    connection.close()
    return facts


def snapshot(connection: sqlite3.Connection) -> dict[str, int]:
    """Counts and page numbers that change if (and only if) something was written."""
    return {
        "cards": connection.execute("SELECT count(*) FROM pokemon_cards").fetchone()[0],
        "sets": connection.execute("SELECT count(*) FROM pokemon_card_sets").fetchone()[0],
        "page_count": connection.execute("PRAGMA page_count").fetchone()[0],
        "freelist": connection.execute("PRAGMA freelist_count").fetchone()[0],
        "id_sum": connection.execute("SELECT sum(length(id)) + count(*) FROM pokemon_cards").fetchone()[0],
    }


def facts_of(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return snapshot(connection)
    finally:
        connection.close()


def copy_database(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        if Path(str(source) + suffix).exists():
            shutil.copyfile(str(source) + suffix, str(target) + suffix)


def damage_pages(path: Path, first_page: int = 2, length: int = 200) -> None:
    """Scribble over the start and end of every page from ``first_page`` on, as a failing disk would,
    after folding the WAL in so the damage is what SQLite reads."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.close()
    with open(path, "r+b") as handle:
        for page in range(first_page, pages + 1):
            for offset in (0, page_size - length):  # the b-tree page header and the cell area
                handle.seek((page - 1) * page_size + offset)
                handle.write(bytes((page * 37 + i) % 256 for i in range(length)))
