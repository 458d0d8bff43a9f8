"""The Dockerfile (linted, since no Docker engine is at hand) and its install steps, run for real."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tcgjobs import __version__
from tcgjobs.db.cards import open_card_database
from tests.conftest import ROOT
from tests.deploy.conftest import require_tool

DOCKERFILE = ROOT / "Dockerfile"
#: The Dockerfile's install steps; the wheel test below runs exactly these.
BUILD_STEP = "pip wheel --no-cache-dir --wheel-dir /wheels ."
INSTALL_STEPS = ("python -m venv /opt/tcgjobs",
                 "/opt/tcgjobs/bin/pip install --no-cache-dir --no-index --find-links=/wheels tcgjobs")


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                            if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("hadolint"), "--no-color", str(path)], capture_output=True,
                          text=True, timeout=60)


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_dockerfile_that_breaks_its_rules(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nCMD python -m tcgjobs\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # unpinned pip install


def test_dockerfile_is_multi_stage_non_root_with_the_original_defaults():
    steps = instructions(DOCKERFILE.read_text())
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim AS runtime"]
    runtime = steps[[k for k, _ in steps].index("FROM", 1):]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert "DATABASE_PATH=/app/database/pokemon-data.sqlite3.db" in env
    assert "BACKUP_DIR=/app/database/backups" in env
    assert ("VOLUME", '["/app/database"]') in runtime
    assert ("ENTRYPOINT", '["tcgjobs"]') in runtime
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert BUILD_STEP in runs and all(step in runs for step in INSTALL_STEPS)


def test_dockerfile_and_its_build_context_hold_no_secret():
    text = DOCKERFILE.read_text()
    for name in ("PASSWORD", "WEBHOOK", "TOKEN", "SECRET", "_URL"):
        assert not re.search(rf"^\s*(ENV|ARG)\b.*{name}", text, re.MULTILINE | re.IGNORECASE), name
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    # Deny everything (.git, .venv, databases, .secrets/), then allow exactly what COPY needs.
    assert [line for line in ignore if line and not line.startswith("#")][0] == "**"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {source.rstrip("/") for keyword, args in instructions(text)
              if keyword == "COPY" and not args.startswith("--from") for source in args.split()[:-1]}
    assert copied == allowed == {"pyproject.toml", "README.md", "tcgjobs"}


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_like_the_image_and_runs_a_real_job(tmp_path):
    """The Dockerfile's build and install steps, outside Docker: build context → wheels → venv."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    shutil.copytree(ROOT / "tcgjobs", context / "tcgjobs",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels, venv = tmp_path / "wheels", tmp_path / "opt-tcgjobs"

    def sh(command: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        command = command.replace("/wheels", str(wheels)).replace("/opt/tcgjobs", str(venv))
        command = command.replace("python -m venv", f"{sys.executable} -m venv")
        args = command.split()
        if args[0] == "pip":
            args = [sys.executable, "-m", "pip", *args[1:]]
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=True)

    sh(BUILD_STEP, cwd=context)
    assert any(p.name.startswith(f"tcgjobs-{__version__}-") for p in wheels.glob("*.whl"))
    for step in INSTALL_STEPS:
        sh(step)

    app = tmp_path / "app"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environ.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", HOME=str(tmp_path),
                   DATABASE_PATH=str(app / "database" / "pokemon-data.sqlite3.db"),
                   BACKUP_DIR=str(app / "database" / "backups"), TCGJOBS_TMPDIR=str(app / "database"))
    located = subprocess.run(["python", "-c", "import tcgjobs; print(tcgjobs.__file__)"], env=environ,
                             cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert located.startswith(str(venv))  # the installed wheel, not the source tree

    version = subprocess.run(["tcgjobs", "--version"], env=environ, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"tcgjobs {__version__}"

    open_card_database(Path(environ["DATABASE_PATH"]), create=True).close()
    run = subprocess.run(["tcgjobs", "run", "cleanup-stale-data", "--trigger", "schedule"],
                         env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    with sqlite3.connect(app / "database" / "tcgjobs-state.sqlite3") as db:
        rows = db.execute("SELECT job, trigger, status, exit_code FROM runs").fetchall()
    assert rows == [("cleanup-stale-data", "schedule", "succeeded", 0)]
