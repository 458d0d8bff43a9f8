"""What one run amounts to: the job's own result, its failure, or the cancel's outcome.

The rule that keeps the exit code, the ledger and the log truthful: whenever the run's cancel
scope fired (deadline, SIGTERM, SIGINT) before the job's phase was sealed, the outcome is the
cancel's, whatever the job returned or raised meanwhile (an interrupted ``PRAGMA quick_check`` is
not damage, an interrupted check is not a finding). What a job reported as committed
(``JobContext.committed``) is said instead of "rolled back".
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from loguru import logger

from tcgjobs.cancel import CancelScope
from tcgjobs.context import Committed, JobContext
from tcgjobs.db.state import RunStatus
from tcgjobs.errors import Cancelled, ConfigError, ExitCode, TcgjobsError
from tcgjobs.logging import redact
from tcgjobs.registry import Job, JobResult


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, TcgjobsError):
        text = f"{type(exc).__name__}: {text}"
    return redact(text)


@dataclass
class Verdict:
    """What the job's phase of a run amounts to: the run's status, exit code and result."""

    status: RunStatus
    exit_code: ExitCode
    result: JobResult
    error: str | None
    committed: str | None = None


def execute(job: Job, context: JobContext, refused: list[str]) -> JobResult | BaseException:
    """Run the job body; what it returned, or what it raised."""
    try:
        if refused:  # its configuration failed before the ledger was opened
            raise ConfigError(refused)
        context.cancel.check()  # a signal or the deadline before the job began
        return job.run(context)
    except BaseException as exc:  # every outcome must be recorded
        if not isinstance(exc, Exception) and not context.cancel.cancelled:
            raise
        return exc


def judge(produced: JobResult | BaseException, fired: bool, scope: CancelScope,
           context: JobContext) -> Verdict:
    """The run's outcome. Whenever the run's scope fired, it is the cancel's, whatever the job
    returned or raised meanwhile: an interrupted statement is neither a finding nor a failure."""
    if fired or isinstance(produced, Cancelled):
        if not isinstance(produced, Cancelled):
            logger.debug("not reported (cut short by the cancel): {}", _job_said(produced))
        reason = scope.reason or str(produced)
        code = scope.exit_code or (produced.exit_code if isinstance(produced, Cancelled) else ExitCode.FAILED)
        return _cancelled(RunStatus.TIMEOUT if code is ExitCode.TIMEOUT else RunStatus.INTERRUPTED,
                          code, reason, context.progress)
    if isinstance(produced, BaseException):
        return _failed(produced, context.progress)
    if produced.exit_code is ExitCode.OK:
        status = RunStatus.DRY_RUN if context.dry_run else RunStatus.SUCCEEDED
        return Verdict(status, ExitCode.OK, produced, None)
    logger.error("failed: {}", produced.error)
    return Verdict(RunStatus.FAILED, produced.exit_code, produced, redact(produced.error or "failed"))


def _job_said(produced: JobResult | BaseException) -> str:
    if isinstance(produced, BaseException):
        return _error_text(produced)
    return produced.error or produced.summary or produced.exit_code.name


def _cancelled(status: RunStatus, code: ExitCode, reason: str, progress: Committed | None) -> Verdict:
    """A run stopped by its deadline or a signal: what it had committed, else that its
    uncommitted work was rolled back (never both claims: after a commit, "rolled back" would
    tell the operator that data is not there which is)."""
    if progress is None:
        logger.error("{}: stopped, uncommitted work rolled back ({})", status.value, reason)
        result = JobResult(summary="stopped before finishing; uncommitted work was rolled back")
        return Verdict(status, code, result, f"{reason}; uncommitted work was rolled back")
    logger.error("{}: stopped ({}); committed before the stop: {}", status.value, reason,
                 progress.text)
    result = JobResult(dict(progress.metrics), summary=f"committed before the stop: {progress.text}")
    return Verdict(status, code, result, redact(f"{reason}; committed before the stop: {progress.text}"),
                committed=progress.text)


def _failed(exc: BaseException, progress: Committed | None) -> Verdict:
    """A run that raised: its error, and what it had committed before."""
    code = exc.exit_code if isinstance(exc, TcgjobsError) else ExitCode.FAILED
    error = _error_text(exc)
    if isinstance(exc, TcgjobsError):
        logger.error("failed: {}", error)
    else:
        logger.error("failed with an unexpected error: {}\n{}", error,
                     redact("".join(traceback.format_exception(exc))))
    if progress is None:
        return Verdict(RunStatus.FAILED, code, JobResult(), error)
    logger.error("committed before the failure: {}", progress.text)
    result = JobResult(dict(progress.metrics), summary=f"committed before the failure: {progress.text}")
    return Verdict(RunStatus.FAILED, code, result,
                redact(f"{error}; committed before the failure: {progress.text}"), progress.text)
