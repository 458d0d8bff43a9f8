"""sync-missing-cards: insert every missing and update every changed card, one transaction per set.

The original picked at most 10 "incomplete" sets a run by comparing card counts with ``total``,
so a fresh database needed 17 runs and cards added to a "complete" set (promos) were never seen.
Here every source set is read (one card file in memory at a time) and every card absent from the
database is inserted, whatever the counts. Per set:

* the set is not in the database → skipped with the reason (run sync-missing-sets first);
* the card file is missing → skipped with a warning;
* the card file is unusable (empty, invalid JSON, wrong shape) → that set is skipped and named,
  every other set is still synced, and the run exits 1;
* a malformed card record → rejected and named (file, id or position), the set's other cards are
  synced, and the run exits 1;
* otherwise the plan (:mod:`tcgjobs.sources.card_plan`) is written in one transaction, so an
  interrupted run leaves each set either fully old or fully new;
* a card file holding fewer cards than TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT of its set's total
  (``[]`` for a set of 62) is synced but is a warning, in the log and the summary.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.registry import JobResult

if TYPE_CHECKING:
    from tcgjobs.sources.card_plan import Fingerprint, SetPlan
    from tcgjobs.sources.layouts import Source


def _set_order(source: Source, source_set_ids: list[str]) -> tuple[list[str], list[str]]:
    """Sets to process: the sets file's order, then card files without a set record.
    Also returns card file names that are not safe set ids (never opened)."""
    file_ids, unusable = source.card_file_set_ids()
    listed = set(source_set_ids)
    return source_set_ids + [set_id for set_id in file_ids if set_id not in listed], unusable


@dataclass
class _RunState:
    """What the run knows across sets: the SELECT list, each stored card's set, the
    fingerprints, each stored set's total, the coverage threshold and the card ids synced so far."""

    select: str
    homes: dict[str, str]
    fingerprints: dict[str, Fingerprint]
    set_totals: dict[str, int | None]
    min_coverage: float
    seen: dict[str, str] = field(default_factory=dict)


class _Totals:
    def __init__(self) -> None:
        self.metrics: dict[str, float | int] = dict.fromkeys(
            ("sets_processed", "sets_skipped", "sets_failed", "cards_added", "cards_updated",
             "cards_unchanged", "cards_rejected", "source_duplicates", "database_only",
             "legacy_rows_normalised", "sets_low_coverage"), 0)
        self.plans: list[dict[str, Any]] = []
        self.low_coverage: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.rejected: list[str] = []

    def add(self, plan: SetPlan, with_ids: bool) -> None:
        m = self.metrics
        m["sets_processed"] += 1
        m["cards_added"] += len(plan.inserts)
        m["cards_updated"] += len(plan.updates)
        m["cards_unchanged"] += plan.unchanged
        m["legacy_rows_normalised"] += plan.legacy_normalised
        m["cards_rejected"] += plan.rejected
        m["source_duplicates"] += len(plan.duplicates) + len(plan.cross_set_duplicates)
        self.plans.append(plan.as_json(with_ids))

    def skip(self, set_id: str, reason: str) -> None:
        self.metrics["sets_skipped"] += 1
        self.skipped[set_id] = reason


def _sync_set(ctx: JobContext, db: Any, source: Source, set_id: str, state: _RunState,
              totals: _Totals) -> None:
    from tcgjobs.sources.card_plan import (
        apply_plan,
        file_digest,
        fingerprint_matches,
        plan_set,
        stored_rows,
        unchanged_plan,
    )
    from tcgjobs.sources.layouts import SourceFileError
    from tcgjobs.sources.runtime import examples

    path = source.card_file(set_id)
    if not path.exists():
        logger.warning("set {}: no card file at {}; skipped", set_id, path)
        totals.skip(set_id, "no card file")
        return
    try:
        raw = source.read_file(path)
        digest = file_digest(raw)
        rows = stored_rows(db, state.select, set_id)
        fingerprint = state.fingerprints.get(set_id)
        if fingerprint_matches(fingerprint, digest, rows):
            assert fingerprint is not None
            plan = unchanged_plan(set_id, digest, rows, fingerprint)
            state.seen.update((row[0], set_id) for row in rows
                              if row[0] not in fingerprint.database_only)
        else:
            read = source.read_cards(set_id, raw)
            assert read is not None
            plan = plan_set(db, state.select, read, digest, rows, state.homes, state.seen)
            for rejection in read.rejected:
                logger.error("rejected card record: {}", rejection)
                totals.rejected.append(str(rejection))
    except SourceFileError as exc:
        logger.error("set {} skipped: unusable card file {}", set_id, exc)
        totals.metrics["sets_failed"] += 1
        totals.failed[set_id] = str(exc)
        return
    if plan.duplicates:
        logger.warning("set {}: {} card id(s) repeated in {}; the last record wins: {}", set_id,
                       len(plan.duplicates), path, examples(plan.duplicates))
    if plan.cross_set_duplicates:
        logger.warning("set {}: {} card id(s) already synced from another set's file; skipped: {}",
                       set_id, len(plan.cross_set_duplicates), examples(plan.cross_set_duplicates))
    _check_coverage(plan, state, totals)
    if not ctx.dry_run:
        apply_plan(db, plan)
    if plan.writes:
        to_be = "to be " if ctx.dry_run else ""
        logger.info("{}set {}: {} card(s) {}added, {} {}updated, {} unchanged",
                    "dry run: " if ctx.dry_run else "", set_id, len(plan.inserts), to_be,
                    len(plan.updates), to_be, plan.unchanged)
    totals.add(plan, with_ids=ctx.dry_run)


def _check_coverage(plan: SetPlan, state: _RunState, totals: _Totals) -> None:
    """Warn about a card file holding few of its set's cards (it is synced all the same)."""
    from tcgjobs.sources.coverage import below_coverage, describe_coverage

    total = state.set_totals.get(plan.set_id)
    if total is None or not below_coverage(plan.source_cards, total, state.min_coverage):
        return
    coverage = describe_coverage(plan.source_cards, total)
    logger.warning("set {}: its card file holds {} of its total, below {:g}% "
                   "(TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT): truncated or incomplete?", plan.set_id,
                   coverage, state.min_coverage)
    totals.metrics["sets_low_coverage"] += 1
    totals.low_coverage[plan.set_id] = coverage


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Parsed card files are large trees of dicts and lists without cycles; the cyclic garbage
    collector only re-scans them (about a tenth of a full sync's time). Reference counting still
    frees each set's objects when the next set is read, so memory stays bounded by one file."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(ctx: JobContext) -> JobResult:
    from tcgjobs.sources.card_plan import load_fingerprints
    from tcgjobs.sources.rows import CARD_COLUMNS
    from tcgjobs.sources.runtime import fetch, load_source, refuse_sample_mix, select_list, sync_database

    source = load_source(ctx.settings)
    sets_read = source.read_sets()
    db = sync_database(ctx.card_db, ctx.settings.database_path, ctx.dry_run)
    db_sets = dict(fetch(db, "SELECT id, coalesce(total, printed_total) FROM pokemon_card_sets"))
    source_set_ids = [record["id"] for record in sets_read.sets]
    refuse_sample_mix(source, source_set_ids, db_sets)
    state = _RunState(select_list(db, "pokemon_cards", CARD_COLUMNS) if db is not None else "",
                      dict(fetch(db, "SELECT id, set_id FROM pokemon_cards")), load_fingerprints(db),
                      db_sets, ctx.settings.source_min_coverage_percent)
    order, unusable = _set_order(source, source_set_ids)
    totals = _Totals()
    for name in unusable:
        logger.error("card file {} does not name a safe set id; not opened", name)
        totals.metrics["sets_failed"] += 1
        totals.failed[name] = "unsafe set id in the file name; not opened"
    with ctx.reporter.progress("syncing cards, set by set", total=len(order)) as progress, \
            _no_cyclic_gc():
        for reached, set_id in enumerate(order, 1):
            ctx.check_cancelled()
            if set_id not in db_sets:
                logger.warning("set {}: not in the database; its cards are skipped "
                               "(run sync-missing-sets first)", set_id)
                totals.skip(set_id, "set not in the database (run sync-missing-sets first)")
            else:
                _sync_set(ctx, db, source, set_id, state, totals)
            if not ctx.dry_run:
                ctx.committed(_committed(totals, reached, len(order)), totals.metrics)
            progress.advance(1)
    totals.metrics["database_only"] = sum(1 for card_id in state.homes if card_id not in state.seen)
    return _result(ctx, source, totals)


def _committed(totals: _Totals, reached: int, total: int) -> str:
    """What a run stopped now leaves in the database: each set it synced is whole (one
    transaction each), the sets it did not reach are as they were."""
    m = totals.metrics
    return (f"{m['sets_processed']} of {total} sets synced, each whole ({m['cards_added']} cards "
            f"added, {m['cards_updated']} updated); the {total - reached} sets not reached are "
            "as they were")


def _result(ctx: JobContext, source: Source, totals: _Totals) -> JobResult:
    m = totals.metrics
    if m["database_only"]:
        logger.warning("{} card(s) are in the database but not in the source (kept, never deleted)",
                       m["database_only"])
    prefix = "dry run: would add" if ctx.dry_run else "added"
    summary = (f"{prefix} {m['cards_added']} and {'update' if ctx.dry_run else 'updated'} "
               f"{m['cards_updated']} cards in {m['sets_processed']} sets "
               f"({m['cards_unchanged']} unchanged) from {source.describe()}")
    if totals.low_coverage:
        summary += (f"; warning: {len(totals.low_coverage)} card file(s) below "
                    f"{ctx.settings.source_min_coverage_percent:g}% of their set's total: "
                    + ", ".join(f"{k} {v}" for k, v in list(totals.low_coverage.items())[:5]))
    details = {"source": source.describe(), "sets": totals.plans, "skipped": totals.skipped,
               "failed": totals.failed, "rejected": totals.rejected,
               "low_coverage": totals.low_coverage}
    problems = []
    if totals.failed:
        problems.append(f"{len(totals.failed)} set(s) skipped with unusable card files: "
                        + "; ".join(f"{k}: {v}" for k, v in list(totals.failed.items())[:5]))
    if totals.rejected:
        problems.append(f"{len(totals.rejected)} card record(s) rejected: "
                        + "; ".join(totals.rejected[:5]))
    if problems:
        return JobResult.failed(" | ".join(problems) + " (every other set was synced)",
                                metrics=m, summary=summary, details=details)
    return JobResult(m, summary=summary, details=details)
