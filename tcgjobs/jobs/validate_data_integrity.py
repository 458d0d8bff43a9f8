"""validate-data-integrity: read-only proof that the card database is whole and consistent.

The original ran five checks, capped two of the counts, read only the first row of
``integrity_check``, never returned the details and always succeeded. Here every check gives an
exact count and up to ``--examples`` examples, and the run exits 3 when any *error* exists:

errors:   integrity_check, foreign_key_check, orphan cards, missing required fields, invalid JSON
warnings: legacy (seed script) encodings, cards or sets in the source but missing from the
          database, database-only cards or sets, set totals that disagree with the card count
          (real data has such sets), duplicate ids in the source, unusable source files

Checks are plain functions in :data:`CHECKS`. With a primary configured, each table is also
compared with PostgreSQL (errors), unless ``--no-compare-primary`` says not to (a restored copy in
a restore drill is not the primary's source); a primary tcgjobs never replicated into is a warning.
The database is opened read-only; nothing is written to it. Memory stays flat whatever the data
size: the source is read a set at a time, its ids into temporary tables (SQLite's temporary
database, a file) that the coverage check anti-joins, and the other checks count in SQL or read
rows as a stream (drift: one set at a time), keeping counts and the first examples only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import peewee
from loguru import logger
from peewee import SqliteDatabase

from tcgjobs.context import JobContext
from tcgjobs.db.card_schema import POKEMON_CARD_SETS, POKEMON_CARDS
from tcgjobs.db.sqlite import integrity_problems, interrupted
from tcgjobs.errors import ConfigError
from tcgjobs.registry import JobResult

if TYPE_CHECKING:
    from tcgjobs.sources.coverage import SourceIds

ERROR, WARNING = "error", "warning"

#: Columns holding JSON text, and columns that must hold a value (NOT NULL, and not empty
#: either), from the declaration of the card tables.
CARD_JSON_COLUMNS = tuple(c.name for c in POKEMON_CARDS.columns if c.holds_json)
SET_JSON_COLUMNS = tuple(c.name for c in POKEMON_CARD_SETS.columns if c.holds_json)
CARD_REQUIRED = tuple(c.name for c in POKEMON_CARDS.columns if c.not_null)
SET_REQUIRED = tuple(c.name for c in POKEMON_CARD_SETS.columns if c.not_null)


@dataclass
class Finding:
    """One kind of problem: how many (exact) and a few examples."""

    check: str
    severity: str
    count: int
    description: str
    examples: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "count": self.count,
                "description": self.description, "examples": self.examples}


@dataclass
class CheckContext:
    """What the checks share: the read-only database, the example limit, the source ids."""

    db: SqliteDatabase
    limit: int
    source: SourceIds | None = None
    source_note: str = ""
    min_coverage: float = 0.0
    strict: bool = False

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute_sql(sql, params).fetchall()

    def count_and_examples(self, check: str, severity: str, description: str, where_sql: str,
                           example_sql: str, order_sql: str = "") -> Finding:
        """A finding from a COUNT query and an example query (``order_sql`` and LIMIT added here)."""
        count = self.rows(f"SELECT count(*) {where_sql}")[0][0]
        examples = [str(row[0]) for row in self.rows(f"{example_sql} {where_sql} {order_sql} LIMIT ?",
                                                     (self.limit,))] if count else []
        return Finding(check, severity, count, description, examples)


Check = Callable[[CheckContext], list[Finding]]

#: What SQLite raises when pages are damaged ("database disk image is malformed"); peewee wraps it.
UNREADABLE = (sqlite3.DatabaseError, peewee.DatabaseError)


def _guarded(check: Check, c: CheckContext) -> list[Finding]:
    """Run ``check``; a database too damaged to answer is an integrity error, not a crash. An
    interrupted statement (the run is being cancelled) says nothing about the file: raised."""
    try:
        return check(c)
    except UNREADABLE as exc:
        if interrupted(exc):
            raise
        name = "integrity_check" if check is check_integrity else "unreadable_" + check.__name__[6:]
        return [Finding(name, ERROR, 1, f"the database could not be read: {exc}", [str(exc)])]


def check_integrity(c: CheckContext) -> list[Finding]:
    problems = integrity_problems(c.db.connection(), limit=100)
    return [Finding("integrity_check", ERROR, len(problems), "PRAGMA integrity_check problems",
                    problems[: c.limit])]


def check_foreign_keys(c: CheckContext) -> list[Finding]:
    from tcgjobs.sources.coverage import Listed

    found = Listed(c.limit)
    for table, rowid, parent, _ in c.db.execute_sql("PRAGMA foreign_key_check"):
        found.add(f"{table} rowid {rowid} -> {parent}")
    return [Finding("foreign_key_check", ERROR, found.count, "rows violating a foreign key", found.first)]


def check_orphans(c: CheckContext) -> list[Finding]:
    return [c.count_and_examples(
        "orphan_cards", ERROR, "cards whose set is not in pokemon_card_sets",
        "FROM pokemon_cards c LEFT JOIN pokemon_card_sets s ON c.set_id = s.id WHERE s.id IS NULL",
        "SELECT c.id || ' (set ' || coalesce(c.set_id, 'NULL') || ')'")]


def _missing(c: CheckContext, table: str, columns: tuple[str, ...], check: str, what: str) -> Finding:
    condition = " OR ".join(f"{col} IS NULL OR {col} = ''" for col in columns)
    which = " || ".join(f"CASE WHEN {col} IS NULL OR {col} = '' THEN '{col} ' ELSE '' END"
                        for col in columns)
    return c.count_and_examples(
        check, ERROR, f"{what} with a required field NULL or empty ({', '.join(columns)})",
        f"FROM {table} WHERE {condition}",
        f"SELECT coalesce(nullif(id, ''), 'rowid ' || rowid) || ': ' || trim({which})")


def check_required_fields(c: CheckContext) -> list[Finding]:
    return [_missing(c, "pokemon_cards", CARD_REQUIRED, "missing_required_card_fields", "cards"),
            _missing(c, "pokemon_card_sets", SET_REQUIRED, "missing_required_set_fields", "sets")]


def _invalid_json(c: CheckContext, table: str, columns: tuple[str, ...], check: str) -> Finding:
    from tcgjobs.sources.runtime import table_columns

    present = [col for col in columns if col in table_columns(c.db, table)]
    bad = " OR ".join(f"({col} IS NOT NULL AND NOT json_valid({col}))" for col in present)
    which = " || ' ' || ".join(
        f"CASE WHEN {col} IS NOT NULL AND NOT json_valid({col}) THEN '{col}' ELSE '' END" for col in present)
    return c.count_and_examples(check, ERROR, f"{table} rows with invalid JSON in a JSON column",
                                f"FROM {table} WHERE {bad}", f"SELECT id || ': ' || trim({which})")


def check_json(c: CheckContext) -> list[Finding]:
    return [_invalid_json(c, "pokemon_cards", CARD_JSON_COLUMNS, "invalid_json_cards"),
            _invalid_json(c, "pokemon_card_sets", SET_JSON_COLUMNS, "invalid_json_sets")]


def check_legacy_encodings(c: CheckContext) -> list[Finding]:
    return [c.count_and_examples(
        "legacy_encodings", WARNING,
        "cards in the old seed script's encoding (JSON-encoded evolves_from, hp = -1 or text, "
        "NULL national_pokedex_numbers); the next sync-missing-cards rewrites those in the source",
        "FROM pokemon_cards WHERE evolves_from LIKE '\"%' OR evolves_from = '[]' OR hp = -1 "
        "OR typeof(hp) = 'text' OR national_pokedex_numbers IS NULL",
        "SELECT id || ': evolves_from=' || coalesce(evolves_from, 'NULL') || ', hp=' || coalesce(hp, 'NULL')")]


def check_totals(c: CheckContext) -> list[Finding]:
    where = ("FROM pokemon_card_sets s LEFT JOIN (SELECT set_id, count(*) AS n FROM pokemon_cards "
             "GROUP BY set_id) k ON k.set_id = s.id "
             "WHERE coalesce(k.n, 0) != coalesce(s.total, s.printed_total, 0)")
    return [c.count_and_examples(
        "set_totals_disagree", WARNING, "sets whose card count differs from their total "
        "(real data has promo sets with more cards than their total)", where,
        "SELECT s.id || ': ' || coalesce(k.n, 0) || ' cards, total ' || coalesce(s.total, s.printed_total, 'NULL')")]


def _gap(c: CheckContext, check: str, description: str, ids: str, others: str) -> Finding:
    """The ids of table ``ids`` that table ``others`` lacks: an anti-join, counted, the first
    few in id order."""
    return c.count_and_examples(
        check, WARNING, description,
        f"FROM {ids} AS i WHERE NOT EXISTS (SELECT 1 FROM {others} AS o WHERE o.id = i.id)",
        "SELECT i.id", "ORDER BY i.id")


def check_coverage(c: CheckContext) -> list[Finding]:
    from tcgjobs.sources.coverage import SOURCE_CARDS, SOURCE_SETS

    if c.source is None:
        return [Finding("source_coverage", WARNING, 1, "source coverage not checked",
                        [c.source_note])]
    src = c.source
    return [
        _gap(c, "sets_missing_from_database", "sets in the source but not in the database",
             SOURCE_SETS, "pokemon_card_sets"),
        _gap(c, "cards_missing_from_database", "cards in the source but not in the database",
             SOURCE_CARDS, "pokemon_cards"),
        _gap(c, "database_only_sets", "sets in the database but not in the source (never deleted)",
             "pokemon_card_sets", SOURCE_SETS),
        _gap(c, "database_only_cards", "cards in the database but not in the source (never deleted)",
             "pokemon_cards", SOURCE_CARDS),
        Finding("source_duplicates", WARNING, src.duplicates.count,
                "ids repeated in the source (the last record wins)", src.duplicates.first),
        Finding("unusable_source_files", WARNING, src.unusable.count + src.rejected,
                "unusable source files and rejected source records", src.unusable.first),
        _low_coverage(c, src),
    ]


def _low_coverage(c: CheckContext, src: SourceIds) -> Finding:
    """Source sets whose card file holds fewer cards than the coverage threshold of their total
    (the rule sync-missing-cards warns with; a set without a usable card file holds none)."""
    from tcgjobs.sources.coverage import below_coverage, describe_coverage

    low = []
    for set_id, total in sorted(src.totals.items()):
        cards = src.counts.get(set_id, 0)
        if total is not None and below_coverage(cards, total, c.min_coverage):
            note = "" if set_id in src.counts else ", no usable card file"
            low.append(f"{set_id}: {describe_coverage(cards, total)}{note}")
    return Finding("low_source_coverage", WARNING, len(low),
                   f"sets whose card file holds fewer than {c.min_coverage:g}% of their total "
                   "(TCGJOBS_SOURCE_MIN_COVERAGE_PERCENT)", low[: c.limit])


def check_source_drift(c: CheckContext) -> list[Finding]:
    """The source against the database by the sync's drift rule (tcgjobs.sources.drift): columns
    the database holds for most of a set's cards (or of the sets) that the source's records would
    leave empty; and fields the source carries under names no column has."""
    from tcgjobs.sources.rows import CARD_COLUMNS, SET_COLUMNS
    from tcgjobs.sources.runtime import select_list

    if c.source is None:
        return []
    sets = f"SELECT {select_list(c.db, 'pokemon_card_sets', SET_COLUMNS)} FROM pokemon_card_sets"
    cards = f"SELECT {select_list(c.db, 'pokemon_cards', CARD_COLUMNS)} FROM pokemon_cards WHERE set_id = ?"
    drifted = [f"{group}: {drift}"
               for group, drift in c.source.set_shape.drifts(lambda _: c.db.execute_sql(sets))]
    drifted += [f"set {group}: {drift}" for group, drift
                in c.source.card_shape.drifts(lambda group: c.db.execute_sql(cards, (group,)))]
    unknown = [f"{what} field {name!r}: {count} record(s), e.g. {shape.examples[name]}"
               for what, shape in (("set", c.source.set_shape), ("card", c.source.card_shape))
               for name, count in shape.unknown.most_common()]
    return [Finding("source_drift", WARNING, len(drifted),
                    "columns the database holds for most of a set's cards (or of the sets) that "
                    "the source would empty: a field renamed upstream? (the sync refuses such an "
                    "update unless accepted)", drifted[: c.limit]),
            Finding("unknown_source_fields", WARNING, len(unknown),
                    "source fields under names no column has (kept in extra): renamed fields?",
                    unknown[: c.limit])]


def check_unholdable_values(c: CheckContext) -> list[Finding]:
    """Rows with values their PostgreSQL column cannot hold as they are (card_schema.PG_KINDS):
    replication replaces them by what the column holds (a row whose key it cannot hold, it
    skips), so they are warnings, errors under TCGJOBS_STRICT_VALUES. Whether a primary is
    configured or not: the values are the card database's."""
    from tcgjobs.services.replication.pgcopy import unholdable
    from tcgjobs.services.replication.pgrows import CARDS, SETS, InvalidText, tolerant_text
    from tcgjobs.sources.coverage import Listed
    from tcgjobs.sources.runtime import select_list

    def shown(value: Any) -> str:
        return value.shown if type(value) is InvalidText else str(value)

    severity = ERROR if c.strict else WARNING
    connection = c.db.connection()
    connection.text_factory = tolerant_text  # text that is not UTF-8 is one of the findings
    findings = []
    try:
        for table, what in ((SETS, "set"), (CARDS, "card")):
            rows = connection.execute(f"SELECT {select_list(c.db, table.name, table.names)} FROM {table.name}")
            set_index = table.names.index("set_id") if "set_id" in table.names else None
            found = Listed(c.limit)
            for row, note in unholdable(table, rows):
                found.add(f"{what} {shown(row[0])}"
                          + (f" (set {shown(row[set_index])})" if set_index is not None else "")
                          + f": {note}")
            findings.append(Finding(
                f"unholdable_values_{table.label}", severity, found.count,
                f"{table.name} rows with values their PostgreSQL column cannot hold as they are: "
                "replication writes what the column holds instead (TCGJOBS_STRICT_VALUES makes "
                "these errors)", found.first))
    finally:
        connection.text_factory = str
    return findings


#: Every check, in order. Each returns findings with exact counts; errors make the run exit 3.
CHECKS: list[Check] = [check_integrity, check_foreign_keys, check_orphans, check_required_fields,
                       check_json, check_legacy_encodings, check_totals, check_coverage,
                       check_source_drift, check_unholdable_values]


def check_primary_parity(ctx: JobContext, db: SqliteDatabase, limit: int) -> list[Finding]:
    """SQLite ↔ PostgreSQL parity per table (counts, checksums, differing ids) when a primary is
    configured (see tcgjobs.services.replication); nothing otherwise. A primary tcgjobs never
    replicated into is a warning, not every row missing."""
    import psycopg2

    from tcgjobs.errors import ServiceRefused, ServiceUnavailable
    from tcgjobs.services import postgres
    from tcgjobs.services.replication import NeverReplicated, primary_parity

    try:
        comparisons = primary_parity(ctx.settings, db, ctx.postgres, ctx.check_cancelled)
    except NeverReplicated as exc:
        return [Finding("primary_never_replicated", WARNING, 1,
                        "the primary PostgreSQL was never replicated, so it was not compared", [str(exc)])]
    except (ServiceUnavailable, ServiceRefused, psycopg2.Error) as exc:
        if ctx.cancel.cancelled:
            raise
        if isinstance(exc, psycopg2.Error):  # a lost connection, a statement timeout, ...
            exc = postgres.failure(exc, ctx.settings)
        return [Finding("primary_parity", ERROR, 1, "the primary PostgreSQL cannot be checked",
                        [str(exc)])]
    findings = []
    for c in comparisons or ():
        count = len(c.different) + len(c.missing) + len(c.extra) + len(c.unmappable)
        examples = ([f"different: {k}" for k in c.different] + [f"missing in PostgreSQL: {k}" for k in c.missing]
                    + [f"only in PostgreSQL: {k}" for k in c.extra] + [f"not mappable: {k}" for k in c.unmappable])
        findings.append(Finding(
            f"primary_parity_{c.table}", ERROR, 0 if c.equal else max(count, 1),
            f"{c.table} rows that differ between SQLite ({c.source_rows} rows, checksum "
            f"{c.source_checksum}) and PostgreSQL ({c.primary_rows} rows, checksum {c.primary_checksum})",
            examples[:limit]))
    return findings


def _primary_findings(ctx: JobContext, db: SqliteDatabase) -> tuple[list[Finding], str]:
    """The parity findings, and what was done about the primary (for the details)."""
    if not ctx.options["compare_primary"]:
        logger.info("the primary PostgreSQL is not compared (compare_primary is off)")
        return [], "not compared: compare_primary is off"
    if not ctx.settings.postgres_configured:
        return [], "not configured"
    return check_primary_parity(ctx, db, ctx.options["examples"]), "checked (see the primary findings)"


def _load_source_ids(ctx: JobContext, db: SqliteDatabase) -> tuple[SourceIds | None, str]:
    """The source's ids (in temporary tables of ``db``), or None and why coverage cannot be
    checked."""
    from tcgjobs.sources.coverage import source_ids
    from tcgjobs.sources.layouts import SourceFileError
    from tcgjobs.sources.runtime import load_source

    try:
        source = load_source(ctx.settings)
        if source.is_sample:
            sample = [record["id"] for record in source.read_sets().sets]
            foreign = db.execute_sql(
                "SELECT count(*) FROM pokemon_card_sets WHERE id IS NULL OR id NOT IN "
                f"({', '.join('?' * len(sample))})", sample).fetchone()[0]
            if foreign:
                return None, ("TCGJOBS_DATA_SOURCE is not set and the database holds sets the "
                              "bundled sample lacks")
        return source_ids(source, db, ctx.options["examples"]), ""
    except (ConfigError, SourceFileError) as exc:
        return None, f"card data source unusable: {exc}"


def run(ctx: JobContext) -> JobResult:
    db = ctx.card_db(readonly=True)
    findings: list[Finding] = []
    try:
        source, note = _load_source_ids(ctx, db)
    except UNREADABLE as exc:  # the database's own pages, not the source, failed to read
        if interrupted(exc):
            raise
        source, note = None, f"the database could not be read: {exc}"
    check_context = CheckContext(db, ctx.options["examples"], source, note,
                                 ctx.settings.source_min_coverage_percent, ctx.settings.strict_values)
    for check in CHECKS:
        ctx.check_cancelled()
        findings.extend(_guarded(check, check_context))
    ctx.check_cancelled()  # what the last check found while the run was cancelled is no finding
    primary_findings, primary = _primary_findings(ctx, db)
    findings.extend(primary_findings)
    problems = [f for f in findings if f.count]
    for finding in problems:
        log = logger.error if finding.severity == ERROR else logger.warning
        log("{} {}: {} ({}){}", finding.severity, finding.check, finding.count, finding.description,
            ": " + "; ".join(finding.examples) if finding.examples else "")
    try:
        counts = {row[0]: row[1] for row in db.execute_sql(
            "SELECT 'sets', count(*) FROM pokemon_card_sets UNION ALL SELECT 'cards', count(*) FROM pokemon_cards")}
    except UNREADABLE:
        counts = {"sets": -1, "cards": -1}
    metrics: dict[str, float | int] = {"total_sets": counts["sets"], "total_cards": counts["cards"]}
    metrics.update({f.check: f.count for f in findings})
    errors = [f for f in problems if f.severity == ERROR]
    warnings = [f for f in problems if f.severity == WARNING]
    metrics.update(errors=len(errors), warnings=len(warnings))
    details = {"findings": [f.as_json() for f in findings], "primary": primary}
    summary = (f"{len(errors)} error and {len(warnings)} warning finding(s) in "
               f"{counts['sets']} sets and {counts['cards']} cards")
    if errors:
        text = "; ".join(f"{f.check}: {f.count}" + (f" (e.g. {f.examples[0]})" if f.examples else "")
                         for f in errors)
        return JobResult.problems(f"data integrity errors: {text}", metrics=metrics,
                                  summary=summary, details=details)
    return JobResult(metrics, summary=summary, details=details)
