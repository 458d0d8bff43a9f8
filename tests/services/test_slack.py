"""The Slack notifier against a real local HTTP server."""

from __future__ import annotations

import time

from tcgjobs.services.slack import Alert, SlackNotifier, build_payload


def notifier(slack, **kwargs) -> SlackNotifier:
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("backoff", 0.05)
    return SlackNotifier(slack.webhook(), **kwargs)


ALERT = Alert(title="Job Failed: backup-database", message="disk full <now>", severity="error",
              job="backup-database", fields={"exit_code": 1})


def test_payload_keeps_the_original_attachment_shape_plus_a_text_fallback():
    from datetime import UTC, datetime

    payload = build_payload(ALERT, now=datetime(2026, 11, 28, 11, 30, tzinfo=UTC))
    attachment = payload["attachments"][0]
    assert attachment["color"] == "#f44336"
    assert attachment["title"] == ":x: Job Failed: backup-database"
    assert attachment["text"] == "disk full &lt;now&gt;"
    assert attachment["fields"][0] == {"title": "Job", "value": "backup-database", "short": True}
    assert attachment["fields"][1] == {"title": "Time", "value": "2026-11-28T11:30:00.000Z", "short": True}
    assert attachment["fields"][2] == {"title": "exit code", "value": "1", "short": True}
    assert attachment["footer"] == "Pokemon TCG Cron Service"
    assert attachment["ts"] == 1795865400  # floor(epoch seconds)
    assert payload["text"].startswith(":x: Job Failed: backup-database")


def test_a_200_is_delivered_once(slack):
    delivery = notifier(slack).send(ALERT)
    assert delivery.sent and delivery.status == 200 and delivery.attempts == 1
    assert len(slack.requests) == 1
    assert slack.requests[0].json["attachments"][0]["title"].endswith("backup-database")


def test_a_429_is_retried_after_the_retry_after_delay(slack):
    slack.script((429, {"Retry-After": "1"}), 200)
    delivery = notifier(slack).send(ALERT)
    assert delivery.sent and delivery.attempts == 2
    assert len(slack.requests) == 2
    assert slack.requests[1].at - slack.requests[0].at >= 0.9


def test_a_retry_after_beyond_the_cap_gives_up_without_waiting(slack):
    slack.script((429, {"Retry-After": "3600"}))
    started = time.monotonic()
    delivery = notifier(slack, max_retry_after=5).send(ALERT)
    assert not delivery.sent and "exceeds" in delivery.detail
    assert time.monotonic() - started < 5 and len(slack.requests) == 1


def test_a_500_is_retried_and_then_reported_undelivered(slack):
    slack.script(500, 500, 500)
    delivery = notifier(slack, max_attempts=3).send(ALERT)
    assert not delivery.sent and delivery.status == 500 and not delivery.permanent
    assert len(slack.requests) == 3


def test_a_500_then_200_is_delivered(slack):
    slack.script(500, 200)
    assert notifier(slack).send(ALERT).sent and len(slack.requests) == 2


def test_a_404_is_permanent_and_never_retried(slack):
    slack.script(404)
    delivery = notifier(slack).send(ALERT)
    assert not delivery.sent and delivery.permanent and delivery.status == 404
    assert len(slack.requests) == 1


def test_a_400_invalid_token_is_permanent(slack):
    slack.script((400, {}, "invalid_token"))
    delivery = notifier(slack).send(ALERT)
    assert delivery.permanent and len(slack.requests) == 1


def test_a_hanging_webhook_times_out_and_is_retried(slack):
    slack.hang_seconds = 20.0  # far beyond the 0.5 s timeout, however slow this machine is
    slack.script("hang", 200)
    started = time.monotonic()
    delivery = notifier(slack, timeout=0.5).send(ALERT)
    assert delivery.sent and delivery.attempts == 2
    # The retry came while the first request still hung: the timeout, not the server, ended it.
    assert slack.requests[1].at - slack.requests[0].at < slack.hang_seconds
    assert time.monotonic() - started < slack.hang_seconds


def test_an_unreachable_webhook_never_raises_and_never_logs_the_url(capsys):
    from tcgjobs import logging as tcg_logging

    url = "http://127.0.0.1:9/services/T000/B000/unreachableSECRET"
    tcg_logging.configure(level="debug", fmt="json", secrets=[url])
    delivery = SlackNotifier(url, timeout=0.5, max_attempts=2, backoff=0.01).send(ALERT)
    assert not delivery.sent
    logged = capsys.readouterr().err
    assert "not delivered" in logged and "unreachableSECRET" not in logged
