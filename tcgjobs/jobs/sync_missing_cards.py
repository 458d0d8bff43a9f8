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
* an update that would empty a column most of the set's stored cards hold (a field renamed
  upstream: :mod:`tcgjobs.sources.drift`) → that set is not written and named with the field and
  the counts, the run exits 1, unless the field is accepted (``--accept-drift``);
* a card file holding fewer cards than TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT of its set's total
  (``[]`` for a set of 62) is synced but is a warning, in the log and the summary; so are fields
  under names no column has (kept in ``extra``).
"""

from __future__ import annotations

import gc
from collections import Counter
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
    fingerprints, each stored set's total, the coverage threshold, the fields whose drift is
    accepted and the card ids synced so far."""

    select: str
    homes: dict[str, str]
    fingerprints: dict[str, Fingerprint]
    set_totals: dict[str, int | None]
    min_coverage: float
    accepted: frozenset[str]
    seen: dict[str, str] = field(default_factory=dict)


class _Totals:
    def __init__(self) -> None:
        self.metrics: dict[str, float | int] = dict.fromkeys(
            ("sets_processed", "sets_skipped", "sets_failed", "cards_added", "cards_updated",
             "cards_unchanged", "cards_rejected", "source_duplicates", "database_only",
             "legacy_rows_normalised", "sets_low_coverage", "sets_drifted", "unknown_fields"), 0)
        self.plans: list[dict[str, Any]] = []
        self.low_coverage: dict[str, str] = {}
        self.drifted: dict[str, str] = {}
        self.drift_accepted: dict[str, str] = {}
        self.unknown: Counter[str] = Counter()
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
    from tcgjobs.sources.card_plan import apply_plan
    from tcgjobs.sources.runtime import examples

    plan = _plan(db, source, set_id, state, totals)
    if plan is None:
        return
    if plan.duplicates:
        logger.warning("set {}: {} card id(s) repeated in {}; the last record wins: {}", set_id,
                       len(plan.duplicates), source.card_file(set_id), examples(plan.duplicates))
    if plan.cross_set_duplicates:
        logger.warning("set {}: {} card id(s) already synced from another set's file; skipped: {}",
                       set_id, len(plan.cross_set_duplicates), examples(plan.cross_set_duplicates))
    _check_coverage(plan, state, totals)
    totals.unknown.update(plan.unknown)
    if _refused_for_drift(ctx, plan, state, totals):
        return
    if not ctx.dry_run:
        apply_plan(db, plan)
    if plan.writes:
        to_be = "to be " if ctx.dry_run else ""
        logger.info("{}set {}: {} card(s) {}added, {} {}updated, {} unchanged",
                    "dry run: " if ctx.dry_run else "", set_id, len(plan.inserts), to_be,
                    len(plan.updates), to_be, plan.unchanged)
    totals.add(plan, with_ids=ctx.dry_run)


def _plan(db: Any, source: Source, set_id: str, state: _RunState, totals: _Totals) -> SetPlan | None:
    """What syncing the set would do; None (counted and logged) when it has no card file or an
    unusable one. Its rejected records are logged and counted here."""
    from tcgjobs.sources.card_plan import file_digest, fingerprint_matches, plan_set, stored_rows, unchanged_plan
    from tcgjobs.sources.layouts import SourceFileError

    path = source.card_file(set_id)
    if not path.exists():
        logger.warning("set {}: no card file at {}; skipped", set_id, path)
        totals.skip(set_id, "no card file")
        return None
    try:
        raw = source.read_file(path)
        digest = file_digest(raw)
        rows = stored_rows(db, state.select, set_id)
        fingerprint = state.fingerprints.get(set_id)
        if fingerprint_matches(fingerprint, digest, rows):
            assert fingerprint is not None
            state.seen.update((row[0], set_id) for row in rows
                              if row[0] not in fingerprint.database_only)
            return unchanged_plan(set_id, digest, rows, fingerprint)
        read = source.read_cards(set_id, raw)
        assert read is not None
        for rejection in read.rejected:
            logger.error("rejected card record: {}", rejection)
            totals.rejected.append(str(rejection))
        return plan_set(db, state.select, read, digest, rows, state.homes, state.seen)
    except SourceFileError as exc:
        logger.error("set {} skipped: unusable card file {}", set_id, exc)
        totals.metrics["sets_failed"] += 1
        totals.failed[set_id] = str(exc)
        return None


def _refused_for_drift(ctx: JobContext, plan: SetPlan, state: _RunState, totals: _Totals) -> bool:
    """Whether the set must not be written: its update would empty a column most of its stored
    cards hold (drift.py) and the operator has not accepted that field. Logged either way."""
    from tcgjobs.sources.card_plan import plan_drifts

    found = plan_drifts(plan)
    accepted = [drift for drift in found if drift.accepted_by(state.accepted)]
    refused = [drift for drift in found if drift not in accepted]
    if accepted:
        text = "; ".join(map(str, accepted))
        logger.warning("set {}: accepted drift (accept_drift), the columns are emptied: {}",
                       plan.set_id, text)
        totals.drift_accepted[plan.set_id] = text
    if not refused:
        return False
    unknown = f"; fields under unknown names in its cards: {', '.join(sorted(plan.unknown))}" \
        if plan.unknown else ""
    text = "; ".join(map(str, refused)) + unknown
    logger.error("{}set {} not synced, nothing written for it: the update would empty what most "
                 "of its cards hold (drift: a field renamed upstream?): {}. Accept with "
                 "--accept-drift {} (TCGJOBS_SYNC_MISSING_CARDS_ACCEPT_DRIFT)",
                 "dry run: " if ctx.dry_run else "", plan.set_id, text,
                 ",".join(drift.field for drift in refused))
    totals.metrics["sets_drifted"] += 1
    totals.drifted[plan.set_id] = text
    return True


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
    from tcgjobs.sources.rows import CARD_COLUMNS, CARD_ROWS
    from tcgjobs.sources.runtime import (
        accepted_drift,
        fetch,
        load_source,
        refuse_sample_mix,
        select_list,
        sync_database,
    )

    accepted = accepted_drift(ctx.options["accept_drift"], CARD_ROWS, ctx.job.env_prefix + "ACCEPT_DRIFT")
    source = load_source(ctx.settings)
    sets_read = source.read_sets()
    db = sync_database(ctx.card_db, ctx.settings.database_path, ctx.dry_run)
    db_sets = dict(fetch(db, "SELECT id, coalesce(total, printed_total) FROM pokemon_card_sets"))
    source_set_ids = [record["id"] for record in sets_read.sets]
    refuse_sample_mix(source, source_set_ids, db_sets)
    state = _RunState(select_list(db, "pokemon_cards", CARD_COLUMNS) if db is not None else "",
                      dict(fetch(db, "SELECT id, set_id FROM pokemon_cards")), load_fingerprints(db),
                      db_sets, ctx.settings.source_min_coverage_percent, accepted)
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
    from tcgjobs.sources.runtime import report_unknown_fields

    m = totals.metrics
    if m["database_only"]:
        logger.warning("{} card(s) are in the database but not in the source (kept, never deleted)",
                       m["database_only"])
    m["unknown_fields"] = len(totals.unknown)
    prefix = "dry run: would add" if ctx.dry_run else "added"
    summary = (f"{prefix} {m['cards_added']} and {'update' if ctx.dry_run else 'updated'} "
               f"{m['cards_updated']} cards in {m['sets_processed']} sets "
               f"({m['cards_unchanged']} unchanged) from {source.describe()}")
    if totals.low_coverage:
        summary += (f"; warning: {len(totals.low_coverage)} card file(s) below "
                    f"{ctx.settings.source_min_coverage_percent:g}% of their set's total: "
                    + ", ".join(f"{k} {v}" for k, v in list(totals.low_coverage.items())[:5]))
    summary += report_unknown_fields("card", totals.unknown)
    details = {"source": source.describe(), "sets": totals.plans, "skipped": totals.skipped,
               "failed": totals.failed, "rejected": totals.rejected,
               "low_coverage": totals.low_coverage, "drifted": totals.drifted,
               "drift_accepted": totals.drift_accepted, "unknown_fields": dict(totals.unknown)}
    problems = []
    if totals.failed:
        problems.append(f"{len(totals.failed)} set(s) skipped with unusable card files: "
                        + "; ".join(f"{k}: {v}" for k, v in list(totals.failed.items())[:5]))
    if totals.rejected:
        problems.append(f"{len(totals.rejected)} card record(s) rejected: "
                        + "; ".join(totals.rejected[:5]))
    if totals.drifted:
        problems.append(f"{len(totals.drifted)} set(s) not synced because their update would empty "
                        "what most of their cards hold (drift; --accept-drift FIELD accepts it): "
                        + " | ".join(f"{k}: {v}" for k, v in list(totals.drifted.items())[:5]))
    if problems:
        return JobResult.failed(" | ".join(problems) + " (every other set was synced)",
                                metrics=m, summary=summary, details=details)
    return JobResult(m, summary=summary, details=details)
