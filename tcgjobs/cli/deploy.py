"""``tcgjobs deploy``: CronJobs, a crontab, Prometheus rules and a Grafana dashboard from the registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tcgjobs import __version__
from tcgjobs.cli import common
from tcgjobs.deploy.crontab import DEFAULT_ENV_FILE, DEFAULT_LOG_DIR, DEFAULT_USER, render_crontab
from tcgjobs.errors import UsageError

DEFAULT_IMAGE = f"tcgjobs:{__version__}"
DEFAULT_NAMESPACE = "tcgjobs"

deploy_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="Render deploy files (Kubernetes CronJobs, crontab, Prometheus rules, a Grafana "
                              "dashboard) from the job registry and the current settings.")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _emit(text: str, output: Path | None) -> None:
    """Print ``text`` as is, or write it to ``output`` and say so."""
    if output is None:
        sys.stdout.write(text)
        return
    _write(output, text)
    common.print_text(f"wrote {output}")


@deploy_app.command("k8s")
def k8s(
    image: Annotated[str, typer.Option("--image", metavar="IMAGE", help="Container image of every job.")]
    = DEFAULT_IMAGE,
    namespace: Annotated[str, typer.Option("--namespace", metavar="NAME", help="Namespace of every resource.")]
    = DEFAULT_NAMESPACE,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="DIR", file_okay=False,
        help="Write the kustomize base into DIR (kubectl apply -k DIR). Default: print every "
             "resource as one YAML stream (kubectl apply -f -).")] = None,
) -> None:
    """Kubernetes CronJobs, volumes and settings: one CronJob per job."""
    from tcgjobs.deploy.k8s import render_k8s  # PyYAML: loaded only for this command

    settings = common.settings()
    try:
        bundle = render_k8s(settings, image=image, namespace=namespace)
    except ValueError as exc:
        common.exit_with(UsageError(str(exc)))
    if output is None:
        sys.stdout.write(bundle.stream())
        return
    files = bundle.files()
    # A job removed from the registry must not leave its CronJob behind.
    for stale in output.glob("cronjob-*.yaml"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        _write(output / name, text)
    common.print_text(f"wrote {len(files)} files to {output}")


@deploy_app.command("crontab")
def crontab(
    user: Annotated[str, typer.Option("--user", metavar="USER", help="User the jobs run as.")] = DEFAULT_USER,
    env_file: Annotated[str, typer.Option("--env-file", metavar="FILE", help="Settings file every line sources.")]
    = DEFAULT_ENV_FILE,
    log_dir: Annotated[str, typer.Option("--log-dir", metavar="DIR", help="Directory of the per-job logs.")]
    = DEFAULT_LOG_DIR,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write the file there (e.g. /etc/cron.d/tcgjobs). Default: print it.")] = None,
) -> None:
    """A file for /etc/cron.d: one line per job."""
    settings = common.settings()
    try:
        text = render_crontab(settings, user=user, env_file=env_file, log_dir=log_dir)
    except ValueError as exc:
        common.exit_with(UsageError(str(exc)))
    _emit(text, output)


@deploy_app.command("prometheus-rules")
def prometheus_rules(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write the rules file there (a rule_files: entry of prometheus.yml). Default: print it.")]
    = None,
    component: Annotated[Path | None, typer.Option(
        "--component", metavar="DIR", file_okay=False,
        help="Write a kustomize component with the rules as a PrometheusRule into DIR instead "
             "(components: [DIR] in an overlay; needs the Prometheus Operator).")] = None,
    namespace: Annotated[str, typer.Option("--namespace", metavar="NAME", help="Namespace of the PrometheusRule.")]
    = DEFAULT_NAMESPACE,
    runbook_base: Annotated[str, typer.Option(
        "--runbook-url", metavar="URL", help="Where docs/alerts.md is published; each alert's runbook_url "
                                             "is URL#<alert name in lower case>.")] = "docs/alerts.md",
) -> None:
    """Prometheus recording and alerting rules: late, failing, absent jobs, stale backups, health."""
    from tcgjobs.deploy import prometheus  # PyYAML: loaded only for this command
    from tcgjobs.deploy.alerts import render_rules

    ruleset = render_rules(common.settings())
    if component is not None:
        files = prometheus.component_files(ruleset, namespace, runbook_base)
        for name, text in files.items():
            _write(component / name, text)
        common.print_text(f"wrote {len(files)} files to {component}")
        return
    text = prometheus.rules_file(ruleset, runbook_base)
    _emit(text, output)


@deploy_app.command("grafana-dashboard")
def grafana_dashboard(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", dir_okay=False,
        help="Write the dashboard JSON there. Default: print it.")] = None,
) -> None:
    """A Grafana dashboard (JSON to import) for every job: successes, exit codes, durations, backups."""
    from tcgjobs.deploy.grafana import render_dashboard  # grafana-foundation-sdk: only here

    text = render_dashboard(common.settings())
    _emit(text, output)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")
