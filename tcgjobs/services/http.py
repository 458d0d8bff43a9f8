"""One HTTP request with retries: the single retry loop of the Slack notifier and the dead-man pings.

Retried: no answer (a timeout, a refused or dropped connection) and 5xx, after a wait that starts
at ``backoff`` and doubles. A 429 is retried only when the caller honours ``Retry-After`` (Slack):
after the wait the header asks for, unless that is longer than the cap, which ends the request at
once. Every other answer is final: 2xx succeeded, anything else was refused and a retry would be
refused too. A request never raises for its own failure; the caller gets a :class:`Reply` and
decides what to log and return. Details are redacted (a webhook URL may echo in an error).

``requests`` is imported by the first request: it costs ~50 ms of every CLI start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from tcgjobs.cancel import CancelScope, call_unless_cancelled
from tcgjobs.errors import Cancelled
from tcgjobs.logging import redact

#: How much of an answer's body a reply's detail quotes.
BODY_QUOTED = 200


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again.

    ``max_retry_after``: None leaves a 429 final like any other 4xx; a number honours its
    ``Retry-After`` (the backoff when it has none) up to that many seconds. ``final_bodies``: an
    answer whose body names one of these is final whatever its status (Slack's error codes).
    """

    attempts: int
    backoff: float = 0.0
    max_retry_after: float | None = None
    final_bodies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """What came of a request: the last status (None: no answer), attempts made, and why it
    failed. ``refused``: the last answer was final, so retrying later will not help either."""

    status: int | None
    attempts: int
    detail: str = ""
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def request(method: str, url: str, policy: RetryPolicy, *, timeout: float, label: str,
            sleep: Callable[[float], None] = time.sleep, cancel: CancelScope | None = None,
            **kwargs: Any) -> Reply:
    """Send ``method url`` (``kwargs`` go to :func:`requests.request`) until it succeeds, is
    refused, or ``policy`` gives up. Each retry is logged as "<label> attempt N failed".

    With ``cancel`` (the run's scope, or the scope of its notifications) the request never
    outlives it: each attempt waits at most ``timeout`` and what is left of the scope's deadline,
    and when the scope fires the request stops at once, during an attempt or a wait between two,
    with a reply that says it was cut short. An attempt runs where the caller can stop waiting for
    it (:func:`tcgjobs.cancel.call_unless_cancelled`): a socket read or a DNS lookup in
    ``requests`` cannot be interrupted from Python.
    """
    import requests  # imported here: it costs ~50 ms of every CLI start

    status: int | None = None
    detail = ""
    for attempt in range(1, policy.attempts + 1):
        wait = policy.backoff * 2 ** (attempt - 1)
        # At the deadline itself the scope fires next: the floor only keeps the timeout valid.
        limit = timeout if cancel is None else max(0.05, cancel.bound(timeout))
        try:
            response = _attempt(method, url, limit, cancel, kwargs)
        except Cancelled as exc:
            return Reply(status, attempt, f"cut short: {exc.reason}")
        except requests.RequestException as exc:
            status = None
            detail = f"{type(exc).__name__} (no answer within {limit:g}s or connection failed)"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return Reply(status, attempt)
            body = response.text[:BODY_QUOTED].strip()
            detail = redact(f"HTTP {status} {body}".strip())
            if status == 429 and policy.max_retry_after is not None:
                wait = _retry_after(response.headers.get("Retry-After"), wait)
                if wait > policy.max_retry_after:
                    detail += f" (Retry-After {wait:g}s exceeds the {policy.max_retry_after:g}s cap)"
                    return Reply(status, attempt, detail)
            elif status < 500 or any(final in body for final in policy.final_bodies):
                return Reply(status, attempt, detail, refused=True)
        if attempt < policy.attempts:
            logger.info("{} attempt {} failed ({}); retrying in {:g}s", label, attempt, detail, wait)
            if cancel is None:
                sleep(wait)
            elif cancel.wait(wait):
                return Reply(status, attempt, f"{detail}; then cut short: {cancel.reason}")
    return Reply(status, policy.attempts, detail)


def _attempt(method: str, url: str, timeout: float, cancel: CancelScope | None,
             kwargs: dict[str, Any]) -> Any:
    """One request; with ``cancel``, abandoned when it fires (raises Cancelled)."""
    import requests

    if cancel is None:
        return requests.request(method, url, timeout=timeout, **kwargs)
    return call_unless_cancelled(
        cancel, lambda: requests.request(method, url, timeout=timeout, **kwargs), name="http",
        discard=lambda response: response.close())


def _retry_after(header: str | None, fallback: float) -> float:
    """Seconds a ``Retry-After: <seconds>`` header asks for; ``fallback`` when absent or a date."""
    try:
        return max(0.0, float(header)) if header is not None else fallback
    except ValueError:
        return fallback
