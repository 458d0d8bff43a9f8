"""Fixtures of the off-site tests: moto's S3 server (one per session), a fresh bucket per test
with the settings pointing at it, a client to look into the bucket, the fault proxy, and
verified local backups."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, make_settings
from tests.support.s3 import FaultProxy, MotoServer, ServerUnavailable

#: Test credentials for moto (which accepts any); grepped for in every output channel.
ACCESS_KEY = "AKIATCGJOBSTESTKEY01"
SECRET_KEY = "tcgjobs-test-secret/Zq8+9xWv3YbL2pN7kM4r"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's standalone S3 server; skips (fails in CI) when it cannot start."""
    server = MotoServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI needs moto's S3 server and it could not start: {exc}")
        pytest.skip(f"moto's S3 server could not start: {exc}")
    yield server
    server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def s3(moto_server: MotoServer) -> Any:
    """A boto3 client straight to moto, for looking at (and damaging) the bucket."""
    return s3_client(moto_server.url)


@pytest.fixture
def bucket(s3: Any, moto_server: MotoServer, env: dict[str, str]) -> str:
    """A fresh bucket; the off-site settings point at ``s3://<bucket>/backups/``."""
    name = f"tcgjobs-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    for key, value in {
        "TCGJOBS_OFFSITE_URL": f"s3://{name}/backups",
        "TCGJOBS_OFFSITE_ENDPOINT_URL": moto_server.url,
        "TCGJOBS_OFFSITE_REGION": "us-east-1",
        "TCGJOBS_OFFSITE_ADDRESSING_STYLE": "path",
        "TCGJOBS_OFFSITE_CONNECT_TIMEOUT": "2",
        "TCGJOBS_OFFSITE_READ_TIMEOUT": "3",
        "TCGJOBS_OFFSITE_MAX_ATTEMPTS": "2",
        "TCGJOBS_OFFSITE_PART_SIZE_MB": "5",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }.items():
        env[key] = value
    return name


@pytest.fixture
def proxy(moto_server: MotoServer, bucket: str, env: dict[str, str]) -> Iterator[FaultProxy]:
    """The fault proxy in front of moto; the off-site endpoint goes through it."""
    fault = FaultProxy(("127.0.0.1", moto_server.port))
    env["TCGJOBS_OFFSITE_ENDPOINT_URL"] = fault.url
    yield fault
    fault.close()


@pytest.fixture
def backups(env: dict[str, str]) -> list[Path]:
    """Three verified local backups, a day apart (newest first), of a small card database."""
    from tests.support.backups import fill_card_db, make_backup

    settings = make_settings()
    fill_card_db(settings.database_path)
    now = datetime.now(UTC).replace(microsecond=0)
    return [make_backup(settings, now - timedelta(days=days)) for days in range(3)]


def objects(s3: Any, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object in ``bucket``: key -> {Size, ETag}."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = {"Size": item["Size"], "ETag": item["ETag"].strip('"')}
    return found
