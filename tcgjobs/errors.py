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
    """The exit status of every ``tcgjobs`` invocation.

    Each member is declared once, here: its number, its meaning (``tcgjobs run --help`` and the
    README table show it) and whether Kubernetes should retry a Job that ended with it (the deploy
    files' ``podFailurePolicy`` follows it): a retryable code may succeed on its own later; any
    other stops the Job at once.
    """

    meaning: str
    retryable: bool

    def __new__(cls, code: int, meaning: str, retryable: bool = False) -> ExitCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        member.retryable = retryable
        return member

    # NAME = number, meaning[, retryable]
    OK = 0, "succeeded"
    FAILED = 1, "failed: the job could not complete its work", True
    USAGE = 2, "usage error (unknown job, bad option)"
    PROBLEMS = 3, "a checking job ran to the end and found problems"
    UNAVAILABLE = 69, "a required service is unavailable (retryable)", True
    SKIPPED = 75, "skipped: lock held, dependency not met or job disabled (retryable)", True
    CONFIG = 78, "configuration error"
    TIMEOUT = 124, "timed out; uncommitted work was rolled back", True
    INTERRUPTED_SIGINT = 130, "interrupted by SIGINT; uncommitted work was rolled back"
    INTERRUPTED_SIGTERM = 143, "interrupted by SIGTERM; uncommitted work was rolled back"


#: The codes after which Kubernetes retries the Job (derived from ``ExitCode.retryable``).
RETRYABLE_EXIT_CODES: frozenset[ExitCode] = frozenset(code for code in ExitCode if code.retryable)


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


class UsageError(TcgjobsError):
    """The command line was wrong."""

    exit_code = ExitCode.USAGE


class ProblemsFound(TcgjobsError):
    """A checking job found problems."""

    exit_code = ExitCode.PROBLEMS


class ServiceUnavailable(TcgjobsError):
    """A required external service cannot be reached: a refused or dropped connection, a name that
    does not resolve, a timeout, a 5xx. Retryable: the service may be back later.

    The rule for every service (PostgreSQL, Slack, dead-man pings, the Pushgateway, object
    storage), in ``run`` and ``config --check`` alike: a network failure is this (69); an answer
    that refuses us is :class:`ServiceRefused` (78).
    """

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


class ServiceRefused(ConfigError):
    """A service answered and refused us: an unknown database or role, bad credentials, a missing
    bucket, a webhook that does not exist. Not retryable: the settings must change (78)."""


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
