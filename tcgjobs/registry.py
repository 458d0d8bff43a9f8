"""The job registry: every job's name, schedule, timeout, dependencies, resources and options.

Each module in :mod:`tcgjobs.jobs` declares its job with :func:`job`; ``tcgjobs/jobs/__init__.py``
imports the modules explicitly. The registry refuses a second job with the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from tcgjobs.errors import ExitCode

if TYPE_CHECKING:
    from tcgjobs.context import JobContext


class Resource(str, Enum):
    """Something a job writes. Jobs that write the same resource never run at the same time."""

    CARD_DB = "card-database"
    BACKUP_DIR = "backup-directory"
    PRIMARY = "primary-postgres"


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


@dataclass(frozen=True)
class Job:
    """One job: its declaration and ``run``, its implementation."""

    name: str
    help: str
    schedule: str
    timeout: float
    run: JobFunction
    depends_on: tuple[str, ...] = ()
    writes: frozenset[Resource] = frozenset()
    options: tuple[JobOption, ...] = ()

    @property
    def module_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env_prefix(self) -> str:
        return "TCGJOBS_" + self.name.upper().replace("-", "_") + "_"

    def option(self, name: str) -> JobOption:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(f"{self.name} has no option {name!r}")


class DuplicateJobError(ValueError):
    """Two jobs were registered under one name."""


REGISTRY: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add ``job`` to the registry. Raises DuplicateJobError if its name is taken."""
    if job.name in REGISTRY:
        raise DuplicateJobError(f"job {job.name!r} is already registered")
    REGISTRY[job.name] = job
    return job


def job(**attributes: Any) -> Callable[[JobFunction], JobFunction]:
    """Decorator registering the decorated ``run(context) -> JobResult`` as a job."""

    def decorate(function: JobFunction) -> JobFunction:
        register(Job(run=function, **attributes))
        return function

    return decorate


def all_jobs() -> Mapping[str, Job]:
    """Every registered job, in schedule-table order. Importing the jobs package fills it."""
    import tcgjobs.jobs  # noqa: F401  (explicit registration happens on import)

    return REGISTRY


def get_job(name: str) -> Job:
    """The job called ``name``. Raises KeyError listing the valid names."""
    jobs = all_jobs()
    try:
        return jobs[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}; valid jobs: {', '.join(jobs)}") from None
