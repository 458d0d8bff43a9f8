"""Dead-man pings in the healthchecks.io convention (also understood by runitor, Cronitor's
healthchecks mode and self-hosted healthchecks).

``<url>/start`` when a run starts, ``<url>`` when it succeeds, ``<url>/<exit code>`` when it fails
(healthchecks treats any non-zero code as a failure and shows the code). ``{job}`` in the URL is
replaced by the job name (slug URLs: ``https://hc-ping.com/<ping-key>/{job}``). Every ping carries
``rid=<run id>`` so start and finish pair up. A ping has a short timeout, is tried twice, and never
raises: a monitoring outage must not fail a job.
"""

from __future__ import annotations

import uuid

from loguru import logger

from tcgjobs.logging import redact


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
         exit_code: int | None = None, attempts: int = 2) -> bool:
    """Send one ping. Returns whether the endpoint answered 2xx; logs a warning otherwise."""
    url = ping_url(template, job, kind, exit_code)
    detail = ""
    for _ in range(attempts):
        import requests  # imported here: it costs ~50 ms of every CLI start
        try:
            response = requests.get(url, params={"rid": _rid(run_id)}, timeout=timeout)
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__} (no answer within {timeout:g}s or connection failed)"
            continue
        if 200 <= response.status_code < 300:
            return True
        detail = f"HTTP {response.status_code}"
        if response.status_code < 500:
            break
    logger.warning("{} ping for {} not delivered: {}", kind, job, redact(detail))
    return False
