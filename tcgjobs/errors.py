"""Exit codes and domain exceptions.

Cron and Kubernetes see nothing of a run but its exit code, so every outcome has one stable,
documented number. :class:`ExitCode` is the single source: the CLI, the README table and the
rendered deploy files (``podFailurePolicy``) all take their numbers from it.

Code below the CLI raises the exceptions here (or lets library errors propagate); only the CLI
turns an outcome into an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of every ``tcgjobs`` invocation."""

    #: The job ran and did all of its work.
    OK = 0
    #: The job could not complete its work (rejected records, a failed verification, a bug).
    FAILED = 1
    #: The command line was wrong: unknown job, bad option, missing argument.
    USAGE = 2
    #: A checking job ran to the end and found problems (health critical, integrity errors,
    #: a corrupt backup). Retrying will not help; a person should look.
    PROBLEMS = 3
    #: A required service is unavailable (PostgreSQL unreachable). Worth retrying later.
    UNAVAILABLE = 69
    #: Skipped: another run holds a lock it needs, a dependency has not succeeded yet, or the
    #: job is disabled. Nothing was changed. Worth retrying later.
    SKIPPED = 75
    #: The configuration is invalid or incomplete (settings, paths, schema newer than the code).
    CONFIG = 78
    #: The run hit its deadline; its transaction was rolled back.
    TIMEOUT = 124
    #: Stopped by SIGINT (Ctrl-C); its transaction was rolled back.
    INTERRUPTED_SIGINT = 130
    #: Stopped by SIGTERM (Kubernetes, systemd, kill); its transaction was rolled back.
    INTERRUPTED_SIGTERM = 143


#: One line per exit code, for ``--help``, the README and the deploy files.
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "succeeded",
    ExitCode.FAILED: "failed: the job could not complete its work",
    ExitCode.USAGE: "usage error (unknown job, bad option)",
    ExitCode.PROBLEMS: "a checking job ran to the end and found problems",
    ExitCode.UNAVAILABLE: "a required service is unavailable (retryable)",
    ExitCode.SKIPPED: "skipped: lock held, dependency not met or job disabled (retryable)",
    ExitCode.CONFIG: "configuration error",
    ExitCode.TIMEOUT: "timed out; the transaction was rolled back",
    ExitCode.INTERRUPTED_SIGINT: "interrupted by SIGINT; the transaction was rolled back",
    ExitCode.INTERRUPTED_SIGTERM: "interrupted by SIGTERM; the transaction was rolled back",
}

#: Exit codes after which Kubernetes should retry the Job; every other non-zero code fails it at once.
RETRYABLE_EXIT_CODES: frozenset[ExitCode] = frozenset(
    {ExitCode.FAILED, ExitCode.UNAVAILABLE, ExitCode.SKIPPED, ExitCode.TIMEOUT}
)


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (database errors add DETAIL and HINT lines), or its
    type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class TcgjobsError(Exception):
    """Base of every error tcgjobs raises on purpose. Carries the exit code it maps to."""

    exit_code: ExitCode = ExitCode.FAILED


class JobFailed(TcgjobsError):
    """The job could not complete its work."""


class NotImplementedYet(JobFailed):
    """The job is declared in the registry but has no implementation yet."""

    def __init__(self, job: str) -> None:
        super().__init__(f"job {job!r} is not implemented yet")


class UsageError(TcgjobsError):
    """The command line was wrong."""

    exit_code = ExitCode.USAGE


class ProblemsFound(TcgjobsError):
    """A checking job found problems."""

    exit_code = ExitCode.PROBLEMS


class ServiceUnavailable(TcgjobsError):
    """A required external service (PostgreSQL, ...) cannot be reached."""

    exit_code = ExitCode.UNAVAILABLE


class ConfigError(TcgjobsError):
    """The configuration is invalid. ``problems`` lists every problem found, not just the first."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = f"configuration error: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{len(self.problems)} configuration errors:\n{lines}"
        super().__init__(message)


class SchemaError(ConfigError):
    """A database's schema is newer than this code, or incompatible with it."""


class Skipped(TcgjobsError):
    """The run did nothing on purpose (lock held, dependency unmet, job disabled)."""

    exit_code = ExitCode.SKIPPED


class LockHeld(Skipped):
    """Another run holds a lock this run needs."""


class DependencyNotMet(Skipped):
    """A declared dependency has not succeeded since its most recent scheduled time."""


class JobDisabled(Skipped):
    """The job is disabled by its ``TCGJOBS_<JOB>_ENABLED`` setting."""


class Cancelled(TcgjobsError):
    """The run was cancelled by its deadline or a signal. ``exit_code`` says which."""

    def __init__(self, reason: str, exit_code: ExitCode) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code
