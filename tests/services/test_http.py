"""The one retry loop of Slack and the pings, against a real local HTTP server."""

from __future__ import annotations

import io
import json

from tcgjobs import logging as tcg_logging
from tcgjobs.services.http import RetryPolicy, request


def test_no_answer_and_5xx_are_retried_after_a_doubling_backoff_until_a_2xx(slack):
    slack.script(502, 503, 200)
    reply = request("GET", slack.url + "/x", RetryPolicy(attempts=4, backoff=0.1), timeout=2, label="t")
    assert reply.ok and reply.status == 200 and reply.attempts == 3
    first, second, third = (r.at for r in slack.requests)
    assert second - first >= 0.1 and third - second >= 0.2


def test_retries_are_logged_with_the_label_and_the_answer():
    stream = io.StringIO()
    tcg_logging.configure(level="info", fmt="json", stream=stream)
    reply = request("GET", "http://127.0.0.1:9/down", RetryPolicy(attempts=2), timeout=0.5, label="probe")
    assert not reply.ok and reply.status is None and reply.attempts == 2 and not reply.refused
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["probe attempt 1 failed (ConnectionError (no answer within 0.5s or connection "
                        "failed)); retrying in 0s"]


def test_a_4xx_is_final_and_quoted(slack):
    slack.script((403, {}, "no_team"))
    reply = request("POST", slack.webhook(), RetryPolicy(attempts=3), timeout=2, label="t", json={})
    assert reply.refused and reply.status == 403 and reply.detail == "HTTP 403 no_team"
    assert len(slack.requests) == 1


def test_a_429_is_final_unless_retry_after_is_honoured(slack):
    slack.script((429, {"Retry-After": "0"}), (429, {"Retry-After": "0"}), 200)
    plain = request("GET", slack.url, RetryPolicy(attempts=3), timeout=2, label="t")
    assert plain.refused and plain.attempts == 1
    honoured = request("GET", slack.url, RetryPolicy(attempts=3, max_retry_after=5), timeout=2, label="t")
    assert honoured.ok and honoured.attempts == 2
    assert len(slack.requests) == 3


def test_a_body_naming_a_final_error_makes_even_a_5xx_final(slack):
    slack.script((500, {}, "channel_is_archived"))
    reply = request("POST", slack.webhook(), RetryPolicy(attempts=3, final_bodies=("channel_is_archived",)),
                    timeout=2, label="t", json={})
    assert reply.refused and len(slack.requests) == 1
