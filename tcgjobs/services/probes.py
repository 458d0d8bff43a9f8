"""``config --check``'s look at the HTTP services: is each one there, and does it accept us?

The rule of :class:`tcgjobs.errors.ServiceUnavailable`, for every service: no answer (a refused
connection, a name that does not resolve, a timeout) or a 5xx/429 is 69, worth retrying later; an
answer that refuses us (a webhook or path that does not exist, bad credentials) is 78. Nothing
is posted or pinged: Slack gets an empty payload it rejects without posting, the Pushgateway its
readiness endpoint, and a ping URL only a TCP connection (any request there would count as a ping).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from tcgjobs.errors import ExitCode
from tcgjobs.services.http import Reply, RetryPolicy, request

#: Slack's answers to an empty payload from a webhook that exists: it was reached and accepts us.
_SLACK_EMPTY_PAYLOAD = ("no_text", "invalid_payload", "missing_text")


@dataclass(frozen=True)
class Probe:
    """What one look found: OK, UNAVAILABLE (69) or CONFIG (78), and why."""

    exit_code: ExitCode
    detail: str


def http_exit_code(reply: Reply) -> ExitCode:
    """The rule for an HTTP reply: 2xx OK; no answer, 5xx or 429 UNAVAILABLE; any other CONFIG."""
    if reply.ok:
        return ExitCode.OK
    if reply.status is None or reply.status >= 500 or reply.status == 429:
        return ExitCode.UNAVAILABLE
    return ExitCode.CONFIG


def _verdict(reply: Reply, answered: str) -> Probe:
    code = http_exit_code(reply)
    if code is ExitCode.OK:
        return Probe(code, answered)
    retry = "unavailable, retry later" if code is ExitCode.UNAVAILABLE else "refused: check the URL"
    return Probe(code, f"{reply.detail} ({retry})")


def slack_webhook(url: str, timeout: float) -> Probe:
    """POST an empty payload: a webhook that exists answers 400 ``no_text`` and posts nothing."""
    reply = request("POST", url, RetryPolicy(1), timeout=timeout, label="Slack check", json={})
    if reply.status == 400 and any(word in reply.detail for word in _SLACK_EMPTY_PAYLOAD):
        return Probe(ExitCode.OK, "the webhook answers (an empty test payload, nothing posted)")
    return _verdict(reply, "the webhook answers")


def pushgateway(url: str, timeout: float) -> Probe:
    """GET the Pushgateway's readiness endpoint (credentials in the URL go as basic auth)."""
    reply = request("GET", url.rstrip("/") + "/-/ready", RetryPolicy(1), timeout=timeout,
                    label="Pushgateway check")
    return _verdict(reply, "the Pushgateway is ready")


def ping_host(template: str, timeout: float) -> Probe:
    """A TCP connection to the ping URL's host: reachable or not, without sending a ping."""
    parts = urlsplit(template)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Probe(ExitCode.UNAVAILABLE, f"{host}:{port} not reachable: {reason} (unavailable, "
                                           "retry later)")
    return Probe(ExitCode.OK, f"{host}:{port} reachable (no ping sent: a request would count as one)")
