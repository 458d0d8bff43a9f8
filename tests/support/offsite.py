"""Backups for the off-site tests that are bigger than a multipart part."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tcgjobs.config import Settings
from tests.support.backups import fill_card_db, make_backup


def big_backup(settings: Settings, megabytes: int, when: datetime | None = None) -> Path:
    """A verified backup of a card database that also holds ``megabytes`` MiB of random bytes
    (they do not compress, so the backup is about that big)."""
    if not settings.database_path.exists():
        fill_card_db(settings.database_path)
    conn = sqlite3.connect(settings.database_path)
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ballast (id INTEGER PRIMARY KEY, data BLOB)")
        conn.executemany("INSERT INTO ballast (data) VALUES (?)",
                         [(os.urandom(1024 * 1024),) for _ in range(megabytes)])
    conn.close()
    return make_backup(settings, when or datetime.now(UTC))
