"""``tcgjobs config --check``: is this machine set up for the configuration? Every configured
directory is writable, the card database opens, the data source exists, PostgreSQL and the
off-site store answer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tcgjobs.config import Settings
from tcgjobs.logging import redact


@dataclass(frozen=True)
class SetupCheck:
    """One thing ``config --check`` tried: a directory, a database, a service."""

    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _writable_dir(name: str, directory: Path) -> SetupCheck:
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return SetupCheck(name, False, f"{directory}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        return SetupCheck(name, False, f"{directory}: {probe} is not writable")
    state = "exists" if directory.exists() else f"will be created under {probe}"
    return SetupCheck(name, True, f"{directory} ({state}, writable)")


def _card_database(settings: Settings) -> SetupCheck:
    path = settings.database_path
    if not path.exists():
        return SetupCheck("card database", True, f"{path} does not exist yet (sync-missing-sets creates it)")
    from tcgjobs.db.cards import open_card_database

    try:
        db = open_card_database(path, readonly=True, busy_timeout_ms=settings.busy_timeout_ms)
    except Exception as exc:  # noqa: BLE001 - any failure to open it is the check's answer
        return SetupCheck("card database", False, redact(str(exc)))
    db.close()
    return SetupCheck("card database", True, f"{path} opens")


def _postgres(settings: Settings) -> SetupCheck:
    if not settings.postgres_configured:
        return SetupCheck("postgresql", True, "not configured (replicate-to-primary will refuse to run)")
    import psycopg2

    from tcgjobs.services.postgres import connect_params, describe_target

    try:
        connection = psycopg2.connect(**connect_params(settings))
    except psycopg2.Error as exc:
        return SetupCheck("postgresql", False, f"{describe_target(settings)}: {redact(str(exc).strip())}")
    connection.close()
    return SetupCheck("postgresql", True, f"{describe_target(settings)} answers")


def _offsite(settings: Settings) -> SetupCheck:
    """One listing request to the off-site store (boto3 is loaded only when it is configured)."""
    if settings.offsite_url is None:
        return SetupCheck("off-site store", True, "not configured (upload-backups is off)")
    from tcgjobs.errors import TcgjobsError
    from tcgjobs.offsite.store import Store

    try:
        store = Store.open(settings)
        store.call("list_objects_v2", Prefix=store.location.prefix, MaxKeys=1)
    except TcgjobsError as exc:
        return SetupCheck("off-site store", False, redact(str(exc)))
    return SetupCheck("off-site store", True, f"{settings.offsite_url} answers a listing")


def check_setup(settings: Settings) -> list[SetupCheck]:
    """Every check, in the order ``config --check`` shows them."""
    results = [
        _writable_dir("database directory", settings.database_path.parent),
        _card_database(settings),
        _writable_dir("state directory", settings.state_path.parent),
        _writable_dir("backup directory", settings.backup_dir),
        _writable_dir("temporary directory", settings.temp_dir),
    ]
    if settings.data_source is not None:
        ok = settings.data_source.is_dir()
        results.append(SetupCheck("data source", ok, f"{settings.data_source} "
                                   f"{'exists' if ok else 'is not a directory'}"))
    if settings.metrics_dir is not None:
        results.append(_writable_dir("metrics directory", settings.metrics_dir))
    results.append(_postgres(settings))
    results.append(_offsite(settings))
    return results
