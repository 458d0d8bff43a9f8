"""Dead-man pings in the healthchecks.io convention (also understood by runitor, Cronitor's
healthchecks mode and self-hosted healthchecks).

``<url>/start`` when a run starts, ``<url>`` when it succeeds, ``<url>/<exit code>`` when it fails
(healthchecks treats any non-zero code as a failure and shows the code). ``{job}`` in the URL is
replaced by the job name (slug URLs: ``https://hc-ping.com/<ping-key>/{job}``). Every ping carries
``rid=<run id>`` so start and finish pair up. A ping has a short timeout, is tried twice (no
answer, 5xx: see :mod:`tcgjobs.services.http`), and never raises: a monitoring outage must not
fail a job.
"""

from __future__ import annotations

import uuid

from loguru import logger

from tcgjobs.cancel import CancelScope
from tcgjobs.services.http import RetryPolicy, request


def ping_url(template: str, job: str, kind: str, exit_code: int | None = None) -> str:
    """The URL for one ping. ``kind`` is start, success or fail (``exit_code`` required)."""
    base = template.replace("{job}", job).rstrip("/")
    if kind == "start":
        return base + "/start"
    if kind == "success":
        return base
    if kind == "fail":
        return f"{base}/{exit_code if exit_code else 'fail'}"
    raise ValueError(f"unknown ping kind {kind!r}")


def _rid(run_id: str) -> str:
    try:
        return str(uuid.UUID(run_id))  # healthchecks wants the canonical UUID form
    except ValueError:
        return run_id


def ping(template: str, job: str, kind: str, run_id: str, *, timeout: float,
         exit_code: int | None = None, attempts: int = 2, cancel: CancelScope | None = None) -> bool:
    """Send one ping, cut short when ``cancel`` fires. Returns whether the endpoint answered
    2xx; logs a warning otherwise."""
    reply = request("GET", ping_url(template, job, kind, exit_code), RetryPolicy(attempts),
                    timeout=timeout, label=f"{kind} ping for {job}", cancel=cancel,
                    params={"rid": _rid(run_id)})
    if not reply.ok:
        logger.warning("{} ping for {} not delivered: {}", kind, job, reply.detail)
    return reply.ok
