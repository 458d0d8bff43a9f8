"""Environment for the tcgjobs processes a benchmark starts: as a deployed install runs them.

An installed tcgjobs has its bytecode compiled (pip compiles it at install time; the Docker image
holds it). Started from this checkout with ``PYTHONDONTWRITEBYTECODE=1`` in the environment (some
shells and CI images set it), every process would compile tcgjobs' modules from source again,
about 0.1-0.2 s per process on a 2-core machine, which is not what a cron run pays.
"""

from __future__ import annotations

import compileall
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def deployed_env(environ: Mapping[str, str], trees: Iterable[Path] = (ROOT,)) -> dict[str, str]:
    """``environ`` without PYTHONDONTWRITEBYTECODE, after compiling the bytecode of the tcgjobs
    package in each of ``trees`` (source trees: this checkout by default)."""
    for tree in trees:
        compileall.compile_dir(tree / "tcgjobs", quiet=1)
    return {key: value for key, value in environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
