"""``list``, ``status`` and ``history``: they read the registry and the ledger, never write."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated

import typer

from tcgjobs.cli import common, completion
from tcgjobs.cli.common import JsonOption, WideOption
from tcgjobs.cli.output import Column, print_table, seconds, when
from tcgjobs.config import Settings
from tcgjobs.db.state import RunStatus, Silence, StateView, StoredCheck, open_view
from tcgjobs.errors import ExitCode, UsageError
from tcgjobs.jobstatus import JobStatus, job_status
from tcgjobs.registry import Job, all_jobs, get_job, recorded_names
from tcgjobs.runner import stale_after
from tcgjobs.schedule import describe, next_due
from tcgjobs.services.alerting import silences_in_effect
from tcgjobs.times import utcnow

JobArgument = Annotated[str | None, typer.Argument(help="One job (default: all).",
                                                   autocompletion=completion.job_names)]

JOB_COLUMNS = [Column("job", essential=True), Column("state", rank=1), Column("schedule", rank=2),
               Column("in words", rank=5, wrap=True), Column("timeout", rank=4),
               Column("depends on", rank=6, wrap=True), Column("next due", rank=3)]
STATUS_COLUMNS = [Column("job", essential=True), Column("status", essential=True, wrap=True),
                  Column("last start", rank=2), Column("duration", rank=4), Column("next due", rank=3),
                  Column("attention", rank=1, wrap=True), Column("last error", rank=5, wrap=True, note=True)]
HEALTH_COLUMNS = [Column("check", essential=True), Column("level", essential=True), Column("since", rank=2),
                  Column("detail", rank=1, wrap=True)]
HISTORY_COLUMNS = [Column("started", essential=True), Column("job", essential=True),
                   Column("status", essential=True, wrap=True), Column("exit", rank=1),
                   Column("duration", rank=3), Column("trigger", rank=4), Column("run", rank=2),
                   Column("error or summary", rank=5, wrap=True, note=True)]


def _view(settings: Settings) -> StateView:
    with common.errors_exit():
        return open_view(settings.state_path, busy_timeout_ms=settings.busy_timeout_ms,
                         stale_after=stale_after(settings))


def _health(view: StateView) -> list[StoredCheck]:
    return list(view.checks().values())


def _silences(view: StateView, settings: Settings, now: datetime) -> list[Silence]:
    """Active silences: ``notify silence`` ones and TCGJOBS_SILENCE_UNTIL, ending soonest first."""
    return silences_in_effect(view.silences(now), settings, now)


def _jobs(name: str | None) -> list[Job]:
    if name is None:
        return list(all_jobs().values())
    try:
        return [get_job(name)]
    except KeyError as exc:
        common.exit_with(UsageError(exc.args[0]))


def _status_text(s: JobStatus, zone: tzinfo) -> str:
    """The last outcome; a run still in progress is named even when a refused attempt came later."""
    if s.last_status is None:
        return "never run"
    if s.running is not None and s.last_status is not RunStatus.RUNNING:
        return f"running since {when(s.running.started_at, zone)}; last attempt {s.last_status.value}"
    return s.last_status.value


def list_jobs(as_json: JsonOption = False, wide: WideOption = False) -> None:
    """List every job: schedule, timeout, dependencies, what it writes, next due."""
    settings = common.settings()
    now = utcnow()
    entries = []
    for job in all_jobs().values():
        config = settings.job(job)
        entries.append({
            "job": job.name, "enabled": config.enabled,
            "schedule": config.schedule, "schedule_words": describe(config.schedule),
            "timezone": settings.timezone.key, "timeout_s": config.timeout,
            "depends_on": list(job.depends_on), "writes": sorted(r.value for r in job.writes),
            "next_due": next_due(config.schedule, settings.timezone, now).isoformat(),
            "help": job.help,
        })
    if as_json:
        common.print_json({"jobs": entries})
        return
    rows = [(e["job"], "on" if e["enabled"] else "off",
             e["schedule"], e["schedule_words"], f"{e['timeout_s']:g}s", ", ".join(e["depends_on"]) or "-",
             datetime.fromisoformat(e["next_due"])) for e in entries]
    print_table(JOB_COLUMNS, rows, zone=settings.timezone, wide=wide)


def status(
    job: JobArgument = None,
    as_json: JsonOption = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when any enabled job is late or failing.")] = False,
    wide: WideOption = False,
) -> None:
    """Each job's last outcome, next due time, lateness and failure streak."""
    settings = common.settings()
    view = _view(settings)
    now = utcnow()
    statuses = [job_status(j, settings, view, now) for j in _jobs(job)]
    attention = [s for s in statuses if s.needs_attention]
    health = _health(view) if job is None else []  # the last recorded health checks
    silenced = _silences(view, settings, now)
    code = ExitCode.PROBLEMS if check and attention else ExitCode.OK
    if as_json:
        common.print_json({"generated_at": now.isoformat(), "jobs": [s.as_json() for s in statuses],
                           "needs_attention": [s.job for s in attention],
                           "health": [c.as_json() for c in health],
                           "silences": [{"id": s.id, "until": s.until.isoformat(), "reason": s.reason}
                                        for s in silenced]},
                          exit_code=code, error=f"late or failing: {', '.join(s.job for s in attention)}")
    else:
        _print_status(statuses, health, settings.timezone, wide)
        for silence in silenced:
            common.print_text(f"alerts silenced until {when(silence.until, settings.timezone)}"
                              + (f" (silence {silence.id})" if silence.id is not None else "")
                              + (f": {silence.reason}" if silence.reason else ""))
    common.exit_code(code)


def _print_status(statuses: list[JobStatus], health: list[StoredCheck], zone: tzinfo, wide: bool) -> None:
    """The jobs' table, then the last health checks'."""
    rows = []
    for s in statuses:
        last = s.last_run
        flags = []
        if not s.enabled:
            flags.append("disabled")
        if s.late:
            flags.append(f"LATE since {when(s.late_since, zone)}")
        if s.consecutive_failures:
            flags.append(f"{s.consecutive_failures} failure(s) in a row")
        rows.append((s.job, _status_text(s, zone), last.started_at if last else "-",
                     seconds(last.duration_s) if last else "-", s.next_due, ", ".join(flags) or "ok",
                     (last.error or "") if last else ""))
    print_table(STATUS_COLUMNS, rows, zone=zone, wide=wide)
    if health:
        common.print_text("")
        print_table(HEALTH_COLUMNS, [(c.name, c.level.value, c.level_since, c.detail) for c in health],
                    title=f"health (checked {when(max(c.checked_at for c in health), zone)})",
                    zone=zone, wide=wide)


def history(
    job: JobArgument = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs, newest first.")] = 20,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Recent runs from the ledger, newest first (JOB: a job, or backup-restore)."""
    settings = common.settings()
    if job is not None and job not in recorded_names():
        common.exit_with(UsageError(f"unknown job {job!r}; the ledger records: {', '.join(recorded_names())}"))
    view = _view(settings)
    now = utcnow()
    runs = view.runs(job, limit=limit)
    if as_json:
        common.print_json({"runs": [dict(r.as_json(), status=r.effective_status(now, view.stale_after).value)
                                    for r in runs]})
        return
    rows = [(r.started_at, r.job, r.effective_status(now, view.stale_after).value,
             "-" if r.exit_code is None else r.exit_code, seconds(r.duration_s),
             r.trigger + (" (dry run)" if r.dry_run else ""), r.run_id[:8], r.error or r.summary or "")
            for r in runs]
    print_table(HISTORY_COLUMNS, rows, zone=settings.timezone, wide=wide)


def register(app: typer.Typer) -> None:
    app.command("list")(list_jobs)
    app.command("status")(status)
    app.command("history")(history)
