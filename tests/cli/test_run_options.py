"""The options of ``tcgjobs run JOB``: the deadline is validated as its setting is, and only a job
with dependencies offers ``--ignore-deps``."""

from __future__ import annotations

import pytest

from tcgjobs.errors import ExitCode
from tcgjobs.registry import all_jobs
from tests.conftest import invoke


@pytest.mark.parametrize("value", ["0.5", "0", "-3", "soon"])
def test_a_deadline_the_setting_refuses_is_refused_on_the_command_line_too(cli, env, value):
    env["TCGJOBS_BACKUP_DATABASE_TIMEOUT"] = value
    setting = invoke(cli, "run", "backup-database", "--dry-run")
    del env["TCGJOBS_BACKUP_DATABASE_TIMEOUT"]
    option = invoke(cli, "run", "backup-database", "--dry-run", "--timeout", value)
    assert setting.exit_code == ExitCode.CONFIG, setting.output
    assert option.exit_code == ExitCode.USAGE, option.output
    reason = setting.stderr.split("TCGJOBS_BACKUP_DATABASE_TIMEOUT: ", 1)[1].strip()
    assert reason in option.stderr, "one validation, one message"


def test_a_deadline_the_setting_accepts_is_accepted_on_the_command_line(cli, env):
    result = invoke(cli, "run", "cleanup-stale-data", "--dry-run", "--timeout", "1.5", "--json")
    assert result.exit_code in (ExitCode.OK, ExitCode.CONFIG), result.output  # no card database yet
    assert "--timeout" not in result.stderr


@pytest.mark.parametrize("job", sorted(all_jobs()))
def test_ignore_deps_is_offered_exactly_on_the_jobs_that_have_dependencies(cli, job):
    offered = "--ignore-deps" in invoke(cli, "run", job, "--help").stdout
    assert offered == bool(all_jobs()[job].depends_on)


def test_ignore_deps_on_a_job_without_dependencies_is_a_usage_error(cli):
    result = invoke(cli, "run", "backup-database", "--ignore-deps")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "No such option '--ignore-deps'" in result.stderr
