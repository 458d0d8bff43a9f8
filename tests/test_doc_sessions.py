"""A session shown in the docs is a session that happens: every ``console`` block of README.md and
docs/ that runs tcgjobs is replayed from a fresh directory and must print what it shows (run ids,
times, durations and sizes aside); every other block of shell commands must at least parse."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.doc_sessions import DOCUMENTS, ROOT, Block, blocks, normalise, replay, shell_text

SESSIONS = [d for d in DOCUMENTS if any(b.is_session for b in blocks(d))]
COMMANDS = [b for d in DOCUMENTS for b in blocks(d)
            if b.language in ("sh", "bash") or (b.language == "console" and not b.is_session)]


def _where(block: Block) -> str:
    line = block.document.read_text(encoding="utf-8")[:block.start].count("\n") + 1
    return f"{block.document.relative_to(ROOT)}:{line}"


def test_the_readme_shows_a_session():
    assert ROOT / "README.md" in SESSIONS


@pytest.mark.slow
@pytest.mark.parametrize("document", SESSIONS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_session_in_the_docs_prints_what_it_shows(document):
    for block, printed in replay(document):
        assert normalise(printed) == normalise(block.text), (
            f"{_where(block)} shows something else than a real run prints; run "
            "`python -m tests.support.doc_sessions` to replay the sessions into the docs")


@pytest.mark.parametrize("block", COMMANDS, ids=_where)
def test_every_block_of_operator_commands_is_valid_shell(block):
    result = subprocess.run(["bash", "-n"], input=shell_text(block), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{_where(block)}: {result.stderr}"


def test_the_rotate_backups_session_shows_its_result_block():
    """The README once showed `tcgjobs run rotate-backups; echo "exit $?"` printing only `exit 0`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    step = readme.split('$ tcgjobs run rotate-backups; echo "exit $?"\n', 1)[1].split("\n$ ", 1)[0]
    assert "JOB RESULT" in step and "Job:      rotate-backups" in step and step.rstrip().endswith("exit 0")


def test_nothing_cites_a_specification_that_is_not_in_the_repository():
    """original-service.md lives outside this repository: facts are stated where they are needed."""
    citation = "original-service.md" + " §"  # split, or this file would cite it
    cited = [path.relative_to(ROOT) for folder in ("tcgjobs", "tests", "docs", "bench")
             for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".md")
             and citation in path.read_text(encoding="utf-8")]
    cited += [Path("README.md")] if "original-service.md" in (ROOT / "README.md").read_text() else []
    assert cited == []
