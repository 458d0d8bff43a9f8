"""The rolling sample: a few off-site copies re-proven in full on every run.

Re-proving means downloading and running the local verification (restic's ``check
--read-data-subset``): bit rot in the bucket is found without downloading every copy every night.
Copies without a proof come first (a fresh node, or a proof lost), then the verified ones whose
proof is oldest, so over N runs the sample walks the whole bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from tcgjobs.config import Settings
from tcgjobs.offsite.catalog import CORRUPT, UNPROVEN, VERIFIED, Catalog, RemoteCopy
from tcgjobs.offsite.prove import prove_in_full, write_proof
from tcgjobs.offsite.store import Store
from tcgjobs.offsite.uploads import extra_args

_EPOCH = datetime.min.replace(tzinfo=UTC)


def choose(catalog: Catalog, count: int, exclude: Collection[str]) -> list[RemoteCopy]:
    """The ``count`` copies due for a full proof, never one of ``exclude``."""
    candidates = [c for c in catalog.copies if c.name not in exclude and c.status in (VERIFIED, UNPROVEN)]
    candidates.sort(key=lambda c: (c.status == VERIFIED, c.proven_at or _EPOCH, c.name))
    return candidates[:count]


def reprove(store: Store, catalog: Catalog, settings: Settings, *, count: int,
            exclude: Collection[str], run_id: str, dry_run: bool,
            check: Callable[[], None]) -> list[dict[str, Any]]:
    """Re-prove the chosen copies; each new proof is written to the bucket (not in a dry run) and
    replaces the copy's proof in ``catalog``. Returns one result per copy."""
    results = []
    for copy in choose(catalog, count, exclude):
        check()
        from tcgjobs.backups.verify import Unverifiable

        try:
            record = prove_in_full(store, copy, settings.temp_dir, check)
        except Unverifiable as exc:
            logger.warning("could not re-prove {}: {}", copy.name, exc)
            results.append({"name": copy.name, "status": "unverifiable", "reason": str(exc)})
            continue
        record["run_id"] = run_id
        if not dry_run:
            write_proof(store, copy.name, record, algorithm=settings.offsite_checksum,
                        extra=extra_args(settings))
            copy.proof = record
        logger.log("WARNING" if record["status"] == CORRUPT else "INFO",
                   "re-proved off-site copy {}: {}", copy.name, record["status"])
        results.append({"name": copy.name, "status": record["status"], "reason": record["reason"]})
    return results
