"""A writer process at full speed, for restores under load: one transaction per id, retried on
SQLITE_BUSY, and every id appended to a log (and flushed) only once its COMMIT has returned.

    python tests/support/writer.py DATABASE LOG FIRST_ID

It writes into the table ``writes(id INTEGER PRIMARY KEY)`` until it receives SIGTERM, then
finishes the transaction in hand and exits 0. The log therefore lists exactly the committed ids
a restore must not lose.
"""

from __future__ import annotations

import signal
import sqlite3
import sys

TABLE_DDL = "CREATE TABLE IF NOT EXISTS writes (id INTEGER PRIMARY KEY)"


def main() -> None:
    database, log_path, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    conn = sqlite3.connect(database, timeout=0.05, isolation_level=None)
    with open(log_path, "a", encoding="utf-8") as log:
        next_id = first
        while not stopping:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO writes (id) VALUES (?)", (next_id,))
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                continue
            log.write(f"{next_id}\n")
            log.flush()
            next_id += 1
    conn.close()


if __name__ == "__main__":
    main()
