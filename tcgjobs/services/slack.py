"""Slack incoming-webhook notifier.

The payload keeps the original service's legacy-attachment shape (colour, emoji title, fields,
footer, ``ts``), which existing Slack channels are used to, and adds the top-level ``text``
fallback Slack wants. Sending has a timeout, retries timeouts, connection errors and 5xx with a
short backoff, honours ``Retry-After`` on 429 up to a cap, and never retries permanent errors (404,
410, 400 ``invalid_token`` and other 4xx): the rules of :mod:`tcgjobs.services.http`, shared with
the pings. It never raises: the caller gets a :class:`Delivery` and the job's result is never
masked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from tcgjobs.logging import redact
from tcgjobs.services.http import RetryPolicy, request

if TYPE_CHECKING:
    from tcgjobs.cancel import CancelScope

SEVERITIES = ("info", "warning", "error", "critical")
_COLOURS = {"info": "#36a64f", "warning": "#ff9800", "error": "#f44336", "critical": "#d32f2f"}
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":x:",
          "critical": ":rotating_light:"}
FOOTER = "Pokemon TCG Cron Service"
_TEXT_LIMIT = 3000
_PERMANENT_BODIES = ("invalid_token", "no_service", "no_team", "team_disabled", "channel_is_archived",
                     "action_prohibited", "invalid_payload", "no_text")


@dataclass(frozen=True)
class Alert:
    title: str
    message: str
    severity: str = "error"
    job: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """What happened to one message."""

    sent: bool
    status: int | None = None
    attempts: int = 0
    permanent: bool = False
    detail: str = ""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


def build_payload(alert: Alert, now: datetime | None = None) -> dict[str, Any]:
    """The Slack message for ``alert``: the original's attachment plus a ``text`` fallback."""
    now = now or datetime.now(UTC)
    message = redact(alert.message)
    if len(message) > _TEXT_LIMIT:
        message = message[: _TEXT_LIMIT - 20] + "\n… (truncated)"
    fields = []
    if alert.job:
        fields.append({"title": "Job", "value": alert.job, "short": True})
    fields.append({"title": "Time", "value": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                   "short": True})
    for key, value in alert.fields.items():
        fields.append({"title": key.replace("_", " "), "value": redact(str(value)), "short": True})
    title = f"{_EMOJI[alert.severity]} {_escape(redact(alert.title))}"
    return {
        "text": f"{title}: {_escape(message)}"[:_TEXT_LIMIT],
        "attachments": [{
            "color": _COLOURS[alert.severity],
            "title": title,
            "text": _escape(message),
            "fields": fields,
            "footer": FOOTER,
            "ts": int(now.timestamp()),
        }],
    }


class SlackNotifier:
    """Posts alerts to one webhook, retrying through :func:`tcgjobs.services.http.request`."""

    def __init__(self, webhook_url: str, *, timeout: float = 10.0, max_attempts: int = 3,
                 max_retry_after: float = 30.0, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.webhook_url = webhook_url
        self.timeout = timeout
        self.policy = RetryPolicy(attempts=max_attempts, backoff=backoff,
                                  max_retry_after=max_retry_after, final_bodies=_PERMANENT_BODIES)
        self.sleep = sleep

    def send(self, alert: Alert, cancel: CancelScope | None = None) -> Delivery:
        return self.post(build_payload(alert), cancel)

    def post(self, payload: dict[str, Any], cancel: CancelScope | None = None) -> Delivery:
        """POST ``payload``; retry what may succeed later, stop at once when ``cancel`` (the
        run's scope, or its notifications') fires. Never raises."""
        reply = request("POST", self.webhook_url, self.policy, timeout=self.timeout, label="Slack",
                        sleep=self.sleep, cancel=cancel, json=payload)
        if reply.ok:
            return Delivery(True, reply.status, reply.attempts, detail="accepted")
        if reply.refused:
            logger.warning("Slack refused the message permanently: {}", reply.detail)
            return Delivery(False, reply.status, reply.attempts, permanent=True, detail=reply.detail)
        logger.warning("Slack notification not delivered: {}", reply.detail)
        return Delivery(False, reply.status, reply.attempts, detail=reply.detail)
