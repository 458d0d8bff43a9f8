"""Log sinks and redaction.

Sinks are configured once, by the CLI callback: human-readable lines on a terminal, JSON lines
otherwise (or when TCGJOBS_LOG_FORMAT says so), always on stderr so stdout carries only results.
Every line carries the job name and run id: the runner runs a job inside :func:`run_context`, which
also reaches the lines of the run's threads (deadline, signals, heartbeat).
Standard-library loggers are routed into loguru.

Secrets never reach a sink: every message and exception text passes through :data:`REDACTOR`,
which knows each secret setting's value (and the pieces of a URL that would identify it) plus a
pattern for passwords embedded in connection URLs.
"""

from __future__ import annotations

import json
import logging as stdlib_logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO
from urllib.parse import urlsplit

from loguru import logger

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'[^']*'|\S+)", re.I)
_SLACK_PATH = re.compile(r"/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+")
MASK = "***"
_DATABASE_SCHEMES = {"postgres", "postgresql"}


class Redactor:
    """Replaces known secrets and secret-looking fragments in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            if not value:
                continue
            self._secrets.add(value)
            parts = urlsplit(value)
            if parts.scheme and parts.netloc:
                if parts.password:
                    self._secrets.add(parts.password)
                # A webhook's, ping's or Pushgateway's token lives in its path; a PostgreSQL URL's
                # path is the database name, which messages show as host:port/dbname.
                if len(parts.path) > 8 and parts.scheme.lower() not in _DATABASE_SCHEMES:
                    self._secrets.add(parts.path)
                if parts.query:
                    self._secrets.add(parts.query)
            if "{job}" in value:  # a template: once filled in, only what precedes {job} is still literal
                for piece in (value.split("{job}", 1)[0], parts.path.split("{job}", 1)[0]):
                    if len(piece.rstrip("/")) >= 8:
                        self._secrets.add(piece.rstrip("/"))

    def clear(self) -> None:
        self._secrets.clear()

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4 and secret in text:
                text = text.replace(secret, MASK)
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        text = _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        return _SLACK_PATH.sub("/services/" + MASK, text)


REDACTOR = Redactor()


def redact(text: str) -> str:
    """``text`` with every known secret masked."""
    return REDACTOR(text)


#: The run this process is running, if any (a process runs one job at most): job and run_id.
_RUN: dict[str, str] = {}


@contextmanager
def run_context(job: str, run_id: str) -> Iterator[None]:
    """Every log line inside carries ``job`` and ``run_id``, including the lines of other threads
    (the deadline timer, the signal watcher, the heartbeat), which ``logger.contextualize`` does
    not reach: its context variables are the calling thread's."""
    _RUN.update(job=job, run_id=run_id)
    try:
        with logger.contextualize(job=job, run_id=run_id):
            yield
    finally:
        _RUN.clear()


def _with_run(record: Any) -> None:
    """Loguru patcher: the process's run for a line logged outside the run's own context."""
    extra = record["extra"]
    for key, value in _RUN.items():
        if extra.get(key) is None:
            extra[key] = value


def _exception_text(record: dict[str, Any]) -> str:
    exception = record["exception"]
    if exception is None or exception.type is None:
        return ""
    import traceback

    return "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))


def _context(record: dict[str, Any]) -> dict[str, Any]:
    extra = record["extra"]
    return {k: v for k, v in extra.items() if v is not None}


def _human_sink(stream: TextIO | None) -> Callable[[Any], None]:
    def write(message: Any) -> None:
        out = stream or sys.stderr
        record = message.record
        extra = _context(record)
        where = ""
        if extra.get("job"):
            where = f" [{extra['job']}{' ' + str(extra['run_id'])[:8] if extra.get('run_id') else ''}]"
        line = f"{record['time']:%Y-%m-%dT%H:%M:%S%z} {record['level'].name:<7}{where} {record['message']}"
        text = redact(line + "\n" + _exception_text(record))
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()

    return write


def _json_sink(stream: TextIO | None) -> Callable[[Any], None]:
    def write(message: Any) -> None:
        out = stream or sys.stderr
        record = message.record
        payload = {
            "ts": record["time"].astimezone().isoformat(timespec="milliseconds"),
            "level": record["level"].name.lower(),
            "message": record["message"],
            **{k: v for k, v in _context(record).items()},
        }
        exception = _exception_text(record)
        if exception:
            payload["exception"] = exception
        out.write(redact(json.dumps(payload, default=str, ensure_ascii=False)) + "\n")
        out.flush()

    return write


class _InterceptHandler(stdlib_logging.Handler):
    """Routes standard-library log records (requests, urllib3, ...) into loguru."""

    def emit(self, record: stdlib_logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None,
              secrets: Iterable[str] = ()) -> None:
    """Install the one sink. ``fmt`` is auto, human or json; auto means human on a terminal.

    Without ``stream`` the sink writes to whatever ``sys.stderr`` is at the time of each line.
    """
    REDACTOR.add(secrets)
    if fmt == "auto":
        fmt = "human" if getattr(stream or sys.stderr, "isatty", lambda: False)() else "json"
    logger.remove()
    logger.configure(extra={"job": None, "run_id": None}, patcher=_with_run)
    sink = _human_sink(stream) if fmt == "human" else _json_sink(stream)
    logger.add(sink, level=level.upper(), backtrace=False, diagnose=False, catch=True)
    stdlib_logging.basicConfig(handlers=[_InterceptHandler()], level=stdlib_logging.WARNING, force=True)
