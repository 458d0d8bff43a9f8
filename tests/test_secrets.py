"""Passwords, DSN passwords and webhook URLs never appear in logs, ledger rows, alerts or output."""

from __future__ import annotations

import io
import sqlite3

import pytest

from tcgjobs import logging as tcg_logging
from tcgjobs.observers import default_observers
from tcgjobs.registry import REGISTRY, Job
from tcgjobs.runner import RunRequest, run_job
from tests.conftest import invoke, make_settings

PASSWORD = "pw-Zq9-very-secret"
URL_PASSWORD = "urlpass-77-secret"


def test_secrets_are_masked_in_logs_ledger_alerts_and_tracebacks(monkeypatch, env, slack):
    webhook = slack.webhook("/services/T0SECRET/B0SECRET/webhookTOKENsecret")
    env["POSTGRES_PASSWORD"] = PASSWORD
    env["SLACK_WEBHOOK_URL"] = webhook
    env["NOTIFICATIONS_ENABLED"] = "true"

    def leaky(ctx):
        raise RuntimeError(f"cannot reach postgresql://cards:{URL_PASSWORD}@db:5432/pokemon "
                           f"with password={PASSWORD}; alerting {webhook}")

    job = Job(name="t-leaky", help="leaks", schedule="0 2 * * *", timeout=30, run=leaky)
    monkeypatch.setitem(REGISTRY, "t-leaky", job)
    settings = make_settings()
    stream = io.StringIO()
    tcg_logging.configure(level="debug", fmt="json", stream=stream, secrets=settings.secret_values())
    outcome = run_job(RunRequest(job=job, settings=settings), observers=default_observers(settings))

    logs = stream.getvalue()
    assert "Traceback" in logs and "RuntimeError" in logs, "the traceback is logged, redacted"
    stored = sqlite3.connect(settings.state_path).execute("SELECT error FROM runs").fetchone()[0]
    assert len(slack.requests) == 1
    posted = slack.requests[0].body.decode()
    for text in (logs, stored, posted, outcome.error):
        for secret in (PASSWORD, URL_PASSWORD, "webhookTOKENsecret", "/services/T0SECRET"):
            assert secret not in text
    assert "postgresql://cards:***@db" in stored


def test_config_and_run_output_never_show_secrets(cli, env, tmp_path):
    secret_file = tmp_path / "pg-url"
    secret_file.write_text(f"postgresql://cards:{URL_PASSWORD}@127.0.0.1:1/pokemon")
    env["TCGJOBS_POSTGRES_URL_FILE"] = str(secret_file)
    for args in (("config",), ("config", "--json"), ("run", "cleanup-stale-data"), ("status",)):
        result = invoke(cli, *args)
        assert URL_PASSWORD not in result.output, args


@pytest.mark.parametrize("text", [
    f"postgresql://user:{PASSWORD}@host/db", f"password={PASSWORD} host=x",
    "https://hooks.slack.com/services/T123/B456/abcdefghijkl"])
def test_the_redactor_masks_secret_shapes_it_was_never_told_about(text):
    masked = tcg_logging.redact(text)
    assert PASSWORD not in masked and "abcdefghijkl" not in masked


def test_a_filled_in_ping_url_is_masked_in_logs(env):
    from loguru import logger

    from tcgjobs.services.pings import ping_url

    check_uuid = "5f0c2f5e-8d0b-4c7a-9e51-3b9a2d1c7e44"
    env["TCGJOBS_PING_URL"] = f"https://hc-ping.com/{check_uuid}/{{job}}"
    settings = make_settings()
    stream = io.StringIO()
    tcg_logging.configure(level="debug", fmt="json", stream=stream, secrets=settings.secret_values())
    for kind, code in (("start", None), ("success", None), ("fail", 78)):
        logger.warning("pinging {}", ping_url(settings.ping_url, "backup-database", kind, code))
    logs = stream.getvalue()
    assert logs.count("pinging ") == 3
    assert check_uuid not in logs
    assert "backup-database/start" in logs, "only the secret part is masked"


@pytest.mark.parametrize("form", ["url", "variables"])
def test_the_postgres_target_is_shown_as_host_port_and_database_with_only_the_password_masked(
        cli, env, card_db_path, form):
    from tests.health.support import free_port, run_health

    port = free_port()  # nothing listens: the connection is refused
    if form == "url":
        env["TCGJOBS_POSTGRES_URL"] = f"postgresql://cards:{URL_PASSWORD}@127.0.0.1:{port}/pokemon_replica"
    else:
        env.update(POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(port), POSTGRES_USER="cards",
                   POSTGRES_PASSWORD=PASSWORD, POSTGRES_DB="pokemon_replica")
        for key in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
            env[key] = env[key]  # the env fixture applies what is set through it
    target = f"127.0.0.1:{port}/pokemon_replica"
    run = invoke(cli, "run", "replicate-to-primary", "--ignore-deps")
    check = invoke(cli, "config", "--check")
    _, checks, _ = run_health(cli)
    for text in (run.stdout, run.stderr, check.stdout, checks["postgres"]["detail"]):
        assert target in text
        assert URL_PASSWORD not in text and PASSWORD not in text


@pytest.mark.parametrize(("configured", "shown"), [
    ("https://hooks.slack.com/services/T0SECRET/B0SECRET/webhookTOKENsecret",
     "https://hooks.slack.com/services/T0SECRET/B0SECRET/webhookTOKENsecret"),
    ("https://push.example.com/gatewayTOKENsecret",
     "https://push.example.com/gatewayTOKENsecret/metrics/job/backup-database"),
    ("https://hc-ping.com/pingTOKENsecret-5f0c2f5e/{job}", "https://hc-ping.com/pingTOKENsecret-5f0c2f5e/backup-database/start"),
])
def test_webhook_pushgateway_and_ping_urls_keep_their_paths_masked(configured, shown):
    redactor = tcg_logging.Redactor()
    redactor.add([configured])
    masked = redactor(f"request to {shown} failed")
    assert "TOKENsecret" not in masked
