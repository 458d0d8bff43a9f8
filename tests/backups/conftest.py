"""Fixtures of the backup tests: a card database with rows."""

from __future__ import annotations

import pytest

from tests.support.backups import fill_card_db


@pytest.fixture
def filled(settings):
    """The settings, with a card database of 3 sets of 5 cards at DATABASE_PATH."""
    fill_card_db(settings.database_path)
    return settings
