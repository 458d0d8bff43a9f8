"""Names for temporary files, so leftovers of an interrupted run can be recognised and removed.

Every large temporary file tcgjobs writes (a backup being compressed, a decompressed copy being
verified, a restore being staged) is created by :func:`temp_path`: its name starts with
:data:`TEMP_PREFIX`, so it never matches the backup name pattern and cleanup-stale-data can find
it later if the process died before removing it.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

TEMP_PREFIX = ".tcgjobs-tmp-"


def temp_path(directory: Path, purpose: str, suffix: str = "") -> Path:
    """A fresh, unused temporary file name in ``directory`` (the file is not created)."""
    return directory / f"{TEMP_PREFIX}{purpose}-{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"


@dataclass(frozen=True)
class Leftover:
    path: Path
    size: int
    age_s: float


def find_leftovers(directories: list[Path], older_than_s: float, now: float | None = None) -> list[Leftover]:
    """Temporary files in ``directories`` (not recursive) last modified over ``older_than_s`` ago."""
    now = time.time() if now is None else now
    found = []
    for directory in dict.fromkeys(directories):
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
            age = now - stat.st_mtime
            if age > older_than_s:
                found.append(Leftover(Path(entry.path), stat.st_size, age))
    return sorted(found, key=lambda leftover: leftover.path)
