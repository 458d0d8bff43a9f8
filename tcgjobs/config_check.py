"""``tcgjobs config --check``: is this machine set up for the configuration? Every configured
directory is writable, the card database opens, the data source is readable, no ``TCGJOBS_*``
variable is unknown, and every configured service (PostgreSQL, Slack, the Pushgateway,
the ping URL, the off-site store) answers and accepts us.

Each check ends in an exit code by the rule ``run`` follows (:class:`tcgjobs.errors.
ServiceUnavailable`): 69 for a service that cannot be reached, 78 for everything the settings
must fix; problems are worded as ``run`` words them (the same functions raise them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tcgjobs.config import Settings
from tcgjobs.errors import ExitCode, TcgjobsError
from tcgjobs.logging import redact


@dataclass(frozen=True)
class SetupCheck:
    """One thing ``config --check`` tried: a directory, a database, a service."""

    name: str
    exit_code: ExitCode
    detail: str

    @property
    def ok(self) -> bool:
        return self.exit_code is ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "exit_code": int(self.exit_code), "detail": self.detail}


def overall_exit_code(results: list[SetupCheck]) -> ExitCode:
    """78 when the settings must change anywhere, else 69 when a service is unreachable, else 0."""
    codes = {r.exit_code for r in results}
    for code in (ExitCode.CONFIG, ExitCode.UNAVAILABLE):
        if code in codes:
            return code
    return ExitCode.OK


def _failed(name: str, exc: TcgjobsError) -> SetupCheck:
    return SetupCheck(name, exc.exit_code, redact(str(exc).removeprefix("configuration error: ")))


def _writable_dir(name: str, directory: Path) -> SetupCheck:
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return SetupCheck(name, ExitCode.CONFIG, f"{directory}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        return SetupCheck(name, ExitCode.CONFIG, f"{directory}: {probe} is not writable")
    state = "exists" if directory.exists() else f"will be created under {probe}"
    return SetupCheck(name, ExitCode.OK, f"{directory} ({state}, writable)")


def _card_database(settings: Settings) -> SetupCheck:
    path = settings.database_path
    if not path.exists():
        return SetupCheck("card database", ExitCode.OK,
                          f"{path} does not exist yet (sync-missing-sets creates it)")
    from tcgjobs.db.cards import open_card_database

    try:
        db = open_card_database(path, readonly=True, busy_timeout_ms=settings.busy_timeout_ms)
    except Exception as exc:  # noqa: BLE001 - any failure to open it is the check's answer
        return SetupCheck("card database", ExitCode.CONFIG, redact(str(exc)))
    db.close()
    return SetupCheck("card database", ExitCode.OK, f"{path} opens")


def _data_source(settings: Settings) -> SetupCheck:
    from tcgjobs.sources.layouts import detect

    try:
        source = detect(settings.data_source, settings.data_language)
    except TcgjobsError as exc:
        return _failed("data source", exc)
    return SetupCheck("data source", ExitCode.OK, f"{source.root} ({source.layout.value} layout)")


def _postgres(settings: Settings) -> SetupCheck:
    if not settings.postgres_configured:
        return SetupCheck("postgresql", ExitCode.OK, "not configured (replicate-to-primary will refuse to run)")
    from tcgjobs.services import postgres

    try:
        connection = postgres.connect(settings)
    except TcgjobsError as exc:
        return _failed("postgresql", exc)
    connection.close()
    return SetupCheck("postgresql", ExitCode.OK, f"{postgres.describe_target(settings)} answers")


def _services(settings: Settings) -> list[SetupCheck]:
    """Slack, the Pushgateway and the ping URL, where configured."""
    from tcgjobs.services import probes

    found = []
    if settings.slack_webhook_url:
        found.append(("slack", probes.slack_webhook(settings.slack_webhook_url, settings.slack_timeout)))
    if settings.pushgateway_url:
        found.append(("pushgateway", probes.pushgateway(settings.pushgateway_url, settings.slack_timeout)))
    if settings.ping_url:
        found.append(("ping url", probes.ping_host(settings.ping_url, settings.ping_timeout)))
    return [SetupCheck(name, probe.exit_code, redact(probe.detail)) for name, probe in found]


def _offsite(settings: Settings) -> SetupCheck:
    """One listing request to the off-site store (boto3 is loaded only when it is configured)."""
    if settings.offsite_url is None:
        return SetupCheck("off-site store", ExitCode.OK, "not configured (upload-backups is off)")
    from tcgjobs.offsite.store import Store

    try:
        store = Store.open(settings)
        store.call("list_objects_v2", Prefix=store.location.prefix, MaxKeys=1)
    except TcgjobsError as exc:
        return _failed("off-site store", exc)
    return SetupCheck("off-site store", ExitCode.OK, f"{settings.offsite_url} answers a listing")


def check_setup(settings: Settings) -> list[SetupCheck]:
    """Every check, in the order ``config --check`` shows them."""
    results = [SetupCheck("environment", ExitCode.CONFIG, message) for message in settings.unknown]
    results += [
        _writable_dir("database directory", settings.database_path.parent),
        _card_database(settings),
        _writable_dir("state directory", settings.state_path.parent),
        _writable_dir("backup directory", settings.backup_dir),
        _writable_dir("temporary directory", settings.temp_dir),
    ]
    if settings.data_source is not None:
        results.append(_data_source(settings))
    if settings.metrics_dir is not None:
        results.append(_writable_dir("metrics directory", settings.metrics_dir))
    results.append(_postgres(settings))
    results.append(_offsite(settings))
    return results + _services(settings)
