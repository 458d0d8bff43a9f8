"""Rendering results: rich on a terminal, plain parseable text when piped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from tcgjobs.cli import common
from tcgjobs.config import Settings
from tcgjobs.logging import redact
from tcgjobs.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    from tcgjobs.runner import RunOutcome

RULE = "=" * 50
_STYLE = {"succeeded": "green", "dry-run": "cyan", "skipped": "yellow", "running": "blue"}
_BAD = {"failed", "timeout", "interrupted", "abandoned", "corrupt", "unverifiable"}


def when(moment: datetime | None, zone: tzinfo = UTC) -> str:
    """``2026-11-28 13:17:02 UTC``: ``moment`` in ``zone``, which the suffix names."""
    if moment is None:
        return "-"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S} {zone_name(zone)}"


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def print_outcome(outcome: RunOutcome) -> None:
    """The original's result block, with the outcome and exit code spelled out."""
    lines = [RULE, "JOB RESULT", RULE,
             f"Job:      {outcome.job}",
             f"Run:      {outcome.run_id}",
             f"Outcome:  {outcome.status.value} (exit {int(outcome.exit_code)})",
             f"Trigger:  {outcome.trigger}{' (dry run)' if outcome.dry_run else ''}",
             f"Duration: {outcome.duration_s:.2f}s",
             f"Started:  {outcome.started_at.isoformat(timespec='milliseconds')}",
             f"Finished: {outcome.finished_at.isoformat(timespec='milliseconds')}"]
    if outcome.summary:
        lines.append(f"Summary:  {outcome.summary}")
    if outcome.committed:  # a run that stopped or failed after committing part of its work
        lines.append(f"Committed: {outcome.committed}")
    if outcome.metrics:
        lines += ["", "Metrics:"] + [f"  {key}: {value}" for key, value in outcome.metrics.items()]
    if outcome.error:
        lines += ["", "Error:", f"  {outcome.error}"]
    lines.append(RULE)
    table = outcome.details.get("table") if isinstance(outcome.details, dict) else None
    if table:  # a job's findings as rows (the health check's checks)
        print_table(table["columns"], table["rows"])
    common.print_text("\n".join(lines))


@dataclass(frozen=True)
class Column:
    """A table column and how it gives way on a narrow terminal.

    ``essential``: never dropped, never cut (names to read or copy, statuses). Others are shown
    while they fit, lowest ``rank`` first. ``wrap``: free text that may take several lines (never
    cut inside a word). ``note``: when it does not fit, each row's value is printed under the
    table after the row's essential cells. Datetime cells are shown in the table's zone, named
    under the table on a terminal and after each time when piped.
    """

    header: str
    essential: bool = False
    rank: int = 0
    wrap: bool = False
    note: bool = False


def print_table(columns: Sequence[str | Column], rows: Sequence[Sequence[Any]], title: str | None = None,
                *, zone: tzinfo = UTC, wide: bool = False) -> None:
    """A table fitted to the terminal's width (``wide``: every column, however wide); tab-separated
    lines with a header when piped, every column, nothing abbreviated."""
    spec = [c if isinstance(c, Column) else Column(c, essential=True) for c in columns]
    if not common.is_terminal():
        common.print_text("\t".join(c.header for c in spec))
        for row in rows:
            common.print_text("\t".join(when(cell, zone) if isinstance(cell, datetime) else str(cell)
                                        for cell in row))
        return
    cells = [[redact(_short(cell, zone) if isinstance(cell, datetime) else str(cell)) for cell in row]
             for row in rows]
    headers = [c.header for c in spec]
    console = common.stdout()
    shown = list(range(len(spec))) if wide else _fit(spec, headers, cells, console.width)
    _render(spec, headers, cells, shown, title, wide)
    hidden = [i for i in range(len(spec)) if i not in shown]
    for row in cells:
        for i in hidden:
            if spec[i].note and row[i]:
                key = " ".join(row[j] for j in shown if spec[j].essential and not spec[j].wrap)
                _print_wrapped(f"{key}: {row[i]}", console.width)
    notes = []
    if any(isinstance(row[i], datetime) for row in rows for i in shown):
        notes.append(f"times in {zone_name(zone)}")
    dropped = [spec[i].header for i in hidden if not spec[i].note]
    if dropped:
        notes.append(f"{', '.join(dropped)} not shown at {console.width} columns (--wide shows all)")
    if notes:
        _print_wrapped(f"({'; '.join(notes)})", console.width)


def _print_wrapped(text: str, width: int) -> None:
    """``text`` in lines of ``width``, broken between words only (a path stays whole to copy)."""
    import textwrap

    common.print_text("\n".join(textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False,
                                              break_on_hyphens=False)))


def _short(moment: datetime, zone: tzinfo) -> str:
    """``11-28 13:17`` in ``zone``, with the year when it is not this year's."""
    local = moment.astimezone(zone)
    return f"{local:%m-%d %H:%M}" if local.year == datetime.now(zone).year else f"{local:%Y-%m-%d %H:%M}"


def _width(spec: Column, header: str, values: list[str]) -> int:
    """The least width ``spec`` needs: its longest cell, or for wrapped text its longest word."""
    texts = [header, *values]
    if spec.wrap:
        return max((len(word) for text in texts for word in text.split()), default=1)
    return max(len(text) for text in texts)


def _fit(spec: list[Column], headers: list[str], cells: list[list[str]], width: int) -> list[int]:
    """The columns to show within ``width``: every essential one, then others by rank while they fit."""
    need = {i: _width(spec[i], headers[i], [row[i] for row in cells]) + 2 for i in range(len(spec))}
    shown = [i for i, c in enumerate(spec) if c.essential]
    used = sum(need[i] for i in shown)
    for i in sorted((i for i, c in enumerate(spec) if not c.essential), key=lambda i: spec[i].rank):
        if used + need[i] <= width:
            shown.append(i)
            used += need[i]
    return sorted(shown)


def _render(spec: list[Column], headers: list[str], cells: list[list[str]], shown: list[int],
            title: str | None, wide: bool) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    for i in shown:
        table.add_column(headers[i], no_wrap=not spec[i].wrap or wide, overflow="fold",
                         min_width=_width(spec[i], headers[i], [row[i] for row in cells]))
    for row in cells:
        styled = []
        for i in shown:
            style = _STYLE.get(row[i], "red" if row[i] in _BAD else "") if spec[i].header == "status" else ""
            styled.append(Text(row[i], style=style))
        table.add_row(*styled)
    console = common.stdout()
    if wide:  # as wide as the content: the terminal wraps long lines, nothing is cut
        needed = sum(max(len(text) for text in [headers[i], *(row[i] for row in cells)]) + 2 for i in shown)
        console = Console(width=max(console.width, needed), highlight=False)
    console.print(table)


class _RichReporter:
    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Any]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=common.stderr(), transient=True) as bar:
            task = bar.add_task(description, total=total)

            class _Advance:
                def advance(self, amount: int = 1) -> None:
                    bar.advance(task, amount)

            yield _Advance()


def reporter_for(as_json: bool, settings: Settings) -> Reporter:
    """Progress bars only for a person at a terminal."""
    if as_json or common.quiet() or settings.log_format == "json" or not common.stderr_is_terminal():
        return NullReporter()
    return _RichReporter()
