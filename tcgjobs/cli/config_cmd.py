"""``tcgjobs config``: the effective settings and where each came from, secrets redacted."""

from __future__ import annotations

from typing import Annotated

import typer

from tcgjobs.cli import common
from tcgjobs.cli.common import JsonOption
from tcgjobs.cli.output import Column, print_table
from tcgjobs.config_check import check_setup, overall_exit_code
from tcgjobs.parsers import format_value

REDACTED = "<redacted>"


def config(
    as_json: JsonOption = False,
    check: Annotated[bool, typer.Option("--check", help="Also test that paths are writable and "
                                        "configured services answer and accept us; exit 78 when "
                                        "a setting must change, else 69 when a service cannot "
                                        "be reached.")] = False,
) -> None:
    """Show the effective settings (secrets redacted)."""
    settings = common.settings()
    entries = []
    for setting in settings.table:
        value = settings.get(setting.name)
        shown = REDACTED if setting.secret and value else format_value(value)
        entries.append({"name": setting.name, "variable": setting.variable, "value": shown,
                        "source": settings.sources[setting.name]})
    results = check_setup(settings) if check else []
    failed = [r for r in results if not r.ok]
    code = overall_exit_code(results)
    if as_json:
        common.print_json({"settings": entries, "warnings": settings.warnings,
                           "checks": [r.as_json() for r in results]},
                          exit_code=code, error="; ".join(f"{r.name}: {r.detail}" for r in failed))
    else:
        print_table(["variable", "value", "source"], [(e["variable"], e["value"], e["source"]) for e in entries])
        for warning in settings.warnings:
            common.print_text(f"warning: {warning}")
        if results:
            print_table([Column("check", essential=True), Column("result", essential=True),
                         Column("detail", essential=True, wrap=True)],
                        [(r.name, "ok" if r.ok else f"FAILED ({int(r.exit_code)})", r.detail) for r in results])
    common.exit_code(code)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
