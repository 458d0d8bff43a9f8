"""Helpers for the backup tests: card databases with rows, backups taken at chosen times, the
original service's backups (gzip of a raw copy, no sidecars), and damage."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

from tcgjobs.backups.create import create_backup
from tcgjobs.backups.names import backup_name
from tcgjobs.backups.verify import open_snapshot, row_counts
from tcgjobs.config import Settings
from tcgjobs.db.cards import open_card_database


def fill_card_db(path: Path, sets: int = 3, cards_per_set: int = 5, start: int = 0) -> None:
    """Create (or extend) the card database with ``sets`` sets of ``cards_per_set`` cards."""
    open_card_database(path, create=True).close()
    conn = sqlite3.connect(path)
    with conn:
        for s in range(start, start + sets):
            conn.execute("INSERT INTO pokemon_card_sets (id, name, series, total) VALUES (?, ?, ?, ?)",
                         (f"set{s}", f"Set {s}", "Test", cards_per_set))
            conn.executemany(
                "INSERT INTO pokemon_cards (id, name, supertype, subtypes, types, set_id, number, hp, "
                "attacks) VALUES (?, ?, 'Pokémon', '[]', '[]', ?, ?, ?, ?)",
                [(f"set{s}-{c}", f"Card {s}/{c}", f"set{s}", str(c), 10 * c, '[{"name": "Tackle"}]')
                 for c in range(cards_per_set)])
    conn.close()


def make_backup(settings: Settings, when: datetime, compression: str = "gzip") -> Path:
    """A real, verified backup of the card database named for ``when``."""
    conn = sqlite3.connect(settings.database_path)
    try:
        return create_backup(conn, settings.database_path, settings.backup_dir, settings.temp_dir,
                             compression=compression, now=when).path
    finally:
        conn.close()


def make_original_backup(settings: Settings, when: datetime, compressed: bool = True) -> Path:
    """What the Bun service wrote: a raw copy of the main file, gzipped, no sidecar or manifest."""
    settings.backup_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(settings.database_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    name = backup_name(when, "gzip" if compressed else "none")
    target = settings.backup_dir / name
    if compressed:
        target.write_bytes(gzip.compress(settings.database_path.read_bytes()))
    else:
        shutil.copyfile(settings.database_path, target)
    return target


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Invert one byte in the middle of ``path`` (or at ``offset``)."""
    data = bytearray(path.read_bytes())
    index = len(data) // 2 if offset is None else offset
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def rows(path: Path, table: str) -> list[tuple]:
    conn = open_snapshot(path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
    finally:
        conn.close()


def live_counts(path: Path) -> dict[str, int]:
    """Rows per table of a live database (every table, as a backup's manifest records them)."""
    conn = sqlite3.connect(path)
    try:
        return row_counts(conn)
    finally:
        conn.close()


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
