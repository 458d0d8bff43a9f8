"""Off-site retention: rotate-backups' calendar rules applied to the copies in the bucket.

The decision is :func:`tcgjobs.backups.retention.plan` itself (restic's ORed daily, weekly,
monthly and yearly rules, the minimum, the newest verified copy always kept), with the off-site
counts. Only proven copies count; an unproven one is kept and never counted, a corrupt one is
deleted once a verified copy exists. One rule is added: a copy whose local counterpart exists but
is not verified is kept, since it may be the only sound copy of that backup. A store that refuses
a delete (object lock, WORM retention, a policy) is reported and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loguru import logger

from tcgjobs.backups import retention
from tcgjobs.backups.catalog import Backup
from tcgjobs.offsite.catalog import CORRUPT, SIDECAR_SUFFIXES, UNPROVEN, VERIFIED, Catalog
from tcgjobs.offsite.failures import StoreRefused
from tcgjobs.offsite.store import Store

_STATUS = {VERIFIED: retention.SOUND, CORRUPT: retention.CORRUPT, UNPROVEN: retention.UNVERIFIABLE}


def policy_from(options: Mapping[str, Any]) -> retention.Policy:
    return retention.Policy(daily=options["daily"], weekly=options["weekly"],
                            monthly=options["monthly"], yearly=options["yearly"],
                            minimum=options["minimum"])


def plan_rows(catalog: Catalog, local: Mapping[str, Backup], policy: retention.Policy,
              now: datetime) -> list[dict[str, Any]]:
    """One row per copy, newest first: name, status, created_at, size, action, reasons."""
    candidates = [retention.Candidate(c.name, c.created_at, _STATUS[c.status]) for c in catalog.copies]
    decisions = {d.key: d for d in retention.plan(candidates, policy, now)}
    rows = []
    for copy in catalog.copies:
        decision = decisions[copy.name]
        action, reasons = decision.action, list(decision.reasons)
        counterpart = local.get(copy.name)
        if action == "delete" and counterpart is not None and counterpart.status != "verified":
            action = "keep"
            reasons.append(f"its local copy is {counterpart.status}: this may be the only sound one")
        rows.append({"name": copy.name, "created_at": copy.created_at.isoformat(),
                     "status": copy.status, "size_bytes": copy.size_bytes, "action": action,
                     "reasons": reasons})
    return rows


@dataclass
class Applied:
    deleted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # name -> the store's answer
    bytes_freed: int = 0
    orphans_removed: int = 0


def apply(store: Store, catalog: Catalog, rows: list[dict[str, Any]], *, dry_run: bool,
          check: Callable[[], None]) -> Applied:
    """Log each decision and, unless ``dry_run``, delete: the backup object first (so a refused
    delete leaves the copy whole and proven), then its sidecars and proof; then the sidecars whose
    backup is gone. Raises the store's network failures."""
    applied = Applied()
    verb = "would delete" if dry_run else "deleting"
    for row in rows:
        log = logger.warning if row["status"] == CORRUPT and row["action"] == "delete" else logger.info
        log("off-site {} {} ({}): {}", "keep" if row["action"] == "keep" else verb, row["name"],
            row["status"], ", ".join(row["reasons"]))
        if row["action"] != "delete" or dry_run:
            continue
        check()
        copy = catalog.get(row["name"])
        assert copy is not None
        try:
            store.delete(copy.key)
        except StoreRefused as exc:
            logger.warning("the store refused to delete {}: {}", copy.key, exc)
            applied.refused[copy.name] = str(exc)
            continue
        for suffix in SIDECAR_SUFFIXES:
            if suffix in copy.sidecars:
                store.delete(copy.key + suffix)
        applied.deleted.append(copy.name)
        applied.bytes_freed += copy.size_bytes
        catalog.copies.remove(copy)
    if not dry_run:
        for key in catalog.orphans:
            check()
            try:
                store.delete(key)
                applied.orphans_removed += 1
            except StoreRefused as exc:
                logger.warning("the store refused to delete the orphaned {}: {}", key, exc)
    return applied
