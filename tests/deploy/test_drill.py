"""The restore drill, run exactly as the README and docs/deploy.md write it: on a cron host, on
Kubernetes (its Jobs built by the documented ``jq`` filters from the CronJob ``tcgjobs deploy k8s``
renders, and run here by a stand-in ``kubectl``) and the README's short version.

The setting is the one that used to fail: a primary PostgreSQL is configured and has followed the
live database past the backup, and Slack is on. The drill must exit 0, alert nobody, leave the
live database and the primary as they were, and its documented cleanup must leave nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tcgjobs.backups.catalog import list_backups
from tests.conftest import ROOT, invoke
from tests.deploy.conftest import require_tool
from tests.sources.builders import run_json

pytestmark = pytest.mark.postgres

GUIDE = ROOT / "docs" / "deploy.md"
README = ROOT / "README.md"
VENV_BIN = str(Path(sys.executable).parent)


def fenced_block(text: str, after: str) -> str:
    """The first fenced code block after the line ``after``."""
    rest = text[text.index(after):]
    start = rest.index("```")
    body = rest[rest.index("\n", start) + 1:]
    return body[:body.index("```")]


def executable(directory: Path, name: str, script: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def moved_on(cli, env, postgres_url: str, slack) -> str:
    """Sync the bundled sample, back it up, then let the live database and the primary move on (a
    set renamed, replicated), so that a drill comparing the copy with the primary would fail;
    turn Slack on. Returns the backup's name."""
    import sqlite3

    for job in ("sync-missing-sets", "sync-missing-cards", "backup-database"):
        assert run_json(cli, job)[0].exit_code == 0, job
    [backup] = list_backups(Path(env["BACKUP_DIR"]))
    conn = sqlite3.connect(env["DATABASE_PATH"])
    with conn:
        conn.execute("UPDATE pokemon_card_sets SET name = 'Renamed since the backup' WHERE id = 'swshp'")
    conn.close()
    env["TCGJOBS_POSTGRES_URL"] = postgres_url
    assert run_json(cli, "replicate-to-primary")[0].exit_code == 0
    env["NOTIFICATIONS_ENABLED"] = "true"
    env["SLACK_WEBHOOK_URL"] = slack.webhook()
    return backup.name


def primary_names(postgres_url: str) -> list[tuple[str, str]]:
    import psycopg2

    connection = psycopg2.connect(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, name FROM pokemon_card_sets ORDER BY id")
            return cursor.fetchall()
    finally:
        connection.close()


def test_the_cron_host_drill_passes_and_cleans_up_as_written(cli, env, tmp_path, postgres_url, slack):
    name = moved_on(cli, env, postgres_url, slack)
    live, primary = digest(Path(env["DATABASE_PATH"])), primary_names(postgres_url)
    env_file = tmp_path / "etc" / "tcgjobs" / "env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("".join(f"{key}={env[key]}\n" for key in (
        "DATABASE_PATH", "BACKUP_DIR", "TCGJOBS_TMPDIR", "TCGJOBS_POSTGRES_URL", "NOTIFICATIONS_ENABLED",
        "SLACK_WEBHOOK_URL", "TCGJOBS_LOG_FORMAT")))
    var_lib = tmp_path / "var" / "lib" / "tcgjobs"
    var_lib.mkdir(parents=True)
    script = (fenced_block(GUIDE.read_text(), "On a cron host:")
              .replace("/etc/tcgjobs/env", str(env_file)).replace("/var/lib/tcgjobs", str(var_lib))
              .replace("pokemon-data-<timestamp>.sqlite3.db.gz", name))
    executable(tmp_path / "bin", "sudo", '[ "$1" = -u ] && shift 2\nexec "$@"')  # as the same user

    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{VENV_BIN}:{os.environ['PATH']}"})

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"restored {name}" in done.stdout
    assert list(var_lib.iterdir()) == [], "the drill's cleanup left files behind"
    assert slack.requests == []
    assert digest(Path(env["DATABASE_PATH"])) == live and primary_names(postgres_url) == primary


def test_the_kubernetes_drill_passes_and_cleans_up_as_written(cli, env, tmp_path, postgres_url, slack):
    require_tool("jq")
    root = tmp_path / "node"
    env["DATABASE_PATH"] = str(root / "app" / "database" / "pokemon-data.sqlite3.db")
    env["BACKUP_DIR"] = str(root / "app" / "backups")
    env["TCGJOBS_TMPDIR"] = str(root / "app" / "database")
    name = moved_on(cli, env, postgres_url, slack)
    live, primary = digest(Path(env["DATABASE_PATH"])), primary_names(postgres_url)
    rendered = tmp_path / "k8s"
    assert invoke(cli, "deploy", "k8s", "--output", str(rendered)).exit_code == 0
    with open(rendered / "settings.env", "a") as settings:  # what an overlay's configMapGenerator adds
        settings.write(f"TCGJOBS_POSTGRES_URL={postgres_url}\nNOTIFICATIONS_ENABLED=true\n"
                       f"SLACK_WEBHOOK_URL={slack.webhook()}\n")
    executable(tmp_path / "bin", "kubectl",
               f'exec "{sys.executable}" "{ROOT / "tests" / "support" / "fake_kubectl.py"}" "$@"')
    before = sorted(p.relative_to(root) for p in (root / "app").rglob("*"))
    script = fenced_block(GUIDE.read_text(), "On Kubernetes").replace(
        "pokemon-data-<timestamp>.sqlite3.db.gz", name)

    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FAKE_KUBECTL_RENDERED": str(rendered),
                               "FAKE_KUBECTL_ROOT": str(root),
                               "PATH": f"{tmp_path / 'bin'}:{VENV_BIN}:{os.environ['PATH']}"})

    assert done.returncode == 0, done.stdout + done.stderr
    exits = {job.name: int((job / "exit").read_text()) for job in (root / "jobs").iterdir()}
    assert exits == {"drill-list": 0, "drill-restore": 0, "drill-check": 0, "drill-clean": 0}, \
        done.stdout + done.stderr
    assert f"restored {name}" in done.stdout
    after = sorted(p.relative_to(root) for p in (root / "app").rglob("*"))
    ledger = Path("app", "database", "tcgjobs-state.sqlite3")  # the live ledger and its locks
    assert [p for p in after if p not in before and not str(p).startswith(str(ledger))] == [], \
        "the drill's cleanup left files behind"
    assert not (root / "app" / "database" / "drill").exists()
    assert slack.requests == []
    assert digest(Path(env["DATABASE_PATH"])) == live and primary_names(postgres_url) == primary


def test_the_readmes_drill_passes_and_cleans_up_as_written(cli, env, tmp_path, postgres_url, slack):
    name = moved_on(cli, env, postgres_url, slack)
    live = digest(Path(env["DATABASE_PATH"]))
    drill = tmp_path / "drill"
    block = fenced_block(README.read_text(), "### Restore drill")
    # The block shows the backup its replayed session made (tests/test_doc_sessions.py); here it
    # is this test's backup.
    shown = re.compile(r"pokemon-data-\d{4}-\d\d-\d\dT[\d-]+Z\.sqlite3\.db\.gz")
    commands = [shown.sub(name, line[2:].replace("/tmp/drill", str(drill)))
                for line in block.splitlines() if line.startswith("$ ")]
    assert len(commands) == 4

    for command in commands:
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"

    assert not drill.exists()
    assert slack.requests == []
    assert digest(Path(env["DATABASE_PATH"])) == live
