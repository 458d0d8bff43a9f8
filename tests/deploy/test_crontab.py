"""``tcgjobs deploy crontab``: an /etc/cron.d file with one line per job, parsed and run for real."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter

from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs
from tests.conftest import invoke
from tests.deploy.conftest import DEPLOY_DIR

ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
RUN = re.compile(r"exec tcgjobs run (\S+) --trigger schedule$")
DISABLED = re.compile(r"^# disabled by (\S+=false|\S+ unset): (.*)$")


@dataclass
class CronLine:
    schedule: str
    user: str
    command: str
    enabled: bool

    @property
    def job(self) -> str:
        match = RUN.search(self.command)
        assert match, self.command
        return match.group(1)


@dataclass
class Crontab:
    env: dict[str, str]
    lines: list[CronLine]

    def by_job(self) -> dict[str, CronLine]:
        return {line.job: line for line in self.lines}


def parse(text: str) -> Crontab:
    """A cron.d file: environment lines, job lines (5 fields, user, command), disabled lines."""
    env: dict[str, str] = {}
    lines: list[CronLine] = []
    for raw in text.splitlines():
        enabled = True
        disabled = DISABLED.match(raw)
        if disabled:
            raw, enabled = disabled.group(2), False
        elif not raw.strip() or raw.startswith("#"):
            continue
        elif match := ENV_LINE.match(raw):
            env[match.group(1)] = match.group(2).strip('"')
            continue
        fields = raw.split(None, 6)
        assert len(fields) == 7, raw
        lines.append(CronLine(" ".join(fields[:5]), fields[5], fields[6], enabled))
    return Crontab(env, lines)


def render(cli, *args: str) -> str:
    result = invoke(cli, "deploy", "crontab", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_committed_crontab_equals_the_current_render(cli):
    assert (DEPLOY_DIR / "crontab").read_text() == render(cli), (
        "deploy/crontab has drifted; run: tcgjobs deploy crontab --output deploy/crontab")


def test_crontab_has_every_job_on_its_registry_schedule_in_utc(cli):
    crontab = parse(render(cli))
    assert crontab.env["CRON_TZ"] == "UTC"
    assert crontab.env["TCGJOBS_TIMEZONE"] == "UTC"
    assert crontab.env["SHELL"] == "/bin/sh"
    lines = crontab.by_job()
    assert list(lines) == list(all_jobs())
    for name, job in all_jobs().items():
        line = lines[name]
        assert line.schedule == job.schedule and croniter.is_valid(line.schedule)
        assert line.user == "tcgjobs" and line.enabled is (job.needs is None)  # upload-backups: no URL
        assert line.command.startswith(f"exec >>/var/log/tcgjobs/{name}.log 2>&1; ")
        assert "set -a; . /etc/tcgjobs/env; set +a" in line.command
        assert "flock" not in line.command and "timeout " not in line.command
        assert "%" not in line.command  # cron would turn it into a newline


def test_only_the_sync_jobs_pull_the_card_data_first(cli):
    lines = parse(render(cli)).by_job()
    pulling = {name for name, line in lines.items() if "git -C" in line.command}
    assert pulling == {"sync-missing-sets", "sync-missing-cards"}
    for name in pulling:
        command = lines[name].command
        assert command.index("git -C \"$TCGJOBS_DATA_SOURCE\" pull") < command.index("exec tcgjobs run")


def test_disabled_job_is_commented_out_and_overrides_are_exported(cli, env):
    env["TCGJOBS_VALIDATE_DATA_INTEGRITY_ENABLED"] = "false"
    env["TCGJOBS_BACKUP_DATABASE_SCHEDULE"] = "15 0 * * *"
    env["TCGJOBS_TIMEZONE"] = "America/New_York"
    text = render(cli, "--user", "cards", "--log-dir", "/srv/logs")
    crontab = parse(text)
    lines = crontab.by_job()
    assert lines["validate-data-integrity"].enabled is False
    assert all(line.enabled for name, line in lines.items()
               if name not in {"validate-data-integrity", "upload-backups"})
    assert lines["backup-database"].schedule == "15 0 * * *"
    assert crontab.env["TCGJOBS_BACKUP_DATABASE_SCHEDULE"] == "15 0 * * *"
    assert crontab.env["TCGJOBS_VALIDATE_DATA_INTEGRITY_ENABLED"] == "false"
    assert crontab.env["CRON_TZ"] == crontab.env["TCGJOBS_TIMEZONE"] == "America/New_York"
    assert 'TCGJOBS_BACKUP_DATABASE_SCHEDULE="15 0 * * *"' in text
    assert {line.user for line in crontab.lines} == {"cards"}
    assert all(">>/srv/logs/" in line.command for line in crontab.lines)


def test_upload_backups_is_commented_out_until_the_offsite_url_is_set(cli, env):
    assert "# disabled by TCGJOBS_OFFSITE_URL unset: 30 0 * * * " in render(cli)
    env["TCGJOBS_OFFSITE_URL"] = "s3://tcg-backups/nightly"
    assert parse(render(cli)).by_job()["upload-backups"].enabled


def test_an_unsafe_log_dir_exits_2(cli):
    result = invoke(cli, "deploy", "crontab", "--log-dir", "/var/log/tc gjobs; rm -rf /")
    assert result.exit_code == ExitCode.USAGE, result.output


def test_output_option_writes_the_file(cli, tmp_path):
    target = tmp_path / "cron.d" / "tcgjobs"
    result = invoke(cli, "deploy", "crontab", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert parse(target.read_text()).by_job().keys() == all_jobs().keys()


def _run_line(line: CronLine, crontab: Crontab, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run one line's command the way cron does: /bin/sh -c, with only the crontab's environment."""
    environ = {**crontab.env, "HOME": str(tmp_path), "LOGNAME": "tcgjobs"}
    environ["PATH"] = f"{Path(sys.executable).parent}:{environ['PATH']}"
    return subprocess.run(["/bin/sh", "-c", line.command], env=environ, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)


def _write_env_file(path: Path, env: dict[str, str], **extra: str) -> None:
    values = {**env, **extra}
    path.write_text("".join(f"{key}='{value}'\n" for key, value in values.items()))


def _ledger(state_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(state_path) as db:
        return db.execute("SELECT job, trigger, exit_code FROM runs ORDER BY started_at").fetchall()


def test_a_crontab_line_runs_the_job_with_the_env_file_and_logs_to_its_file(cli, env, card_db_path,
                                                                            tmp_path):
    env_file, log_dir = tmp_path / "tcgjobs.env", tmp_path / "logs"
    log_dir.mkdir()
    _write_env_file(env_file, env)
    crontab = parse(render(cli, "--env-file", str(env_file), "--log-dir", str(log_dir)))
    result = _run_line(crontab.by_job()["cleanup-stale-data"], crontab, tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr, list(log_dir.iterdir()))
    assert result.stdout == result.stderr == ""  # everything went to the log, nothing to cron's mail
    log = (log_dir / "cleanup-stale-data.log").read_text()
    assert '"cleanup-stale-data"' in log
    # Both streams: the JSON log lines (stderr) and the result block (stdout), as docs/deploy.md says.
    assert "JOB RESULT" in log and "Job:      cleanup-stale-data" in log
    assert any(line.startswith("{") and '"run_id"' in line for line in log.splitlines())
    assert _ledger(card_db_path.parent / "tcgjobs-state.sqlite3") == [("cleanup-stale-data", "schedule", 0)]


def test_a_sync_line_pulls_the_card_data_checkout_before_running(cli, env, tmp_path):
    origin, checkout = tmp_path / "origin", tmp_path / "pokemon-tcg-data"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", str(origin)], check=True)
    (origin / "sets").mkdir()
    (origin / "sets" / "en.json").write_text("[]\n")
    subprocess.run([*git, "-C", str(origin), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(origin), "commit", "-qm", "one"], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    (origin / "sets" / "new.json").write_text("[]\n")
    subprocess.run([*git, "-C", str(origin), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(origin), "commit", "-qm", "two"], check=True)

    env_file, log_dir = tmp_path / "tcgjobs.env", tmp_path / "logs"
    log_dir.mkdir()
    _write_env_file(env_file, env, TCGJOBS_DATA_SOURCE=str(checkout))
    crontab = parse(render(cli, "--env-file", str(env_file), "--log-dir", str(log_dir)))
    _run_line(crontab.by_job()["sync-missing-sets"], crontab, tmp_path)
    assert (checkout / "sets" / "new.json").exists()
    state = Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3"
    assert [(job, trigger) for job, trigger, _ in _ledger(state)] == [("sync-missing-sets", "schedule")]

    # A failed pull is logged and the job still runs on what the directory holds.
    plain = tmp_path / "not-a-checkout"
    shutil.copytree(checkout, plain, ignore=shutil.ignore_patterns(".git"))
    _write_env_file(env_file, env, TCGJOBS_DATA_SOURCE=str(plain))
    _run_line(crontab.by_job()["sync-missing-sets"], crontab, tmp_path)
    log = (log_dir / "sync-missing-sets.log").read_text()
    assert f"git pull of {plain} failed; syncing the previous checkout" in log
    assert [(job, trigger) for job, trigger, _ in _ledger(state)] == [("sync-missing-sets", "schedule")] * 2
