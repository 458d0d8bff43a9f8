"""replicate-to-primary: replicate the SQLite card data into the primary PostgreSQL, exactly.

The original sent one INSERT per card, never updated or deleted, failed every card without HP,
turned ``TG01`` into ``0``, dropped the Cardmarket URL and reported success anyway. Here
(details in :mod:`tcgjobs.services.replication`):

* every value arrives exactly (NULL stays NULL, ``number`` verbatim, arrays as ``TEXT[]``, JSON as
  ``JSONB``, dates parsed, both market URLs); a value a column cannot hold (a date that is not a
  date, text with NUL, ...) is replaced by what it can hold, by its kind's declared rule, and
  reported per table with examples (a warning; a failure with TCGJOBS_STRICT_VALUES);
* one SQLite snapshot, one PostgreSQL transaction: a failure, SIGTERM or deadline leaves the
  primary exactly as it was (the running statement is cancelled);
* only new and changed rows are sent (per-row digests computed by both databases), with COPY
  into a staging table and one merge; identical rows are not written;
* rows only PostgreSQL has are reported, and deleted only with ``--delete``;
* after the commit both sides are verified from their data: counts and checksums per table.

Exit codes: 0 replicated and verified; 1 rows skipped (their key unusable), values replaced
under TCGJOBS_STRICT_VALUES, verification failed, or a statement PostgreSQL refused (rolled back;
the SQLSTATE named); 69 PostgreSQL unreachable,
refusing the login or the connection lost; 78 not configured or incompatible schema;
124/130/143 deadline/SIGINT/SIGTERM: rolled back before the COMMIT; after it, the run says it
committed and that the verification did not finish (the next run verifies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.registry import JobResult
from tcgjobs.services import postgres

if TYPE_CHECKING:
    from tcgjobs.services.replication import Outcome


def _counts(outcome: Outcome) -> str:
    """``sets +1 ~0 =4 -0; cards ...``: what replication did to each table."""
    parts = []
    for label, stats in outcome.stats.items():
        parts.append(f"{label} +{stats.inserted} ~{stats.updated} ={stats.unchanged} "
                     f"-{stats.deleted}" + (f" skipped {len(stats.skipped)}" if stats.skipped else "")
                     + (f", {stats.coerced.rows} with values replaced by what their columns hold"
                        if stats.coerced.rows else ""))
    return "; ".join(parts)


def _summary(outcome: Outcome) -> str:
    verb = "dry run, would replicate" if outcome.dry_run else "replicated"
    return f"{verb} (+inserted ~updated =unchanged -deleted): {_counts(outcome)}"


def _metrics(outcome: Outcome) -> dict[str, float | int]:
    metrics: dict[str, float | int] = {}
    for label, stats in outcome.stats.items():
        metrics.update(stats.metrics(label))
    return metrics


def _details(outcome: Outcome) -> dict[str, Any]:
    return {
        "dry_run": outcome.dry_run,
        "schema_actions": outcome.schema_actions,
        "tables": {label: {"inserted": s.inserted, "updated": s.updated, "unchanged": s.unchanged,
                           "deleted": s.deleted, "postgres_only": s.primary_only,
                           "postgres_only_examples": s.primary_only_ids[:10],
                           "skipped": s.skipped_examples(), "coerced": s.coerced.as_json()}
                   for label, s in outcome.stats.items()},
        "verification": [c.as_dict() for c in outcome.verification],
    }


def run(ctx: JobContext) -> JobResult:
    import psycopg2

    from tcgjobs.services.replication import replicate

    target = postgres.describe_target(ctx.settings)  # ConfigError (78) when not configured
    db = ctx.card_db(readonly=True)

    logger.info("replicating {} to PostgreSQL at {}{}", ctx.settings.database_path, target,
                " (dry run)" if ctx.dry_run else "")
    try:
        outcome = replicate(ctx.postgres, db, delete=ctx.options["delete"], dry_run=ctx.dry_run,
                            check=ctx.check_cancelled, committed=lambda done: ctx.committed(
                                f"replication committed ({_counts(done)}); verification not "
                                "finished, the next run verifies it", _metrics(done)))
    except psycopg2.Error as exc:
        if ctx.cancel.cancelled:
            raise  # cancelled by us: the runner maps it to 124/143/130
        raise postgres.failure(exc, ctx.settings) from None
    metrics = _metrics(outcome)
    if not outcome.dry_run:  # what a stop from here on leaves: committed, and how it verified
        ctx.committed(f"replication committed ({_counts(outcome)}) and "
                      f"{'verified' if outcome.verified else 'found different after the commit'}",
                      metrics)
    for label, stats in outcome.stats.items():
        if stats.primary_only and not ctx.options["delete"]:
            logger.warning("{} {} rows exist only in PostgreSQL (kept; --delete removes them), "
                           "e.g. {}", stats.primary_only, label, ", ".join(stats.primary_only_ids[:5]))
        if stats.deleted:
            logger.info("{}deleted {} {} rows that exist only in PostgreSQL",
                        "dry run: would have " if ctx.dry_run else "", stats.deleted, label)
        if stats.coerced.rows:
            logger.warning("{} {} row(s) hold values PostgreSQL's columns cannot hold as they are; "
                           "{} what the columns can hold instead (per column: {}), e.g. {}",
                           stats.coerced.rows, label, "would write" if ctx.dry_run else "wrote",
                           dict(stats.coerced.columns), " | ".join(stats.coerced.examples[:5]))
    summary = _summary(outcome)
    details = _details(outcome)
    problems = [f"{label}: {len(s.skipped)} rows skipped ({'; '.join(s.skipped_examples()[:3])})"
                for label, s in outcome.stats.items() if s.skipped]
    if ctx.settings.strict_values:  # the values were replicated as the columns can hold them
        problems += [f"{label}: {s.coerced.rows} rows hold values their PostgreSQL columns cannot "
                     f"hold as they are (TCGJOBS_STRICT_VALUES): {' | '.join(s.coerced.examples[:3])}"
                     for label, s in outcome.stats.items() if s.coerced.rows]
    if not outcome.dry_run:
        metrics["verified"] = int(outcome.verified)
        problems += [f"verification failed: {c.describe()}" for c in outcome.verification
                     if not c.equal]
    if problems:
        return JobResult.failed("; ".join(problems), metrics=metrics, summary=summary,
                                details=details)
    return JobResult(metrics=metrics, summary=summary, details=details)
