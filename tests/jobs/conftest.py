"""Fixtures shared by the job tests: the card database's path and a card data directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(env) -> Path:
    """Where the card database lives (DATABASE_PATH); it may not exist yet."""
    return Path(env["DATABASE_PATH"])


@pytest.fixture
def data(tmp_path, env) -> Path:
    """An empty card data directory, set as TCGJOBS_DATA_SOURCE."""
    root = tmp_path / "data"
    env["TCGJOBS_DATA_SOURCE"] = str(root)
    return root
