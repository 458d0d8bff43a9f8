"""The README's tables are the code's: job registry, ExitCode enum, settings table."""

from __future__ import annotations

import pytest

from tests.support import readme_tables


@pytest.mark.parametrize("name", sorted(readme_tables.TABLES))
def test_readme_table_matches_the_code(name):
    text = readme_tables.README.read_text(encoding="utf-8")
    table = readme_tables.section(text, name)
    assert table is not None, f"README.md has no <!-- BEGIN {name} --> section"
    assert table == readme_tables.TABLES[name](), (
        f"README.md's {name} table is stale: run `python -m tests.support.readme_tables`")


def test_readme_starts_with_the_two_fresh_machine_commands():
    text = readme_tables.README.read_text(encoding="utf-8")
    blocks = [b for b in text.split("```sh\n")[1:3]]
    assert "pip install" in blocks[0] and "tcgjobs run" in blocks[0]
    assert "pip install" in blocks[1] and "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command_verbatim():
    text = readme_tables.README.read_text(encoding="utf-8")
    test_command = text.split("```sh\n")[2].split("\n```")[0].strip()
    ci = (readme_tables.README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci
