"""Settings: one declared table, read once at the edge and passed down in the job context.

Every setting has a name, the environment variables it is read from (the first is the one to
use; the original's names are kept), a default, a help line, a parser and a secret flag. Secrets
also accept ``<VAR>_FILE`` (Kubernetes/Docker secrets). The defaults, the validation, ``tcgjobs
config`` and the README's settings table all come from :data:`SETTINGS` plus the per-job settings
generated from the registry by :func:`job_settings`.

:func:`load_settings` validates everything and raises one :class:`ConfigError` listing every
problem it found.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tcgjobs import parsers
from tcgjobs.errors import ConfigError
from tcgjobs.registry import RESTORE, Job, all_jobs
from tcgjobs.times import in_zone, read_optional_time

DEFAULT_DATABASE_PATH = "./database/pokemon-data.sqlite3.db"
STATE_FILE_NAME = "tcgjobs-state.sqlite3"
DEFAULT_MAX_FILE_SIZE = parsers.ByteSize(64 << 20)
DEFAULT_MAX_FIELD_SIZE = parsers.ByteSize(1 << 20)


@dataclass(frozen=True)
class Setting:
    """One setting. ``default`` is a value, or a function of the values read so far."""

    name: str
    env: tuple[str, ...]
    default: Any
    help: str
    parser: Callable[[str], Any] = parsers.parse_str
    secret: bool = False
    deprecated_env: tuple[str, ...] = ()

    @property
    def variable(self) -> str:
        return self.env[0]


def _state_default(values: Mapping[str, Any]) -> Path:
    return Path(values["database_path"]).parent / STATE_FILE_NAME


SETTINGS: tuple[Setting, ...] = (
    # --- paths -------------------------------------------------------------------------------
    Setting("database_path", ("DATABASE_PATH",), Path(DEFAULT_DATABASE_PATH),
            "The card database (SQLite) the platform's APIs read.", parsers.parse_path),
    Setting("backup_dir", ("BACKUP_DIR",), Path("./database/backups"),
            "Directory holding the compressed backups.", parsers.parse_path),
    Setting("state_path", ("TCGJOBS_STATE_PATH",), _state_default,
            "State database: run ledger, health and alert state. Default: "
            f"{STATE_FILE_NAME} beside the card database.", parsers.parse_path),
    Setting("tmpdir", ("TCGJOBS_TMPDIR",), None,
            "Directory for large temporary files (verification, VACUUM). Default: the system's.",
            parsers.parse_optional_path),
    # --- card data ---------------------------------------------------------------------------
    Setting("data_source", ("TCGJOBS_DATA_SOURCE",), None,
            "Card data directory (pokemon-tcg-data layout or the platform's data package). "
            "Default: the small sample bundled with tcgjobs.", parsers.parse_optional_path),
    Setting("data_language", ("TCGJOBS_DATA_LANGUAGE",), "en",
            "Language of the pokemon-tcg-data layout to read (sets/<lang>.json).", parsers.parse_str),
    # The largest real card file (2023 snapshot) is 434 KB and its largest field 895 bytes: the
    # limits leave two orders of magnitude, while a file at the limit still parses within the
    # pods' memory (about 3x its size as Python objects, one file at a time).
    Setting("source_max_file_size", ("TCGJOBS_SOURCE_MAX_FILE_SIZE",), DEFAULT_MAX_FILE_SIZE,
            "Largest card or sets file the sync jobs and validate-data-integrity read (bytes, or "
            "with KiB, MiB, GiB); a larger file is refused and nothing is read from it.",
            parsers.size_between(1024)),
    Setting("source_max_field_size", ("TCGJOBS_SOURCE_MAX_FIELD_SIZE",), DEFAULT_MAX_FIELD_SIZE,
            "Largest field of one source record (its compact JSON; a string: its UTF-8 bytes); a "
            "record with a larger field is rejected and nothing is written from it.",
            parsers.size_between(64)),
    Setting("source_min_coverage_percent", ("TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT",), 90.0,
            "A set whose card file holds fewer cards than this share of its total is a warning in "
            "sync-missing-cards and validate-data-integrity (0: never).",
            parsers.float_between(0, 100)),
    Setting("strict_values", ("TCGJOBS_STRICT_VALUES",), False,
            "Values the primary's columns cannot hold as they are (a date that is not a date, text "
            "with NUL, ...) fail validate-data-integrity (exit 3) and replicate-to-primary (exit 1) "
            "instead of being warnings; replication still writes what the columns can hold.",
            parsers.parse_bool),
    # --- scheduling, runner ------------------------------------------------------------------
    Setting("timezone", ("TCGJOBS_TIMEZONE",), parsers.parse_timezone("UTC"),
            "IANA time zone of every schedule.", parsers.parse_timezone,
            deprecated_env=("CRON_TIMEZONE",)),
    Setting("late_grace_seconds", ("TCGJOBS_LATE_GRACE_SECONDS",), 600,
            "A job is late when it has not succeeded by its scheduled time plus its timeout plus "
            "this grace.", parsers.int_between(0)),
    Setting("heartbeat_seconds", ("TCGJOBS_HEARTBEAT_SECONDS",), 10.0,
            "How often a running job refreshes its ledger heartbeat; a heartbeat older than six "
            "intervals marks the run abandoned.", parsers.float_between(0.5, 3600)),
    Setting("restore_timeout", ("TCGJOBS_RESTORE_TIMEOUT",), RESTORE.timeout,
            "Deadline of one `tcgjobs backup restore`, in seconds (its --timeout overrides it).",
            parsers.float_between(1)),
    Setting("busy_timeout_ms", ("TCGJOBS_BUSY_TIMEOUT_MS",), 5000,
            "How long an SQLite statement waits for a lock held by another process.",
            parsers.int_between(0, 600_000)),
    # --- logging -----------------------------------------------------------------------------
    Setting("log_level", ("TCGJOBS_LOG_LEVEL",), "info", "debug, info, warning or error.",
            parsers.choice("debug", "info", "warning", "error", aliases={"warn": "warning"}),
            deprecated_env=("CRON_LOG_LEVEL",)),
    Setting("log_format", ("TCGJOBS_LOG_FORMAT",), "auto",
            "auto (human on a terminal, JSON lines otherwise), human or json.",
            parsers.choice("auto", "human", "json")),
    # --- PostgreSQL primary ------------------------------------------------------------------
    Setting("postgres_url", ("TCGJOBS_POSTGRES_URL",), None,
            "PostgreSQL primary as a URL; wins over the POSTGRES_* variables.",
            parsers.parse_postgres_url, secret=True),
    Setting("postgres_host", ("POSTGRES_HOST",), None,
            "PostgreSQL host (the primary counts as configured when this or the URL is set).",
            parsers.parse_str),
    Setting("postgres_port", ("POSTGRES_PORT",), 5432, "PostgreSQL port.",
            parsers.int_between(1, 65535)),
    Setting("postgres_user", ("POSTGRES_USER",), None, "PostgreSQL user.", parsers.parse_str),
    Setting("postgres_password", ("POSTGRES_PASSWORD",), None, "PostgreSQL password.",
            parsers.parse_str, secret=True),
    Setting("postgres_db", ("POSTGRES_DB",), None, "PostgreSQL database name.", parsers.parse_str),
    Setting("postgres_sslmode", ("POSTGRES_SSLMODE",), None,
            "libpq sslmode (disable, require, verify-full, ...), passed through.",
            parsers.choice("disable", "allow", "prefer", "require", "verify-ca", "verify-full")),
    Setting("postgres_connect_timeout", ("TCGJOBS_POSTGRES_CONNECT_TIMEOUT",), 10,
            "Seconds to wait for a PostgreSQL connection.", parsers.int_between(1, 600)),
    Setting("postgres_statement_timeout", ("TCGJOBS_POSTGRES_STATEMENT_TIMEOUT",), 600,
            "Seconds any one PostgreSQL statement may run (0: no limit).",
            parsers.int_between(0, 2_147_483)),  # PostgreSQL's limit: 2^31 - 1 milliseconds
    # --- notifications -----------------------------------------------------------------------
    Setting("notifications_enabled", ("NOTIFICATIONS_ENABLED",), False,
            "Master switch for Slack alerts.", parsers.parse_bool),
    Setting("slack_webhook_url", ("SLACK_WEBHOOK_URL",), None, "Slack incoming-webhook URL.",
            parsers.parse_url, secret=True, deprecated_env=("NOTIFICATION_WEBHOOK_URL",)),
    Setting("notification_min_severity", ("NOTIFICATION_MIN_SEVERITY",), "warning",
            "Lowest severity sent to Slack: info, warning (or warn), error, critical.",
            parsers.choice("info", "warning", "error", "critical", aliases={"warn": "warning"})),
    Setting("slack_timeout", ("TCGJOBS_SLACK_TIMEOUT",), 10.0,
            "Seconds one Slack request may take.", parsers.float_between(0.1, 120)),
    Setting("slack_max_attempts", ("TCGJOBS_SLACK_MAX_ATTEMPTS",), 3,
            "Attempts per Slack message (timeouts, 5xx and 429 are retried).",
            parsers.int_between(1, 10)),
    Setting("slack_max_retry_after", ("TCGJOBS_SLACK_MAX_RETRY_AFTER",), 30.0,
            "Longest Retry-After (seconds) honoured on HTTP 429; longer waits give up.",
            parsers.float_between(0, 600)),
    # --- metrics and dead-man pings ----------------------------------------------------------
    Setting("metrics_dir", ("TCGJOBS_METRICS_DIR",), None,
            "node_exporter textfile-collector directory; metrics are written there after every run.",
            parsers.parse_optional_path),
    Setting("pushgateway_url", ("TCGJOBS_PUSHGATEWAY_URL",), None,
            "Prometheus Pushgateway URL (pushadd after every run).", parsers.parse_url, secret=True),
    Setting("ping_url", ("TCGJOBS_PING_URL",), None,
            "Dead-man ping URL in the healthchecks.io convention; {job} is replaced by the job name.",
            parsers.parse_url, secret=True),
    # --- health checks and alerting ----------------------------------------------------------
    Setting("health_db_size_warning_mb", ("TCGJOBS_HEALTH_DB_SIZE_WARNING_MB",), 1000.0,
            "Card database size (MiB) at which the database-size check warns.",
            parsers.float_between(0)),
    Setting("health_db_size_critical_mb", ("TCGJOBS_HEALTH_DB_SIZE_CRITICAL_MB",), 4000.0,
            "Card database size (MiB) at which the database-size check is critical.",
            parsers.float_between(0)),
    Setting("health_wal_warning_mb", ("TCGJOBS_HEALTH_WAL_WARNING_MB",), 100.0,
            "WAL file size (MiB) at which the wal-size check warns (a reader blocks checkpoints).",
            parsers.float_between(0)),
    Setting("health_wal_critical_mb", ("TCGJOBS_HEALTH_WAL_CRITICAL_MB",), 1000.0,
            "WAL file size (MiB) at which the wal-size check is critical.", parsers.float_between(0)),
    Setting("health_disk_free_warning_mb", ("TCGJOBS_HEALTH_DISK_FREE_WARNING_MB",), 2048.0,
            "Free space (MiB) on the database or backup volume below which the disk-free checks warn.",
            parsers.float_between(0)),
    Setting("health_disk_free_critical_mb", ("TCGJOBS_HEALTH_DISK_FREE_CRITICAL_MB",), 500.0,
            "Free space (MiB) below which the disk-free checks are critical.", parsers.float_between(0)),
    Setting("health_backup_age_warning_hours", ("TCGJOBS_HEALTH_BACKUP_AGE_WARNING_HOURS",), 26.0,
            "Age (hours) of the newest verified backup at which backup-age warns.",
            parsers.float_between(0)),
    Setting("health_backup_age_critical_hours", ("TCGJOBS_HEALTH_BACKUP_AGE_CRITICAL_HOURS",), 50.0,
            "Age (hours) of the newest verified backup at which backup-age is critical (also when "
            "there is none).", parsers.float_between(0)),
    Setting("health_postgres_timeout", ("TCGJOBS_HEALTH_POSTGRES_TIMEOUT",), 3,
            "Seconds the postgres check waits for a connection (libpq's minimum is 2).",
            parsers.int_between(1, 60)),
    Setting("health_postgres_latency_warning_ms", ("TCGJOBS_HEALTH_POSTGRES_LATENCY_WARNING_MS",), 500.0,
            "Connect + SELECT 1 time (ms) at which the postgres check warns.", parsers.float_between(0)),
    Setting("health_postgres_latency_critical_ms", ("TCGJOBS_HEALTH_POSTGRES_LATENCY_CRITICAL_MS",), 2000.0,
            "Connect + SELECT 1 time (ms) at which the postgres check is critical.",
            parsers.float_between(0)),
    Setting("health_count_drop_warning_percent", ("TCGJOBS_HEALTH_COUNT_DROP_WARNING_PERCENT",), 1.0,
            "Drop (%) of sets or cards since the previous check at which card-counts warns.",
            parsers.float_between(0, 100)),
    Setting("health_count_drop_critical_percent", ("TCGJOBS_HEALTH_COUNT_DROP_CRITICAL_PERCENT",), 10.0,
            "Drop (%) of sets or cards since the previous check at which card-counts is critical "
            "(an empty table always is).", parsers.float_between(0, 100)),
    Setting("health_job_failures_warning", ("TCGJOBS_HEALTH_JOB_FAILURES_WARNING",), 1,
            "Consecutive failures of a job that make its job:<name> check warn (late also warns).",
            parsers.int_between(1)),
    Setting("health_job_failures_critical", ("TCGJOBS_HEALTH_JOB_FAILURES_CRITICAL",), 3,
            "Consecutive failures of a job that make its job:<name> check critical.",
            parsers.int_between(1)),
    Setting("health_abandoned_window_hours", ("TCGJOBS_HEALTH_ABANDONED_WINDOW_HOURS",), 24.0,
            "How far back the abandoned-runs check looks.", parsers.float_between(0)),
    Setting("health_abandoned_critical", ("TCGJOBS_HEALTH_ABANDONED_CRITICAL",), 3,
            "Abandoned runs in the window that make abandoned-runs critical (one warns).",
            parsers.int_between(1)),
    Setting("alert_reminder_hours", ("TCGJOBS_ALERT_REMINDER_HOURS",), 0.0,
            "Repeat an alert every this many hours while it is still firing (0: never).",
            parsers.float_between(0)),
    Setting("job_failure_alert_threshold", ("TCGJOBS_JOB_FAILURE_ALERT_THRESHOLD",), 1,
            "Consecutive failures of a job before one alert is sent (a recovery follows the first "
            "success).", parsers.int_between(1)),
    Setting("silence_until", ("TCGJOBS_SILENCE_UNTIL",), None,
            "Mute Slack alerts until this ISO-8601 time (without a zone: in TCGJOBS_TIMEZONE, like "
            "`notify silence --until`; checks still run and record); see also `tcgjobs notify "
            "silence`.", read_optional_time),
    Setting("ping_timeout", ("TCGJOBS_PING_TIMEOUT",), 5.0,
            "Seconds one dead-man ping may take; a failed ping is only a warning.",
            parsers.float_between(0.1, 60)),
)


#: The setting holding each operation's deadline (operations get no generated settings).
OPERATION_TIMEOUTS: dict[str, str] = {RESTORE.name: "restore_timeout"}


def job_settings(job: Job) -> tuple[Setting, ...]:
    """The settings generated for one job: enabled, schedule, timeout and each of its options."""
    prefix = job.env_prefix
    base = job.module_name
    generated = [
        Setting(f"{base}_enabled", (prefix + "ENABLED",), True,
                f"Run {job.name} at all (false: runs are skipped, deploy files suspend it).",
                parsers.parse_bool),
        Setting(f"{base}_schedule", (prefix + "SCHEDULE",), job.schedule,
                f"Cron schedule of {job.name}.", parsers.parse_cron),
        Setting(f"{base}_timeout", (prefix + "TIMEOUT",), job.timeout,
                f"Deadline of one {job.name} run, in seconds.", parsers.parse_timeout),
    ]
    for option in job.options:
        generated.append(Setting(f"{base}_{option.name}", option.env or (prefix + option.name.upper(),),
                                 option.default, f"{job.name}: {option.help}", option.parser))
    return tuple(generated)


def all_settings() -> tuple[Setting, ...]:
    """The whole table: global settings, each job's, then the off-site ones."""
    from tcgjobs.offsite.settings import OFFSITE_SETTINGS

    generated: list[Setting] = []
    for job in all_jobs().values():
        generated.extend(job_settings(job))
    return SETTINGS + tuple(generated) + tuple(Setting(**fields) for fields in OFFSITE_SETTINGS)


@dataclass(frozen=True)
class JobConfig:
    """The effective configuration of one job."""

    enabled: bool
    schedule: str
    timeout: float
    options: Mapping[str, Any]
    off_reason: str | None = None  # why a disabled job is off


class Settings:
    """Validated settings. Attribute access by setting name; ``sources`` says where each came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], warnings: list[str],
                 table: tuple[Setting, ...], unknown: list[str] | None = None) -> None:
        self._values = values
        self.sources = sources
        self.warnings = warnings
        self.table = table
        #: One message per TCGJOBS_* variable no setting reads (also among ``warnings``).
        self.unknown = unknown or []

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str) -> Any:
        return self._values[name]

    def job(self, job: Job) -> JobConfig:
        """The effective configuration of a registry job, or of an operation
        (:data:`tcgjobs.registry.OPERATIONS`: always enabled, no schedule, no options, the deadline
        its setting in :data:`OPERATION_TIMEOUTS` holds)."""
        if job.name in OPERATION_TIMEOUTS:
            return JobConfig(enabled=True, schedule=job.schedule,
                             timeout=self._values[OPERATION_TIMEOUTS[job.name]], options={})
        base = job.module_name
        enabled = self._values[f"{base}_enabled"]
        reason = None if enabled else f"{job.name} is disabled ({job.env_prefix}ENABLED=false)"
        if enabled and job.needs and self._values.get(job.needs) is None:
            variable = next(s.variable for s in self.table if s.name == job.needs)
            enabled, reason = False, f"{job.name} is off: {variable} is not set"
        return JobConfig(
            enabled=enabled,
            schedule=self._values[f"{base}_schedule"],
            timeout=self._values[f"{base}_timeout"],
            options={o.name: self._values[f"{base}_{o.name}"] for o in job.options},
            off_reason=reason,
        )

    @property
    def postgres_configured(self) -> bool:
        return bool(self.postgres_url or self.postgres_host)

    @property
    def temp_dir(self) -> Path:
        return self.tmpdir or Path(tempfile.gettempdir())

    def secret_values(self) -> list[str]:
        """Every secret's value, for the log redactor."""
        return [str(self._values[s.name]) for s in self.table if s.secret and self._values[s.name]]

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with some values replaced (tests, CLI overrides)."""
        merged = dict(self._values, **values)
        return Settings(merged, dict(self.sources), list(self.warnings), self.table, self.unknown)


def _read_raw(setting: Setting, environ: Mapping[str, str], problems: list[str],
              warnings: list[str]) -> tuple[str, str, str] | None:
    """``(text, variable, source)`` for ``setting``, or None when it is unset. Empty means unset."""
    for variable in setting.env + setting.deprecated_env:
        file_variable = variable + "_FILE"
        direct = environ.get(variable) or None
        from_file = (environ.get(file_variable) or None) if setting.secret else None
        if direct is None and from_file is None:
            continue
        if direct is not None and from_file is not None:
            problems.append(f"{variable} and {file_variable} are both set; set only one")
            return None
        if variable in setting.deprecated_env:
            warnings.append(f"{variable} is deprecated; use {setting.variable}")
        else:
            ignored = [v for v in setting.deprecated_env if environ.get(v)]
            if ignored:
                warnings.append(f"{', '.join(ignored)} ignored because {variable} is set")
        if direct is not None:
            return direct, variable, f"env {variable}"
        assert from_file is not None
        try:
            text = Path(from_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            problems.append(f"{file_variable}: cannot read {from_file}: {exc.strerror}")
            return None
        return text, file_variable, f"file {file_variable}"
    return None


def load_settings(environ: Mapping[str, str], table: Iterable[Setting] | None = None) -> Settings:
    """Read and validate every setting from ``environ``.

    Raises ConfigError listing every invalid value, unreadable secret file and conflict at once.
    """
    table = tuple(table) if table is not None else all_settings()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for setting in table:
        raw = _read_raw(setting, environ, problems, warnings)
        if raw is None:
            default = setting.default
            values[setting.name] = default(values) if callable(default) else default
            sources[setting.name] = "default"
            continue
        text, variable, source = raw
        try:
            values[setting.name] = setting.parser(text)
        except ValueError as exc:
            message = f"{variable}: {exc}"
            if setting.secret and len(text) >= 8:  # parsers of secrets never quote them; be sure
                message = message.replace(text, "<redacted>")
            problems.append(message)
            values[setting.name] = None
        sources[setting.name] = source
    problems.extend(_cross_checks(values))
    if values.get("silence_until") is not None and values.get("timezone") is not None:
        # The one rule of tcgjobs.times: a time without a zone is in TCGJOBS_TIMEZONE.
        values["silence_until"] = in_zone(values["silence_until"], values["timezone"])
    if problems:
        raise ConfigError(problems)
    unknown = unknown_variables(environ, table)
    return Settings(values, sources, warnings + unknown, table, unknown)


#: Variables with this prefix belong to tcgjobs' tests (a PostgreSQL DSN, ...), not to a setting.
TEST_PREFIX = "TCGJOBS_TEST_"


def unknown_variables(environ: Mapping[str, str], table: Iterable[Setting]) -> list[str]:
    """One message per ``TCGJOBS_*`` variable that no setting reads, naming the closest known one.

    A misspelt setting is otherwise silent: ``TCGJOBS_DATA_SOURSE`` would leave the bundled sample
    in use. Only a warning here: an environment file written for a newer release must not stop an
    older one's runs (``config --check`` makes it an error).
    """
    import difflib

    known: set[str] = set()
    for setting in table:
        for variable in setting.env + setting.deprecated_env:
            known.add(variable)
            if setting.secret:
                known.add(variable + "_FILE")
    # Compared without the common prefix, which would make every name look alike.
    by_stem = {name.removeprefix("TCGJOBS_"): name for name in sorted(known)}
    messages = []
    for name in sorted(environ):
        if not name.startswith("TCGJOBS_") or name.startswith(TEST_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name.removeprefix("TCGJOBS_"), list(by_stem), n=1)
        hint = f"; did you mean {by_stem[close[0]]}?" if close else ""
        messages.append(f"{name} is not a tcgjobs setting and is ignored{hint}")
    return messages


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    """Checks that involve more than one setting."""
    problems = []
    if values.get("notifications_enabled") and not values.get("slack_webhook_url"):
        problems.append("NOTIFICATIONS_ENABLED=true needs SLACK_WEBHOOK_URL (or SLACK_WEBHOOK_URL_FILE)")
    for name, variable in (("database_path", "DATABASE_PATH"), ("state_path", "TCGJOBS_STATE_PATH")):
        path = values.get(name)
        if path is not None and Path(path).is_dir():
            problems.append(f"{variable}={path} is a directory; it must name the database file")
    if values.get("postgres_url") and values.get("postgres_host"):
        problems.append("set either TCGJOBS_POSTGRES_URL or POSTGRES_HOST, not both")
    from tcgjobs.offsite.settings import offsite_problems

    problems.extend(offsite_problems(values))
    return problems
