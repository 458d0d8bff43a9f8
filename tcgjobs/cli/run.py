"""``tcgjobs run JOB``: one subcommand per registered job, with that job's own options."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from tcgjobs import parsers
from tcgjobs.cancel import SignalRouter
from tcgjobs.cli import common
from tcgjobs.cli.output import print_outcome, reporter_for
from tcgjobs.errors import ExitCode
from tcgjobs.observers import default_observers
from tcgjobs.registry import Job, all_jobs
from tcgjobs.runner import TRIGGERS, RunRequest, run_job


class JobGroup(TyperGroup):
    """Lists the valid job names when the name given is not one of them."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.commands:
            common.fail(f"unknown job {name!r}; valid jobs: {', '.join(self.commands)}", ExitCode.USAGE)
        return super().resolve_command(ctx, args)


def exit_codes_help() -> str:
    """What each exit code of a run means, one line each (kept as is by click's ``\\b``)."""
    return "\b\nExit codes:\n" + "\n".join(f"  {int(code):>3}  {code.meaning}" for code in ExitCode)


run_app = typer.Typer(cls=JobGroup, no_args_is_help=True, rich_markup_mode=None,
                      help="Run one job now and exit with its status code.", epilog=exit_codes_help())


def _parse_options(job: Job, raw: dict[str, Any]) -> dict[str, Any]:
    """Job option values from the command line (None: not given). Exits 2 on a bad value."""
    values: dict[str, Any] = {}
    for option in job.options:
        value = raw.get(option.name)
        if value is not None and option.kind is not bool:
            try:
                value = option.parser(value)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=option.flag) from None
        values[option.name] = value
    return values


def _parse_timeout(raw: str | None) -> float | None:
    """``--timeout`` through the parser of TCGJOBS_<JOB>_TIMEOUT. Exits 2 on a bad value."""
    if raw is None:
        return None
    try:
        return parsers.parse_timeout(raw)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--timeout") from None


def _execute(job: Job, dry_run: bool, raw_timeout: str | None, ignore_deps: bool,
             as_json: bool, trigger: str, *, raw_options: dict[str, Any]) -> None:
    settings = common.settings()
    options = _parse_options(job, raw_options)
    timeout = _parse_timeout(raw_timeout)
    if trigger not in TRIGGERS:
        raise typer.BadParameter(f"expected one of {', '.join(TRIGGERS)}", param_hint="--trigger")
    # From here until the process exits, SIGTERM and SIGINT belong to the run: they cancel it
    # while it works, cut its notifications short after it, and are ignored once it is shown,
    # so the exit code is always the one the ledger records.
    signals = SignalRouter.installed()
    try:
        with common.errors_exit():
            outcome = run_job(
                RunRequest(job=job, settings=settings, options=options, dry_run=dry_run,
                           timeout=timeout, ignore_deps=ignore_deps, trigger=trigger,
                           reporter=reporter_for(as_json, settings)),
                observers=default_observers(settings), signals=signals)
        if as_json:
            common.print_json({"run": outcome.as_json()}, exit_code=outcome.exit_code, error=outcome.error)
        else:
            print_outcome(outcome)
    finally:
        if signals is not None:
            signals.ignore_until_exit()
    common.exit_code(outcome.exit_code if outcome.exit_code is not ExitCode.OK else 0)


def _command_for(job: Job) -> Any:
    def command(**kwargs: Any) -> None:
        _execute(job, kwargs.pop("dry_run"), kwargs.pop("timeout"), kwargs.pop("ignore_deps", False),
                 kwargs.pop("as_json"), kwargs.pop("trigger"), raw_options=kwargs)

    params = [
        inspect.Parameter("dry_run", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--dry-run", help="Report what the job would do; write nothing.")]),
        inspect.Parameter("timeout", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            str | None, typer.Option("--timeout", metavar="SECONDS",
                                     help=f"Deadline of this run, at least 1 (default {job.timeout:g}s).")]),
    ]
    if job.depends_on:  # offered only where there is something to ignore
        params.append(inspect.Parameter("ignore_deps", inspect.Parameter.KEYWORD_ONLY, default=False,
                                        annotation=Annotated[bool, typer.Option(
                                            "--ignore-deps", help="Run even if a dependency has not succeeded.")]))
    params += [
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--json", help="Print the result as JSON.")]),
        inspect.Parameter("trigger", inspect.Parameter.KEYWORD_ONLY, default="manual", annotation=Annotated[
            str, typer.Option("--trigger", metavar="manual|schedule",
                              help="Who started the run (deploy files pass 'schedule').")]),
    ]
    for option in job.options:
        annotation: Any
        if option.kind is bool:
            flag = f"{option.flag}/--no-{option.flag[2:]}"
            annotation = Annotated[bool | None, typer.Option(flag, help=option.help)]
        else:
            annotation = Annotated[str | None, typer.Option(
                option.flag, metavar=option.kind.__name__.upper(),
                help=option.help if callable(option.default)  # a default that follows a setting
                else f"{option.help} [default: {option.default}]")]
        params.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=annotation))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = job.module_name
    command.__doc__ = job.help
    return command


for _job in all_jobs().values():
    run_app.command(name=_job.name)(_command_for(_job))


def register(app: typer.Typer) -> None:
    app.add_typer(run_app, name="run")
