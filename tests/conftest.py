"""Shared fixtures: an isolated environment per test, the CLI, real SQLite files, the real
PostgreSQL server, the shared 2023 snapshot and a real local HTTP server standing in for Slack."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tcgjobs.config import Settings, all_settings, load_settings
from tcgjobs.db.cards import open_card_database
from tests.support.slack_server import SlackServer

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "pokemon-tcg-data-2023"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _our_variables() -> set[str]:
    names: set[str] = set()
    for setting in all_settings():
        for variable in setting.env + setting.deprecated_env:
            names.update({variable, variable + "_FILE"})
    return names | {"SQLITE_TMPDIR"}


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean environment whose paths all point into ``tmp_path``. Tests may add to it; the
    returned dict is also applied to ``os.environ``, so in-process code and subprocesses agree."""
    for name in _our_variables():
        monkeypatch.delenv(name, raising=False)
    values = {
        "DATABASE_PATH": str(tmp_path / "database" / "pokemon-data.sqlite3.db"),
        "BACKUP_DIR": str(tmp_path / "database" / "backups"),
        "TCGJOBS_TMPDIR": str(tmp_path / "tmp"),
        "TCGJOBS_LOG_FORMAT": "json",
    }
    (tmp_path / "tmp").mkdir()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)

    class _Env(dict):
        def __setitem__(self, key: str, value: str) -> None:
            super().__setitem__(key, value)
            monkeypatch.setenv(key, value)

        def __delitem__(self, key: str) -> None:
            super().__delitem__(key)
            monkeypatch.delenv(key, raising=False)

    return _Env(values)


@pytest.fixture(autouse=True)
def signal_handlers() -> Iterator[None]:
    """The CLI leaves SIGTERM and SIGINT ignored once a run is shown (its process exits next);
    an in-process CLI test must not leave the test session, or the processes it starts later,
    deaf to them."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(os.environ)


def make_settings(**overrides: str) -> Settings:
    """Settings from the current (isolated) environment plus ``overrides``."""
    return load_settings({**os.environ, **overrides})


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr, output)."""
    from tcgjobs.cli.app import app

    return runner.invoke(app, list(args), catch_exceptions=False)


def run_tcgjobs(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run ``tcgjobs`` as a separate process with the current environment."""
    return subprocess.run([sys.executable, "-m", "tcgjobs", *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def last_run(job: str) -> sqlite3.Row:
    """The newest ledger row of ``job`` (by start), read straight from the state database."""
    connection = sqlite3.connect(make_settings().state_path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC",
                                  (job,)).fetchone()
    finally:
        connection.close()


def popen_tcgjobs(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tcgjobs", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def card_db_path(env: dict[str, str]) -> Path:
    """An empty card database with the current schema."""
    path = Path(env["DATABASE_PATH"])
    open_card_database(path, create=True).close()
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared 2023 snapshot is not at {SHARED_DATA}")
    return SHARED_DATA


def _postgres_admin_dsn() -> str:
    return os.environ.get("TCGJOBS_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards), as a postgresql:// URL.

    Skips with the reason when no server answers, except in CI, where that is a failure.
    """
    import psycopg2

    try:
        admin = psycopg2.connect(_postgres_admin_dsn(), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL on 127.0.0.1:5432 and none answered: {exc}")
        pytest.skip(f"no PostgreSQL server answered on 127.0.0.1:5432: {exc}")
    admin.autocommit = True
    name = f"tcgjobs_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    """A real HTTP server on 127.0.0.1 that records posts and answers as scripted."""
    server = SlackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def big_database_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """Built once per session: ~500 MB with ~55% free pages, so VACUUM takes real time."""
    from tests.support import bigdb

    path = tmp_path_factory.mktemp("bigdb") / "template.sqlite3.db"
    facts = bigdb.build(path)
    return path, facts


@pytest.fixture
def big_card_db(big_database_template, env: dict[str, str]) -> tuple[Path, dict[str, int]]:
    """A private copy of the big database at DATABASE_PATH, and its facts before any job ran."""
    from tests.support import bigdb

    template, facts = big_database_template
    target = Path(env["DATABASE_PATH"])
    bigdb.copy_database(template, target)
    return target, facts


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator:
    """A factory for small real filesystems (tmpfs of ``size`` bytes) to run out of space on."""
    mounted: list[Path] = []

    def make(size: int, name: str = "tiny") -> Path:
        target = tmp_path / name
        target.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)
