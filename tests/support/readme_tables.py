"""The README's job, exit-code, settings and alert tables, rendered from the code.

``python -m tests.support.readme_tables`` rewrites the tables between their markers in README.md;
tests/test_readme.py fails when the README and the code disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tcgjobs.config import all_settings
from tcgjobs.errors import ExitCode
from tcgjobs.parsers import format_value
from tcgjobs.registry import all_jobs
from tcgjobs.schedule import describe

README = Path(__file__).resolve().parents[2] / "README.md"


def jobs_table() -> str:
    lines = ["| job | schedule (UTC) | timeout | depends on | writes | what it does |",
             "|---|---|---|---|---|---|"]
    for job in all_jobs().values():
        lines.append(f"| `{job.name}` | `{job.schedule}` ({describe(job.schedule)}) | {job.timeout:g} s | "
                     f"{', '.join(f'`{d}`' for d in job.depends_on) or '—'} | "
                     f"{', '.join(sorted(r.value for r in job.writes)) or '—'} | {job.help} |")
    return "\n".join(lines)


def exit_codes_table() -> str:
    lines = ["| code | name | meaning | Kubernetes retries |", "|---|---|---|---|"]
    for code in ExitCode:
        retry = "—" if code is ExitCode.OK else ("yes" if code.retryable else "no")
        lines.append(f"| {int(code)} | `{code.name}` | {code.meaning} | {retry} |")
    return "\n".join(lines)


def _default(setting) -> str:
    if callable(setting.default):
        return "see description"
    text = format_value(setting.default)
    return f"`{text}`" if text else "—"


def settings_table() -> str:
    lines = ["| variable | default | description |", "|---|---|---|"]
    for setting in all_settings():
        notes = []
        if setting.secret:
            notes.append(f"secret; `{setting.variable}_FILE` reads it from a file")
        if len(setting.env) > 1:
            notes.append("also " + ", ".join(f"`{v}`" for v in setting.env[1:]))
        if setting.deprecated_env:
            notes.append("deprecated alias " + ", ".join(f"`{v}`" for v in setting.deprecated_env))
        help_text = setting.help.replace("|", "\\|") + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(f"| `{setting.variable}` | {_default(setting)} | {help_text} |")
    return "\n".join(lines)


def alerts_table() -> str:
    """The alerts of ``tcgjobs deploy prometheus-rules`` under the default settings."""
    from tcgjobs.config import load_settings
    from tcgjobs.deploy.alerts import render_rules

    lines = ["| alert | fires when | severity |", "|---|---|---|"]
    for family in render_rules(load_settings({})).families:
        lines.append(f"| [`{family.name}`](docs/alerts.md#{family.name.lower()}) | {family.condition} | "
                     f"{family.severity} |")
    return "\n".join(lines)


TABLES = {"jobs": jobs_table, "exit-codes": exit_codes_table, "settings": settings_table,
          "alerts": alerts_table}


def section(text: str, name: str) -> str | None:
    match = re.search(rf"<!-- BEGIN {name} -->\n(.*?)<!-- END {name} -->", text, re.S)
    return match.group(1).rstrip("\n") if match else None


def rewrite(text: str) -> str:
    for name, render in TABLES.items():
        text = re.sub(rf"<!-- BEGIN {name} -->\n.*?<!-- END {name} -->",
                      lambda m, n=name, r=render: f"<!-- BEGIN {n} -->\n{r()}\n<!-- END {n} -->",
                      text, flags=re.S)
    return text


if __name__ == "__main__":
    README.write_text(rewrite(README.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"rewrote the tables in {README}\n")
