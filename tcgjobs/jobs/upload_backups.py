"""upload-backups: every verified backup also off-site, proven there, retained there.

A run (with TCGJOBS_OFFSITE_URL set; without it the job counts as disabled everywhere): abort
our stale incomplete multipart uploads, list the bucket and read the proofs, re-prove a rolling
sample in full, copy each verified local backup that is not off-site yet (newest first), then
apply the off-site retention. The work is in :mod:`tcgjobs.offsite`; a store that cannot be
reached ends the run with 69 and one that refuses us with 78, keeping what was proven so far
(with its numbers in the ledger, for the health check).
"""

from __future__ import annotations

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.offsite.failures import StoreRefused, StoreUnavailable
from tcgjobs.offsite.job import OffsiteRun
from tcgjobs.registry import JobResult


def run(ctx: JobContext) -> JobResult:
    work = OffsiteRun(ctx)
    try:
        work.execute()
    except (StoreUnavailable, StoreRefused) as exc:  # keep the numbers of what was done so far
        logger.error("{}", exc)
        return work.result(error=str(exc), code=exc.exit_code)
    return work.result()
