"""Prometheus metrics after every run: a node_exporter textfile and/or a Pushgateway push.

Names follow the Prometheus conventions for batch jobs (a separate ``CollectorRegistry``, so
nothing of the process leaks in):

* ``tcgjobs_job_last_success_timestamp_seconds{job}`` — start of the newest successful run
* ``tcgjobs_job_last_run_timestamp_seconds{job}`` — end (or start) of the newest run, any outcome
* ``tcgjobs_job_duration_seconds{job}``, ``tcgjobs_job_last_exit_code{job}``,
  ``tcgjobs_job_consecutive_failures{job}``
* ``tcgjobs_job_abandoned_runs{job}`` — runs whose process vanished (kill -9, OOM, node loss)
  within TCGJOBS_HEALTH_ABANDONED_WINDOW_HOURS, the abandoned-runs check's window
* ``tcgjobs_job_records_processed{job,kind}`` — the newest run's counts, by name: integer metrics
  only, and none that carries a unit (``*_bytes``, ``*_seconds``, ``*_ratio``, ``bytes_freed`` ...),
  so the family holds one unit; sizes and durations are in the backup and job gauges
* ``tcgjobs_health_check_level{check}`` — 0 ok, 1 warning, 2 critical;
  ``tcgjobs_health_last_check_timestamp_seconds``
* ``tcgjobs_backup_newest_verified_timestamp_seconds``, ``tcgjobs_backup_files``,
  ``tcgjobs_backup_size_bytes`` (total)
* ``tcgjobs_offsite_newest_verified_timestamp_seconds``, ``tcgjobs_offsite_objects``,
  ``tcgjobs_offsite_size_bytes``: the off-site copies as upload-backups last saw them (ledger)

The textfile (``tcgjobs.prom``) is rewritten whole from the ledger after every run, atomically
(``write_to_textfile`` writes a temporary file and renames it). The push uses ``pushadd`` with the
group ``job=<job>`` and includes the last-success gauge only for a successful run, so a failed run
never erases the last success on the gateway; the pushed samples carry no ``job`` label of their
own (the group's ``job`` label is added by the gateway). A ``user:password@`` in the gateway URL
is sent as HTTP basic auth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler

from tcgjobs.cancel import CancelScope, call_unless_cancelled
from tcgjobs.db.state import RunRecord, RunStatus, StateView, StoredCheck
from tcgjobs.jobstatus import abandoned_runs

TEXTFILE_NAME = "tcgjobs.prom"
LEVEL_VALUE = {"ok": 0, "warning": 1, "critical": 2}
HEALTH_LEVEL = "tcgjobs_health_check_level"
HEALTH_LAST_CHECK = "tcgjobs_health_last_check_timestamp_seconds"
BACKUP_NEWEST_VERIFIED = "tcgjobs_backup_newest_verified_timestamp_seconds"
BACKUP_FILES = "tcgjobs_backup_files"
BACKUP_SIZE = "tcgjobs_backup_size_bytes"


#: Every job gauge: key → (name, help). The alert rules and the dashboard read the names here.
JOB_GAUGES = {
    "last_success": ("tcgjobs_job_last_success_timestamp_seconds", "Start time of the newest successful run."),
    "last_run": ("tcgjobs_job_last_run_timestamp_seconds",
                 "End time (start while running) of the newest run, any outcome."),
    "duration": ("tcgjobs_job_duration_seconds", "Duration of the newest run."),
    "exit_code": ("tcgjobs_job_last_exit_code", "Exit code of the newest finished run."),
    "failures": ("tcgjobs_job_consecutive_failures", "Failures since the last success."),
    "abandoned": ("tcgjobs_job_abandoned_runs",
                  "Runs whose process vanished within the abandoned-runs check's window."),
    "records": ("tcgjobs_job_records_processed",
                "The newest run's counts (records inserted, sets skipped, ...) by kind."),
}
_UNIT_WORDS = frozenset({"bytes", "seconds", "ratio", "percent", "ms", "s"})


def is_count(kind: str, value: Any) -> bool:
    """Whether a run metric is a count of things (exported under records_processed): an integer
    whose name carries no unit word (``source_bytes``, ``bytes_freed``, ``write_seconds``, ...)."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and not _UNIT_WORDS.intersection(kind.lower().split("_")))


class _Gauges:
    """The per-job gauges, each created on first use (an unlabelled gauge that exists is exported,
    as 0 if never set, which in a push would overwrite the last success).

    ``job_label=False`` for a push: the grouping key supplies ``job`` (the Pushgateway and the
    official clients refuse pushed metrics that carry a grouping label).
    """

    def __init__(self, registry: CollectorRegistry, job_label: bool = True) -> None:
        self.registry = registry
        self.job_label = job_label
        self._made: dict[str, Gauge] = {}

    def _set(self, key: str, job: str, value: float, *extra: str) -> None:
        if key not in self._made:
            name, doc = JOB_GAUGES[key]
            names = (["job"] if self.job_label else []) + (["kind"] if key == "records" else [])
            self._made[key] = Gauge(name, doc, names, registry=self.registry)
        labels = ((job,) if self.job_label else ()) + extra
        gauge = self._made[key]
        (gauge.labels(*labels) if labels else gauge).set(value)

    def run(self, run: RunRecord, success: RunRecord | None, failures: int | None,
            abandoned: int | None = None) -> None:
        job = run.job
        self._set("last_run", job, (run.finished_at or run.started_at).timestamp())
        if success is not None:
            self._set("last_success", job, success.started_at.timestamp())
        if run.duration_s is not None:
            self._set("duration", job, run.duration_s)
        if run.exit_code is not None:
            self._set("exit_code", job, run.exit_code)
        if failures is not None:
            self._set("failures", job, failures)
        if abandoned is not None:
            self._set("abandoned", job, abandoned)
        for kind, value in run.metrics.items():
            if is_count(kind, value):
                self._set("records", job, value, kind)


def _health(registry: CollectorRegistry, checks: dict[str, StoredCheck]) -> None:
    if not checks:
        return
    level = Gauge(HEALTH_LEVEL, "Level of each health check: 0 ok, 1 warning, 2 critical.",
                  ["check"], registry=registry)
    for name, check in checks.items():
        level.labels(name).set(LEVEL_VALUE[check.level.value])
    Gauge(HEALTH_LAST_CHECK, "When the health checks last ran.",
          registry=registry).set(max(c.checked_at for c in checks.values()).timestamp())


def _backups(registry: CollectorRegistry, backups: list[Any] | None) -> None:
    if backups is None:
        return
    verified = [b for b in backups if b.status == "verified"]
    newest = Gauge(BACKUP_NEWEST_VERIFIED,
                   "Creation time of the newest verified backup (0: none).", registry=registry)
    newest.set(max(b.created_at for b in verified).timestamp() if verified else 0)
    Gauge(BACKUP_FILES, "Backup files in BACKUP_DIR.", registry=registry).set(len(backups))
    Gauge(BACKUP_SIZE, "Total size of the backup files.",
          registry=registry).set(sum(b.size_bytes for b in backups))


def _offsite(registry: CollectorRegistry, status: Any) -> None:
    """The off-site gauges from an :class:`tcgjobs.offsite.status.OffsiteStatus` (or nothing)."""
    if status is None:
        return
    Gauge("tcgjobs_offsite_newest_verified_timestamp_seconds",
          "Creation time of the newest verified off-site copy (0: none).", registry=registry).set(
        status.newest_verified_at.timestamp() if status.newest_verified_at else 0)
    Gauge("tcgjobs_offsite_objects", "Backup copies off-site (sidecars and proofs not counted).",
          registry=registry).set(status.copies)
    Gauge("tcgjobs_offsite_size_bytes", "Total size of the backup copies off-site.",
          registry=registry).set(status.size_bytes)


def last_real_run(view: StateView, job: str) -> RunRecord | None:
    """The newest run that was not a dry run."""
    for run in view.runs(job, limit=20):
        if not run.dry_run and run.status is not RunStatus.DRY_RUN:
            return run
    return None


def full_registry(view: StateView, jobs: Iterable[str], now: datetime,
                  checks: dict[str, StoredCheck], backups: list[Any] | None,
                  abandoned_window: timedelta) -> CollectorRegistry:
    """Every metric, from the ledger, the recorded health checks and the backup listing."""
    registry = CollectorRegistry()
    gauges = _Gauges(registry)
    for job in jobs:
        run = last_real_run(view, job)
        if run is not None:
            gauges.run(run, view.last_success(job), view.consecutive_failures(job, now),
                       len(abandoned_runs(view, now, abandoned_window, job)))
    _health(registry, checks)
    _backups(registry, backups)
    from tcgjobs.offsite.status import offsite_status

    _offsite(registry, offsite_status(view))
    return registry


def write_textfile(directory: Path, registry: CollectorRegistry) -> Path:
    """Write ``tcgjobs.prom`` atomically (temporary file + rename in the same directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TEXTFILE_NAME
    write_to_textfile(str(path), registry)
    return path


def push_run(url: str, run: RunRecord, succeeded: bool, failures: int,
             checks: dict[str, StoredCheck], backups: list[Any] | None, timeout: float = 10.0,
             abandoned: int | None = None, cancel: CancelScope | None = None) -> None:
    """``pushadd`` this run's metrics to the group ``job=<job>``. Raises on HTTP errors, and
    Cancelled as soon as ``cancel`` fires: the push (a blocking socket in prometheus_client)
    then runs on in a worker thread, within its timeout, that nobody waits for."""
    registry = CollectorRegistry()
    _Gauges(registry, job_label=False).run(run, run if succeeded else None, failures, abandoned)
    _health(registry, checks)
    _backups(registry, backups)
    from tcgjobs.offsite.status import status_of

    _offsite(registry, status_of(run))
    gateway, handler = gateway_and_handler(url)
    if cancel is None:
        pushadd_to_gateway(gateway, job=run.job, registry=registry, timeout=timeout, handler=handler)
        return
    limit = max(0.05, cancel.bound(timeout))
    call_unless_cancelled(cancel, lambda: pushadd_to_gateway(
        gateway, job=run.job, registry=registry, timeout=limit, handler=handler), name="pushgateway")


def gateway_and_handler(url: str) -> tuple[str, Callable[..., Callable[[], None]]]:
    """``url`` without its ``user:password@`` part, and a prometheus_client handler that sends
    that part as HTTP basic auth (prometheus_client cannot resolve a host with userinfo)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, default_handler
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    gateway = urlunsplit(parts._replace(netloc=netloc))

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                data: bytes) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)

    return gateway, handler
