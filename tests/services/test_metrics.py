"""Prometheus metrics after every run: the textfile parsed back value by value, and the pushgateway."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tcgjobs.backups.catalog import list_backups
from tcgjobs.db.state import open_view
from tests.conftest import invoke
from tests.health.support import healthy_setup, run_health


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from Prometheus text format."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def metrics_dir(env: dict[str, str], tmp_path: Path, cli) -> Path:
    directory = tmp_path / "textfile"
    env["TCGJOBS_METRICS_DIR"] = str(directory)
    healthy_setup(cli, Path(env["DATABASE_PATH"]))
    return directory


def ledger(env: dict[str, str]):
    return open_view(Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3", busy_timeout_ms=1000,
                     stale_after=timedelta(minutes=1))


def test_textfile_after_runs_matches_the_ledger_value_by_value(cli, env, metrics_dir):
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    env["TCGJOBS_HEALTH_WAL_WARNING_MB"] = "0"  # one warning among the checks
    assert run_health(cli)[0] == 0
    text = (metrics_dir / "tcgjobs.prom").read_text()
    values = samples(text)
    view = ledger(env)
    for job in ("backup-database", "cleanup-stale-data", "database-health-check"):
        last = view.last_run(job)
        assert values[("tcgjobs_job_last_success_timestamp_seconds", (("job", job),))] == \
            pytest.approx(last.started_at.timestamp())
        assert values[("tcgjobs_job_last_run_timestamp_seconds", (("job", job),))] == \
            pytest.approx(last.finished_at.timestamp())
        assert values[("tcgjobs_job_duration_seconds", (("job", job),))] == pytest.approx(last.duration_s)
        assert values[("tcgjobs_job_last_exit_code", (("job", job),))] == 0
        assert values[("tcgjobs_job_consecutive_failures", (("job", job),))] == 0
        exported = {dict(labels)["kind"]: value for (name, labels), value in values.items()
                    if name == "tcgjobs_job_records_processed" and dict(labels)["job"] == job}
        counts = {k: v for k, v in last.metrics.items() if isinstance(v, int) and not isinstance(v, bool)
                  and not {"bytes", "seconds", "ratio", "percent", "ms", "s"} & set(k.split("_"))}
        assert counts and exported == counts, "records_processed holds the run's counts and nothing else"
    assert values[("tcgjobs_job_records_processed", (("job", "database-health-check"), ("kind", "warning")))] == 1
    backup_kinds = {dict(labels)["kind"] for (name, labels) in values
                    if name == "tcgjobs_job_records_processed" and dict(labels)["job"] == "backup-database"}
    assert {"rows_total", "backups_total", "backup_verified"} <= backup_kinds
    assert not backup_kinds & {"source_bytes", "uncompressed_bytes", "backup_size_bytes", "backups_total_bytes",
                               "compression_ratio", "write_seconds", "duration_seconds"}, "no units mixed in"
    assert values[("tcgjobs_health_check_level", (("check", "wal-size"),))] == 1
    assert values[("tcgjobs_health_check_level", (("check", "quick-check"),))] == 0
    [backup] = list_backups(Path(env["BACKUP_DIR"]))
    assert values[("tcgjobs_backup_newest_verified_timestamp_seconds", ())] == \
        pytest.approx(backup.created_at.timestamp())
    assert values[("tcgjobs_backup_files", ())] == 1
    assert values[("tcgjobs_backup_size_bytes", ())] == backup.size_bytes
    assert ("tcgjobs_job_last_run_timestamp_seconds", (("job", "rotate-backups"),)) not in values  # never ran
    assert not list(metrics_dir.glob("*.tmp"))  # written atomically: no temporary file left


def test_a_failed_run_keeps_the_last_success_and_records_its_exit_code(cli, env, metrics_dir):
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    success = ledger(env).last_success("cleanup-stale-data")
    database = Path(env["DATABASE_PATH"])
    database.rename(database.with_name("hidden.db"))
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    values = samples((metrics_dir / "tcgjobs.prom").read_text())
    key = (("job", "cleanup-stale-data"),)
    assert values[("tcgjobs_job_last_exit_code", key)] == 78
    assert values[("tcgjobs_job_consecutive_failures", key)] == 1
    assert values[("tcgjobs_job_last_success_timestamp_seconds", key)] == pytest.approx(success.started_at.timestamp())
    assert values[("tcgjobs_job_last_run_timestamp_seconds", key)] > success.started_at.timestamp()


def test_pushgateway_gets_pushadd_per_job_and_no_last_success_for_a_failed_run(cli, env, metrics_dir, slack):
    env["TCGJOBS_PUSHGATEWAY_URL"] = slack.url
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    database = Path(env["DATABASE_PATH"])
    database.rename(database.with_name("hidden.db"))
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 78
    assert [(r.method, r.path) for r in slack.requests] == [("POST", "/metrics/job/cleanup-stale-data")] * 2
    ok, failed = (samples(r.body.decode()) for r in slack.requests)
    success = ledger(env).last_success("cleanup-stale-data")
    assert ok[("tcgjobs_job_last_success_timestamp_seconds", ())] == pytest.approx(success.started_at.timestamp())
    assert ("tcgjobs_job_last_success_timestamp_seconds", ()) not in failed
    assert failed[("tcgjobs_job_last_exit_code", ())] == 78
    assert ok[("tcgjobs_job_last_exit_code", ())] == 0
    assert failed[("tcgjobs_job_consecutive_failures", ())] == 1
    assert not any(dict(labels).get("job") for _, labels in [*ok, *failed])  # the group supplies job


def test_an_unreachable_pushgateway_never_fails_the_job(cli, env, metrics_dir):
    from tests.health.support import free_port

    env["TCGJOBS_PUSHGATEWAY_URL"] = f"http://127.0.0.1:{free_port()}"
    result = invoke(cli, "run", "cleanup-stale-data")
    assert result.exit_code == 0, result.output
    assert (metrics_dir / "tcgjobs.prom").exists()
    assert "RunMetrics on_finish failed" in result.stderr


def test_pushgateway_credentials_in_the_url_are_sent_as_basic_auth_and_never_logged(cli, env, metrics_dir, slack):
    import base64

    host_port = slack.url.split("://", 1)[1].rstrip("/")
    env["TCGJOBS_PUSHGATEWAY_URL"] = f"http://pusher:s3cret%2Fpass@{host_port}"
    slack.script(200, 500)
    first = invoke(cli, "run", "cleanup-stale-data")
    assert first.exit_code == 0, first.output
    assert "on_finish failed" not in first.stderr
    second = invoke(cli, "run", "cleanup-stale-data")
    assert second.exit_code == 0, second.output
    assert "RunMetrics on_finish failed" in second.stderr  # the 500 is logged, with the URL redacted
    assert [(r.method, r.path) for r in slack.requests] == [("POST", "/metrics/job/cleanup-stale-data")] * 2
    expected = "Basic " + base64.b64encode(b"pusher:s3cret/pass").decode()
    assert all(r.headers.get("Authorization") == expected for r in slack.requests)
    for text in (first.output, first.stderr, second.output, second.stderr):
        assert "s3cret" not in text


def _insert_abandoned(env: dict[str, str], job: str, hours_ago: float) -> None:
    """A ``running`` row whose process is gone: the ledger reads it as abandoned."""
    from tcgjobs.db.state import Ledger
    from tcgjobs.times import utcnow

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that has exited
    ledger = Ledger.open(Path(env["DATABASE_PATH"]).parent / "tcgjobs-state.sqlite3", busy_timeout_ms=1000,
                         stale_after=timedelta(minutes=1))
    started = utcnow() - timedelta(hours=hours_ago)
    ledger.insert(run_id=f"gone{hours_ago}", job=job, trigger="schedule", started_at=started,
                  heartbeat_at=started, status="running", pid=dead.pid)
    ledger.close()


def test_abandoned_runs_within_the_check_window_are_counted_per_job(cli, env, metrics_dir, slack):
    env["TCGJOBS_PUSHGATEWAY_URL"] = slack.url
    _insert_abandoned(env, "cleanup-stale-data", hours_ago=2)
    _insert_abandoned(env, "cleanup-stale-data", hours_ago=30)  # outside the 24 h window
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    values = samples((metrics_dir / "tcgjobs.prom").read_text())
    assert values[("tcgjobs_job_abandoned_runs", (("job", "cleanup-stale-data"),))] == 1
    assert values[("tcgjobs_job_abandoned_runs", (("job", "backup-database"),))] == 0
    assert samples(slack.requests[-1].body.decode())[("tcgjobs_job_abandoned_runs", ())] == 1
    env["TCGJOBS_HEALTH_ABANDONED_WINDOW_HOURS"] = "48"
    assert invoke(cli, "run", "cleanup-stale-data").exit_code == 0
    values = samples((metrics_dir / "tcgjobs.prom").read_text())
    assert values[("tcgjobs_job_abandoned_runs", (("job", "cleanup-stale-data"),))] == 2
