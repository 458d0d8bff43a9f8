"""The job registry: every job's declaration, as data, and their lookup by name.

A declaration is a job's name, help, default schedule and timeout, dependencies, the resources it
writes, whether it needs an existing card database, and its options (each with its parser and
variables). Settings, the deploy files, ``list``, the ``run JOB`` options and the README read only
these. A job's implementation,
``run(context) -> JobResult`` in ``tcgjobs/jobs/<module_name>.py``, is imported when that job runs
(:meth:`Job.load`), so no other command and no other job's run loads it.

:data:`REGISTRY` holds the declarations in the original's schedule-table order and refuses a second
job with the same name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from tcgjobs import parsers
from tcgjobs.errors import ExitCode

if TYPE_CHECKING:
    from tcgjobs.context import JobContext


class Resource(str, Enum):
    """Something a job writes. Jobs that write the same resource never run at the same time."""

    CARD_DB = "card-database"
    BACKUP_DIR = "backup-directory"
    PRIMARY = "primary-postgres"
    OFFSITE = "offsite-store"


@dataclass(frozen=True)
class JobOption:
    """An option of one job: a ``run JOB --name`` flag and a setting.

    The setting's variable is ``TCGJOBS_<JOB>_<NAME>`` unless ``env`` names others (the original's
    ``BACKUP_DAILY_RETENTION`` and friends). ``parser`` turns the variable's text into the value;
    the flag uses the same parser, so both are validated alike.
    """

    name: str
    kind: type  # bool, int, float or str
    default: Any
    help: str
    parser: Callable[[str], Any]
    env: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class JobResult:
    """What a job returns. ``exit_code`` is OK, FAILED or PROBLEMS; ``error`` says why when not OK.

    ``summary`` is one human line; ``metrics`` are numbers (counts, bytes, seconds) in insertion
    order; ``details`` is any JSON-serialisable structure the CLI can show (plans, findings).
    """

    metrics: dict[str, float | int] = field(default_factory=dict)
    summary: str = ""
    exit_code: ExitCode = ExitCode.OK
    error: str | None = None
    details: Any = None

    @classmethod
    def failed(cls, error: str, **kwargs: Any) -> JobResult:
        return cls(exit_code=ExitCode.FAILED, error=error, **kwargs)

    @classmethod
    def problems(cls, error: str, **kwargs: Any) -> JobResult:
        return cls(exit_code=ExitCode.PROBLEMS, error=error, **kwargs)


JobFunction = Callable[["JobContext"], JobResult]

#: The package holding one implementation module per job.
JOBS_PACKAGE = "tcgjobs.jobs"


def run_declared(context: JobContext) -> JobResult:
    """The ``run`` of a declared job: its module's ``run``, imported now (see :meth:`Job.load`)."""
    return context.job.load()(context)


@dataclass(frozen=True)
class Job:
    """One job's declaration.

    ``run`` defaults to :func:`run_declared`, which imports the job's module when the job runs;
    a job defined in code (the runner's tests) passes its function instead.
    """

    name: str
    help: str
    schedule: str
    timeout: float
    depends_on: tuple[str, ...] = ()
    writes: frozenset[Resource] = frozenset()
    #: The job works on an existing card database (it never creates one): a run with a
    #: DATABASE_PATH that is not there is refused before anything is opened or created.
    needs_card_database: bool = False
    options: tuple[JobOption, ...] = ()
    run: JobFunction = run_declared
    #: A setting that must be set for the job to be on (upload-backups: the off-site URL);
    #: while it is unset the job counts as disabled everywhere.
    needs: str | None = None

    @property
    def module_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def module(self) -> str:
        """The implementation's module: ``tcgjobs.jobs.<module_name>``."""
        return f"{JOBS_PACKAGE}.{self.module_name}"

    @property
    def env_prefix(self) -> str:
        return "TCGJOBS_" + self.name.upper().replace("-", "_") + "_"

    def load(self) -> JobFunction:
        """``run(context) -> JobResult`` of the job's module, importing the module (once).

        Raises ImportError when the module is missing and AttributeError when it has no ``run``
        (tests/test_registry.py checks every declared job for both).
        """
        implementation: JobFunction = importlib.import_module(self.module).run
        return implementation


def _offsite_count(rule: str, low: int, text: str) -> JobOption:
    """An off-site retention count: TCGJOBS_OFFSITE_<RULE>_RETENTION (the minimum:
    TCGJOBS_OFFSITE_MINIMUM), defaulting to the local policy's value of the same rule."""
    def local_value(values: Mapping[str, Any]) -> Any:
        return values[f"rotate_backups_{rule}"]  # None when that setting was invalid (reported)

    variable = "TCGJOBS_OFFSITE_MINIMUM" if rule == "minimum" else \
        f"TCGJOBS_OFFSITE_{rule.upper()}_RETENTION"
    return JobOption(rule, int, local_value, f"{text} Default: the local policy's.",
                     parsers.int_between(low), env=(variable,))


def _accept_drift(rows: str) -> JobOption:
    """The sync jobs' consent to drift: an update emptying a column most of the stored rows hold
    (a field renamed upstream) stops, unless its field is named here (docs/sync.md)."""
    return JobOption("accept_drift", str, "", "Fields (or columns, comma-separated) the source "
                     f"may empty although most of {rows} hold them (drift); by default such an "
                     "update is refused.", parsers.name_list)


JOBS: tuple[Job, ...] = (
    Job(
        name="backup-database",
        help="Consistent, compressed, SHA256-verified backup of the card database.",
        schedule="0 0 * * *",
        timeout=300,
        needs_card_database=True,
        writes=frozenset({Resource.BACKUP_DIR}),
        options=(
            JobOption("compression", str, "gzip", "gzip (.gz, the original's format) or zstd (.zst, "
                      "faster).", parsers.choice("gzip", "zstd"), env=("TCGJOBS_BACKUP_COMPRESSION",)),
            JobOption("reserve_bytes", int, 0, "Refuse to start unless this many bytes stay free "
                      "beyond what the backup needs.", parsers.int_between(0),
                      env=("TCGJOBS_BACKUP_RESERVE_BYTES",)),
        ),
    ),
    Job(
        name="rotate-backups",
        help="Calendar-based backup retention that never deletes the newest verified backup.",
        schedule="0 1 * * *",
        timeout=60,
        depends_on=("backup-database",),
        writes=frozenset({Resource.BACKUP_DIR}),
        options=(
            JobOption("daily", int, 7, "Keep the newest backup of each of the last N days with backups.",
                      parsers.int_between(0), env=("BACKUP_DAILY_RETENTION",)),
            JobOption("weekly", int, 4, "Keep the newest backup of each of the last N ISO weeks.",
                      parsers.int_between(0), env=("BACKUP_WEEKLY_RETENTION",)),
            JobOption("monthly", int, 3, "Keep the newest backup of each of the last N months.",
                      parsers.int_between(0), env=("BACKUP_MONTHLY_RETENTION",)),
            JobOption("minimum", int, 5, "Never keep fewer than N backups.",
                      parsers.int_between(1), env=("BACKUP_MINIMUM",)),
            JobOption("yearly", int, 0, "Keep the newest backup of each of the last N years.",
                      parsers.int_between(0), env=("BACKUP_YEARLY_RETENTION",)),
            JobOption("recheck", bool, True, "Re-hash every verified backup against its recorded "
                      "checksum before applying the policy.", parsers.parse_bool),
        ),
    ),
    Job(
        name="upload-backups",
        help="Copy every verified backup to S3-compatible storage, prove it there, retain there.",
        schedule="30 0 * * *",
        timeout=1800,
        depends_on=("backup-database",),
        writes=frozenset({Resource.OFFSITE}),
        needs="offsite_url",
        options=(
            _offsite_count("daily", 0, "Keep the newest off-site copy of each of the last N days "
                           "with copies."),
            _offsite_count("weekly", 0, "Keep the newest off-site copy of each of the last N ISO "
                           "weeks."),
            _offsite_count("monthly", 0, "Keep the newest off-site copy of each of the last N "
                           "months."),
            _offsite_count("yearly", 0, "Keep the newest off-site copy of each of the last N years."),
            _offsite_count("minimum", 1, "Never keep fewer than N off-site copies."),
        ),
    ),
    Job(
        name="sync-missing-sets",
        help="Insert new and update changed sets from the card data into the card database.",
        schedule="0 2 * * *",
        timeout=300,
        writes=frozenset({Resource.CARD_DB}),
        options=(_accept_drift("sets"),),
    ),
    Job(
        name="sync-missing-cards",
        help="Insert every missing and update every changed card, one transaction per set.",
        schedule="0 3 * * *",
        timeout=1800,
        depends_on=("sync-missing-sets",),
        writes=frozenset({Resource.CARD_DB}),
        options=(_accept_drift("a set's cards"),),
    ),
    Job(
        name="replicate-to-primary",
        help="Replicate sets and cards into the primary PostgreSQL, exactly and incrementally.",
        schedule="0 4 * * *",
        timeout=1800,
        needs_card_database=True,
        depends_on=("sync-missing-cards",),
        writes=frozenset({Resource.PRIMARY}),
        options=(
            JobOption("delete", bool, False, "Delete rows that exist only in PostgreSQL (default: "
                      "report them).", parsers.parse_bool),
        ),
    ),
    Job(
        name="cleanup-stale-data",
        help="WAL checkpoint, ANALYZE, VACUUM when worth it, prune old ledger rows and leftover files.",
        schedule="0 5 * * 0",
        timeout=600,
        needs_card_database=True,
        writes=frozenset({Resource.CARD_DB}),
        options=(
            JobOption("force", bool, False, "VACUUM whatever the free-page ratio (disk room still "
                      "required).", parsers.parse_bool),
            JobOption("vacuum_min_free_ratio", float, 0.10, "VACUUM when at least this share of "
                      "pages is free.", parsers.float_between(0.0, 1.0)),
            JobOption("ledger_retention_days", int, 90, "Prune ledger rows older than this many days.",
                      parsers.int_between(1), env=("TCGJOBS_LEDGER_RETENTION_DAYS",)),
            JobOption("leftover_margin_seconds", int, 3600, "Remove temporary files older than the "
                      "backup timeout plus this margin.", parsers.int_between(0)),
        ),
    ),
    Job(
        name="validate-data-integrity",
        help="Read-only proof that the card database is whole and consistent with its source.",
        schedule="0 6 * * 0",
        timeout=600,
        needs_card_database=True,
        options=(
            JobOption("examples", int, 10, "Examples shown per finding (counts are always exact).",
                      parsers.int_between(0, 10_000)),
            JobOption("compare_primary", bool, True, "Compare the card database with the primary "
                      "PostgreSQL when one is configured (false: never connect to it, e.g. when "
                      "checking a restored copy in a restore drill).", parsers.parse_bool),
        ),
    ),
    Job(
        name="database-health-check",
        help="Health checks of the databases, backups and jobs; alerts when a check changes state.",
        schedule="*/15 * * * *",
        timeout=60,
    ),
)


#: Operations a command starts (not a schedule) that run through the runner like a job: a ledger
#: row, the locks of what they write, a deadline, signal handling and failure alerts. They are not
#: in :data:`REGISTRY`, so they get no CronJob, no crontab line, no ``status`` row and no generated
#: settings (their few settings are declared in :mod:`tcgjobs.config`); ``history NAME`` shows them.
#: ``schedule`` is empty: nothing schedules them.
RESTORE = Job(
    name="backup-restore",
    help="Restore a backup (`tcgjobs backup restore`), over the live card database or to a new path.",
    schedule="",
    timeout=1800,
    writes=frozenset({Resource.BACKUP_DIR, Resource.CARD_DB}),
)
OPERATIONS: dict[str, Job] = {RESTORE.name: RESTORE}


def restore_operation(live: bool) -> Job:
    """:data:`RESTORE` as one restore runs: it writes the card database only when its target is the
    live database (a restore to a new path, as in a drill, may run beside a sync)."""
    return replace(RESTORE, writes=RESTORE.writes if live else frozenset({Resource.BACKUP_DIR}))


class DuplicateJobError(ValueError):
    """Two jobs were registered under one name."""


#: Every job by name: the declarations above (and the small jobs tests add).
REGISTRY: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add ``job`` to the registry. Raises DuplicateJobError, changing nothing, if its name is taken."""
    if job.name in REGISTRY:
        raise DuplicateJobError(f"job {job.name!r} is already registered")
    REGISTRY[job.name] = job
    return job


for _declared in JOBS:
    register(_declared)


def all_jobs() -> Mapping[str, Job]:
    """Every registered job, in schedule-table order."""
    return REGISTRY


def recorded_names() -> list[str]:
    """Every name a ledger row can carry: the jobs, then the :data:`OPERATIONS`."""
    return [*REGISTRY, *OPERATIONS]


def get_job(name: str) -> Job:
    """The job called ``name``. Raises KeyError listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; valid jobs: {', '.join(REGISTRY)}") from None
