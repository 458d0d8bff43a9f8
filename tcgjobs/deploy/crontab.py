"""An /etc/cron.d file rendered from the job registry.

One line per job with the registry's (or the overridden) schedule, run as ``user``, in the zone
of TCGJOBS_TIMEZONE (``CRON_TZ``, honoured by cronie; see docs/deploy.md for cron daemons that
ignore it). Each line sends its output to ``<log dir>/<job>.log``, reads the settings from the
environment file (``KEY=value`` lines, sourced by /bin/sh with ``set -a``) and runs
``tcgjobs run <job> --trigger schedule``. Nothing here duplicates tcgjobs itself: no flock (it
locks itself), no timeout wrapper (it enforces its deadline), no retry loop. The sync jobs first
``git pull`` the card data checkout at TCGJOBS_DATA_SOURCE; if the pull fails they sync the
previous checkout, which is harmless (the sync is idempotent) and says so in the log.
A disabled job's line is kept, commented out, so the file always shows every job.
"""

from __future__ import annotations

from tcgjobs.config import Settings
from tcgjobs.deploy.plan import JobPlan, plan_all

DEFAULT_USER = "tcgjobs"
DEFAULT_ENV_FILE = "/etc/tcgjobs/env"
DEFAULT_LOG_DIR = "/var/log/tcgjobs"
DEFAULT_PATH = "/opt/tcgjobs/bin:/usr/local/bin:/usr/bin:/bin"
DISABLED_MARK = "# disabled by "


def _command(plan: JobPlan, env_file: str, log_dir: str) -> str:
    steps = [f"exec >>{log_dir}/{plan.name}.log 2>&1", f"set -a; . {env_file}; set +a"]
    if plan.reads_card_data:
        steps.append('git -C "$TCGJOBS_DATA_SOURCE" pull --ff-only --quiet || echo "tcgjobs: git pull'
                     ' of $TCGJOBS_DATA_SOURCE failed; syncing the previous checkout"')
    steps.append(f"exec tcgjobs run {plan.name} --trigger schedule")
    return "; ".join(steps)


def _env_value(value: str) -> str:
    """A crontab environment value; cron strips one pair of surrounding double quotes."""
    return f'"{value}"' if any(c.isspace() for c in value) else value


def job_line(plan: JobPlan, user: str, env_file: str, log_dir: str) -> str:
    line = f"{plan.schedule} {user} {_command(plan, env_file, log_dir)}"
    if not plan.enabled:
        return f"{DISABLED_MARK}{plan.disabled_by}: {line}"
    return line


def render_crontab(settings: Settings, user: str = DEFAULT_USER, env_file: str = DEFAULT_ENV_FILE,
                   log_dir: str = DEFAULT_LOG_DIR) -> str:
    """The cron.d file for every registered job under ``settings``."""
    plans = plan_all(settings)
    if any(c.isspace() or c in "%;'\"$" for value in (user, env_file, log_dir) for c in value):
        raise ValueError("user, environment file and log directory must not contain spaces, %, ;, "
                         "quotes or $")
    lines = [
        "# /etc/cron.d/tcgjobs: rendered by `tcgjobs deploy crontab` from the job registry.",
        "# Do not edit by hand: change the settings (TCGJOBS_<JOB>_SCHEDULE, _ENABLED, _TIMEOUT,",
        "# TCGJOBS_TIMEZONE) and render again. Install and log rotation: docs/deploy.md.",
        f"# Every line reads the settings from {env_file} (KEY=value lines; quote values that",
        "# contain spaces) and appends its output to its own log. tcgjobs locks, times out and",
        "# records every run itself, so there is no flock or timeout here.",
        "SHELL=/bin/sh",
        f"PATH={DEFAULT_PATH}",
        f"CRON_TZ={settings.timezone.key}",
        "# Settings the schedules below depend on; every run must see the same values.",
        f"TCGJOBS_TIMEZONE={settings.timezone.key}",
    ]
    for plan in plans:
        lines += [f"{name}={_env_value(value)}" for name, value in plan.overrides]
    lines += ["", "# m h dom mon dow user command"]
    for plan in plans:
        lines.append(f"# {plan.name}: timeout {plan.timeout}s" + (
            "; first pulls the card data at TCGJOBS_DATA_SOURCE" if plan.reads_card_data else ""))
        lines.append(job_line(plan, user, env_file, log_dir))
    return "\n".join(lines) + "\n"
