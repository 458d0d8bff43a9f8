"""What both sync jobs (and validate-data-integrity) do with a source and the card database:
say loudly which source is used, refuse to mix the sample into real data, and read the database
in a way that also works for ``--dry-run`` (read-only, or an absent database treated as empty).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from loguru import logger
from peewee import SqliteDatabase

from tcgjobs.config import Settings
from tcgjobs.errors import ConfigError
from tcgjobs.sources.drift import accepted_names, watched_columns
from tcgjobs.sources.layouts import Source, SourceLimits, open_source
from tcgjobs.sources.rows import TableRows


def load_source(settings: Settings) -> Source:
    """The configured source (logged; the sample loudly). Raises ConfigError when unusable."""
    limits = SourceLimits(settings.source_max_file_size, settings.source_max_field_size)
    source = open_source(settings.data_source, settings.data_language, limits)
    if source.is_sample:
        logger.warning("USING THE BUNDLED SAMPLE DATASET ({}): TCGJOBS_DATA_SOURCE is not set. "
                       "This is demo data, not the real card catalogue.", source.root)
    else:
        logger.info("card data source: {}", source.describe())
    return source


def sync_database(open_card_db: Callable[..., SqliteDatabase], path: Path,
                  dry_run: bool) -> SqliteDatabase | None:
    """The card database at ``path`` for a sync job, opened with ``open_card_db`` (the run's
    ``JobContext.card_db``): created when missing, or for ``--dry-run`` opened read-only (None
    when it does not exist yet, meaning "empty")."""
    if dry_run:
        if not path.exists():
            logger.info("dry run: card database {} does not exist yet; planning against an empty "
                        "database", path)
            return None
        return open_card_db(readonly=True)
    db = open_card_db(create=True)
    # WAL + synchronous=NORMAL: each per-set commit stays atomic (a crash or kill -9 leaves every
    # set fully old or fully new) but skips an fsync per commit; a power cut may lose the last
    # committed sets, which the next run, being idempotent, writes again.
    db.execute_sql("PRAGMA synchronous = NORMAL")
    return db


def refuse_sample_mix(source: Source, source_set_ids: Iterable[str], db_set_ids: Iterable[str]) -> None:
    """Raise ConfigError when the sample would be loaded into a database holding other sets."""
    if not source.is_sample:
        return
    foreign = sorted(set(db_set_ids) - set(source_set_ids))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(
            f"refusing to load the bundled sample dataset into {len(foreign)} set(s) of real data "
            f"({shown}): set TCGJOBS_DATA_SOURCE to the card data directory")


def table_columns(db: SqliteDatabase, table: str) -> set[str]:
    return {row[1] for row in db.execute_sql(f'PRAGMA table_info("{table}")').fetchall()}


def select_list(db: SqliteDatabase, table: str, columns: Sequence[str]) -> str:
    """A SELECT column list for ``columns``; a column an older (read-only, unmigrated) database
    lacks reads as NULL, so a dry run works on any schema version."""
    present = table_columns(db, table)
    return ", ".join(f'"{c}"' if c in present else f'NULL AS "{c}"' for c in columns)


def fetch(db: SqliteDatabase | None, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql``, or none when there is no database (dry run before the first sync)."""
    if db is None:
        return []
    return db.execute_sql(sql, params).fetchall()


def examples(items: Sequence[str], limit: int = 5) -> str:
    """``a, b, c and 7 more``: a short list for a log line or summary."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def accepted_drift(text: str, rows: TableRows, variable: str) -> frozenset[str]:
    """The fields whose drift the operator accepts (a sync job's accept_drift option). Raises
    ConfigError naming the option when one is not a field drift can empty."""
    try:
        return accepted_names(text, rows.table, watched_columns(rows))
    except ValueError as exc:
        raise ConfigError(f"--accept-drift ({variable}): {exc}") from None


def report_unknown_fields(what: str, unknown: Counter[str]) -> str:
    """Log each field the source carries under a name no column has (kept in ``extra``; maybe a
    renamed field) and return the summary's note about them ("" when there are none)."""
    for name, count in unknown.most_common():
        logger.warning("{} field {!r} is unknown (no column has that name) in {} record(s): kept "
                       "in the extra column; a field renamed upstream?", what, name, count)
    if not unknown:
        return ""
    shown = ", ".join(f"{name} ({count})" for name, count in unknown.most_common(5))
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return f"; unknown {what} fields kept in extra: {shown}{more}"
