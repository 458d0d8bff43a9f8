"""The operator guide: the README's migration table covers every variable of the original;
docs/deploy.md lists every secret and the commands."""

from __future__ import annotations

import re

import pytest

from tcgjobs.config import load_settings
from tcgjobs.deploy.plan import secret_key, secret_settings
from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "deploy.md"
README = ROOT / "README.md"  # the migration table lives in the README's operator guide
ORIGINAL = ROOT.parent / "shared" / "docs" / "original-service.md"


def first_cells(markdown: str) -> list[str]:
    return [line.split("|")[1] for line in markdown.splitlines() if line.startswith("| ")]


def original_variables() -> set[str]:
    if not ORIGINAL.is_file():
        pytest.skip(f"the original's specification is not at {ORIGINAL}")
    text = ORIGINAL.read_text()
    section = text[text.index("## 2. Configuration"):text.index("## 3. ")]
    table = section[:section.index("`apps/cron/.env.example`")]
    return {name for cell in first_cells(table) for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


def test_migration_table_maps_every_environment_variable_of_the_original():
    variables = original_variables()
    assert {"DATABASE_PATH", "CRON_TIMEZONE", "BACKUP_MINIMUM", "POKEMON_TCG_API_KEY"} <= variables
    guide = README.read_text()
    table = guide[guide.index("| original variable | in tcgjobs |"):]
    rows = {name: line for line in table.splitlines() if line.startswith("| `")
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}
    missing = sorted(variables - set(rows))
    assert not missing, f"README.md's migration table lacks {missing}"
    assert all(len(rows[name].split("|")[2].strip()) > 10 for name in variables)


def test_guide_names_every_secret_key_and_its_file_setting(env):
    guide = GUIDE.read_text()
    for setting in secret_settings(load_settings(env)):
        assert f"`{secret_key(setting)}`" in guide, setting.variable
        assert f"{setting.variable}_FILE" in guide, setting.variable


def test_guide_documents_both_render_commands_and_the_restore_command():
    guide = GUIDE.read_text()
    for command in ("tcgjobs deploy k8s", "tcgjobs deploy crontab", "tcgjobs backup restore",
                    "--trigger schedule", "CRON_TZ", "ReadWriteOnce"):
        assert command in guide
