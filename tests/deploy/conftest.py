"""Helpers for the deploy tests: the repository's committed files and external tools."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT
from tests.offsite.conftest import bucket, moto_server, s3  # noqa: F401 (fixtures: moto's S3 for upload-backups)

DEPLOY_DIR = ROOT / "deploy"
#: The oldest Kubernetes the manifests support (podFailurePolicy is GA since 1.31) and the newest
#: schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")


def require_tool(name: str) -> str:
    """The path of the command-line tool ``name``: skips locally when absent, fails in CI."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = f"{name} is not installed"
        if IN_CI:
            pytest.fail(f"CI needs {name}: {message}")
        pytest.skip(message)
    return found
