"""backup-restore: one ``tcgjobs backup restore``, run through the runner like a job.

Not a scheduled job but an operation (:data:`tcgjobs.registry.OPERATIONS`): the ``backup
restore`` command starts it with its arguments as options, and the runner records it in the ledger
as ``backup-restore`` (the summary names the backup, the target and the safety snapshot), holds
the locks of what it writes, bounds it by TCGJOBS_RESTORE_TIMEOUT (or ``--timeout``) and turns
SIGTERM/SIGINT into a cancel. A cancel before the restored content is committed leaves the target
as it was (:mod:`tcgjobs.backups.restore`); one after it is reported as what it is, a restore that
was committed (``ctx.committed``) whose check was cut short.
"""

from __future__ import annotations

from pathlib import Path

from tcgjobs.context import JobContext
from tcgjobs.errors import JobFailed
from tcgjobs.registry import JobResult


def run(ctx: JobContext) -> JobResult:
    """Options: ``backup`` (path), ``target`` (path), ``force``, ``safety_snapshot`` (take one
    before overwriting) and ``live`` (the target is the live card database). Raises JobFailed
    when the target exists without ``force``, and what :func:`restore_backup` raises."""
    from tcgjobs.backups.overwrite import EXACT
    from tcgjobs.backups.restore import restore_backup

    source, target = Path(ctx.options["backup"]), Path(ctx.options["target"])
    if target.exists() and not ctx.options["force"]:
        raise JobFailed(f"{target} exists; refusing to overwrite it without --force")
    report = restore_backup(source, target, ctx.settings, safety_snapshot=ctx.options["safety_snapshot"],
                            check=ctx.check_cancelled, committed=ctx.committed)
    report["live"] = ctx.options["live"]
    safety = report["safety_snapshot"]
    summary = f"restored {source.name} to {target}" + (
        f"; the previous database is in the safety snapshot {Path(safety).name}" if safety else "")
    if report["check"] != EXACT:
        summary += "; " + report["check"]
    metrics: dict[str, float | int] = {"rows_total": sum(report["row_counts"].values())}
    metrics.update({f"rows_{table}": count for table, count in report["row_counts"].items()})
    return JobResult(metrics, summary=summary, details=report)
