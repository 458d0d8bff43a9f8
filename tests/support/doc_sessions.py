"""The shell sessions shown in README.md and docs/, replayed for real.

A ```` ```console ```` block whose commands run ``tcgjobs`` is a session: ``$ `` lines are commands,
the lines after each are what it printed on stdout (its log lines on stderr are left out). The
sessions of one document run in order in one fresh directory, with the bundled sample and the
default settings, as an operator would type them. Run ids, times, durations and backup names differ
on every run, so both sides are normalised before they are compared (:func:`normalise`); a command
that names a backup shown earlier in the document gets this run's name for it.

Every other block of shell commands (``sh``, ``bash``, and ``console`` blocks of benchmark runs or
operator commands: kubectl, $EDITOR, sudo) cannot run here and is checked for valid syntax only.

``python -m tests.support.doc_sessions`` replays every session and writes what it printed into the
documents (the real values, not the normalised ones).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
_BACKUP_NAME = re.compile(r"pokemon-data-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.sqlite3\.db\.(?:gz|zst)")
_SIMPLE_COMMANDS = re.compile(r"\|\||&&|[|;&()]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")

#: (pattern, placeholder): what differs between two runs of the same session.
_VOLATILE = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z"), "<backup time>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00| UTC)?"), "<time>"),
    (re.compile(r"\b\d+\.\d\ds\b"), "<seconds>"),
    (re.compile(r"\b\d{1,3}(,\d{3})* bytes \(\d+% of \d{1,3}(,\d{3})*\)"), "<size>"),
    (re.compile(r"\b\d+\.\d KiB\b"), "<size>"),
    # Retention periods move with the day the session is replayed on.
    (re.compile(r"\b(daily|weekly|monthly|yearly) \d{4}(-W\d\d|-\d\d(-\d\d)?)?\b"),
     r"\1 <period>"),
]


@dataclass
class Block:
    """One fenced block: its document, language, text and where the text starts and ends."""

    document: Path
    language: str
    text: str
    start: int
    end: int

    @property
    def commands(self) -> list[str]:
        return [command for command, _ in self.steps]

    @property
    def steps(self) -> list[tuple[str, str]]:
        """Each ``$`` command and the output shown after it."""
        steps: list[tuple[str, str]] = []
        for line in self.text.splitlines(keepends=True):
            if line.startswith("$ "):
                steps.append((line[2:].rstrip("\n"), ""))
            elif steps:
                steps[-1] = (steps[-1][0], steps[-1][1] + line)
        return steps

    @property
    def is_session(self) -> bool:
        """A console block that runs tcgjobs (a benchmark's block runs Python): a session to replay."""
        return self.language == "console" and any(runs_tcgjobs(c) for c in self.commands)


def runs_tcgjobs(command: str) -> bool:
    """Whether one of ``command``'s simple commands is ``tcgjobs`` (after any VAR=value words)."""
    for part in _SIMPLE_COMMANDS.split(command):
        words = [w for w in part.split() if not _ASSIGNMENT.match(w)]
        if words and words[0] == "tcgjobs":
            return True
    return False


def blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    return [Block(document, m.group(1), m.group(2), m.start(2), m.end(2)) for m in _FENCE.finditer(text)]


def shell_text(block: Block) -> str:
    """The shell commands of a block, for a syntax check: the ``$`` lines of a console block (with
    their ``\\`` continuations), or the whole of an ``sh``/``bash`` block."""
    if block.language != "console":
        return block.text
    lines, taking = [], False
    for line in block.text.splitlines():
        if line.startswith("$ "):
            lines.append(line[2:])
            taking = line.rstrip().endswith("\\")
        elif taking:
            lines.append(line)
            taking = line.rstrip().endswith("\\")
    return "\n".join(lines) + "\n"


def normalise(text: str) -> str:
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _environment(directory: Path) -> dict[str, str]:
    """The operator's shell: tcgjobs on PATH, no tcgjobs setting, the sample data."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("TCGJOBS_", "POSTGRES_", "SLACK_", "NOTIFICATION", "DATABASE_", "BACKUP_",
                                 "CRON_", "COLUMNS"))}
    keep["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{keep.get('PATH', '')}"
    keep["HOME"] = str(directory)
    return keep


def replay(document: Path) -> list[tuple[Block, str]]:
    """Every session of ``document``, run in order in one fresh directory: (block, its new text)."""
    directory = Path(tempfile.mkdtemp(prefix="tcgjobs-doc-session-"))
    env = _environment(directory)
    try:
        replayed = []
        names: dict[str, str] = {}  # a backup named in the document -> the same backup in this run
        for block in blocks(document):
            if not block.is_session:
                continue
            out = []
            for command, shown in block.steps:
                for old, new in names.items():
                    command = command.replace(old, new)
                result = subprocess.run(["bash", "-c", command], cwd=directory, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
                names.update(zip(_BACKUP_NAME.findall(shown), _BACKUP_NAME.findall(result.stdout), strict=False))
                out.append(f"$ {command}\n{result.stdout}")
            replayed.append((block, "".join(out)))
        return replayed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def rewrite(document: Path) -> None:
    """Write each session's real output into ``document``."""
    text = document.read_text(encoding="utf-8")
    for block, new in reversed(replay(document)):
        text = text[:block.start] + new + text[block.end:]
    document.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    for path in DOCUMENTS:
        if any(block.is_session for block in blocks(path)):
            rewrite(path)
            sys.stdout.write(f"replayed the sessions of {path.relative_to(ROOT)}\n")
