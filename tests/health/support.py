"""Helpers for the health-check, alerting and metrics tests: real card databases, real runs."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from tcgjobs.db.cards import open_card_database
from tests.conftest import invoke


def fill_cards(path: Path, sets: int = 2, cards_per_set: int = 50) -> None:
    """Create (or extend) a card database at ``path`` with ``sets`` sets of ``cards_per_set`` cards."""
    db = open_card_database(path, create=True)
    try:
        with db.atomic():
            for s in range(sets):
                db.execute_sql("INSERT OR IGNORE INTO pokemon_card_sets (id, name, series) VALUES (?, ?, ?)",
                               (f"set{s}", f"Set {s}", "Test"))
                for c in range(cards_per_set):
                    db.execute_sql(
                        "INSERT OR IGNORE INTO pokemon_cards (id, name, supertype, subtypes, types, set_id, "
                        "number, flavor_text) VALUES (?, ?, 'Pokémon', '[]', '[]', ?, ?, ?)",
                        (f"set{s}-{c}", f"Card {c}", f"set{s}", str(c), "flavour text " * 40))
    finally:
        db.close()


def take_backup(cli: Any) -> None:
    """A real, verified backup of the card database (backup-database)."""
    result = invoke(cli, "run", "backup-database")
    assert result.exit_code == 0, result.output


def healthy_setup(cli: Any, path: Path) -> None:
    """A filled card database and a fresh verified backup: every check ok."""
    fill_cards(path)
    take_backup(cli)


def delete_cards(path: Path, keep: int) -> None:
    """Keep only the first ``keep`` cards (by id order)."""
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM pokemon_cards WHERE id NOT IN "
                           "(SELECT id FROM pokemon_cards ORDER BY id LIMIT ?)", (keep,))
    connection.close()


def run_health(cli: Any, *extra: str) -> tuple[int, dict[str, dict[str, Any]], dict[str, Any]]:
    """Run the health check through the CLI; returns (exit code, checks by name, the run JSON)."""
    result = invoke(cli, "run", "database-health-check", "--json", *extra)
    run = json.loads(result.stdout)["run"]
    checks = {c["check"]: c for c in (run["details"] or {}).get("checks", [])}
    return result.exit_code, checks, run


def state_rows(state_path: Path, sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(state_path) as connection:
        rows = connection.execute(sql, params).fetchall()
    connection.close()
    return rows


def backdate_state(state_path: Path, when: datetime) -> None:
    """Pretend the state database (the ledger) was created at ``when``."""
    with sqlite3.connect(state_path) as connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'created_at'", (when.isoformat(),))
    connection.close()


class StallingServer:
    """A TCP server that accepts connections and never answers (a hung PostgreSQL)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(connection)

    def close(self) -> None:
        self._stop.set()
        for connection in self.accepted:
            connection.close()
        self.sock.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
