"""``-v/--verbose`` and ``-q/--quiet``: the log level for one invocation, over TCGJOBS_LOG_LEVEL."""

from __future__ import annotations

import json

from tcgjobs.errors import ExitCode
from tests.conftest import run_tcgjobs


def levels(stderr: str) -> set[str]:
    return {json.loads(line)["level"] for line in stderr.splitlines() if line.startswith("{")}


def test_verbose_logs_debug_lines(env, tmp_path):
    env["TCGJOBS_METRICS_DIR"] = str(tmp_path / "metrics")
    (tmp_path / "metrics").mkdir()
    plain = run_tcgjobs("run", "sync-missing-sets")
    verbose = run_tcgjobs("-v", "run", "sync-missing-sets")
    assert plain.returncode == verbose.returncode == 0, verbose.stderr
    assert "debug" not in levels(plain.stderr)
    assert "debug" in levels(verbose.stderr) and "metrics written to" in verbose.stderr


def test_quiet_logs_warnings_and_errors_only_and_keeps_the_result(env):
    env["TCGJOBS_LOG_LEVEL"] = "debug"  # the option wins for this invocation
    result = run_tcgjobs("--quiet", "run", "sync-missing-sets")
    assert result.returncode == 0, result.stderr
    assert levels(result.stderr) <= {"warning", "error"}
    assert "USING THE BUNDLED SAMPLE" in result.stderr, "warnings still show"
    assert "Outcome:  succeeded (exit 0)" in result.stdout


def test_verbose_and_quiet_together_are_a_usage_error():
    result = run_tcgjobs("-v", "-q", "status")
    assert result.returncode == ExitCode.USAGE
    assert "--verbose" in result.stderr and "--quiet" in result.stderr


def test_both_options_are_listed_in_the_help():
    result = run_tcgjobs("--help")
    assert "-v, --verbose" in result.stdout and "-q, --quiet" in result.stdout
