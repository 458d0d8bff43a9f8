"""Small parsers for setting and option values. Each raises ``ValueError`` with a message that says
what was expected; the configuration loader puts the setting's name in front of it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def int_between(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def float_between(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if value != value:  # NaN
            raise ValueError("expected a number, got NaN")
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}, got {value:g}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}, got {value:g}")
        return value

    parse.__name__ = "float"
    return parse


#: A job's deadline in seconds: TCGJOBS_<JOB>_TIMEOUT and ``run JOB --timeout`` share it, so
#: the command line accepts exactly what the setting does.
parse_timeout = float_between(1)


_SIZE = re.compile(r"(\d+) ?([a-z]*)")
_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


class ByteSize(int):
    """A number of bytes that prints the way an operator writes it: ``64MiB``, ``1KiB``, ``1000``."""

    def __str__(self) -> str:
        for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if self and self % factor == 0:
                return f"{self // factor}{unit}"
        return str(int(self))


def size_between(low: int = 0, high: int | None = None) -> Callable[[str], ByteSize]:
    """A size in bytes, optionally with a binary unit: ``1048576``, ``1MiB``, ``512 KiB``, ``2GiB``."""
    def parse(raw: str) -> ByteSize:
        match = _SIZE.fullmatch(raw.strip().lower())
        factor = _UNITS.get(match.group(2)) if match else None
        if match is None or factor is None:
            raise ValueError(f"expected a size such as 1048576, 512KiB or 64MiB, got {raw!r}")
        value = ByteSize(int(match.group(1)) * factor)
        if value < low:
            raise ValueError(f"must be at least {ByteSize(low)}, got {value}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {ByteSize(high)}, got {value}")
        return value

    parse.__name__ = "size"
    return parse


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_list(raw: str) -> str:
    """Field or column names separated by commas (``hp, artist``), as ``artist,hp``: sorted,
    without repeats; empty for none. Which names exist is for the user of the value to say."""
    names = sorted({name.strip() for name in raw.split(",") if name.strip()})
    bad = [name for name in names if not _NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"expected field names separated by commas, got {', '.join(map(repr, bad))}")
    return ",".join(names)


def parse_path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("expected a path, got an empty value")
    return Path(raw.strip()).expanduser()


def parse_optional_path(raw: str) -> Path | None:
    return parse_path(raw) if raw.strip() else None


def parse_timezone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {raw!r} (e.g. UTC, Europe/Berlin)") from None


def parse_cron(raw: str) -> str:
    from croniter import croniter  # only a schedule set in the environment is parsed

    expr = " ".join(raw.split())
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError(f"expected a 5-field cron expression such as '0 2 * * *', got {raw!r}")
    return expr


def choice(*choices: str, aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    aliases = aliases or {}

    def parse(raw: str) -> str:
        value = raw.strip().lower()
        value = aliases.get(value, value)
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    parse.__name__ = "choice"
    return parse


def parse_url(raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("expected an http(s):// URL")
    return value


def parse_postgres_url(raw: str) -> str:
    """A libpq connection URL. A user or password with an unencoded ``@``, ``#`` or ``/`` is
    refused: libpq would read part of the password as the host or the database and print it in
    its errors. Messages never quote the URL (it holds the password)."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError("expected a postgresql:// URL")
    if parts.netloc.count("@") > 1 or parts.fragment or _password_split_by_slash(parts.netloc,
                                                                                  parts.path):
        raise ValueError("a character of the user or password is not percent-encoded "
                         "(write @ as %40, # as %23, / as %2F)")
    from psycopg2.extensions import parse_dsn  # only when a URL is set

    try:
        parse_dsn(value)
    except Exception:  # noqa: BLE001 - libpq's message quotes the part it could not parse: never shown
        raise ValueError("libpq cannot parse it (a bad %-escape or an unknown parameter)") from None
    return value


def _password_split_by_slash(netloc: str, path: str) -> bool:
    """``user:pass/word@host/db`` splits at the ``/``: the host part looks like ``user:pass``
    (a port that is not a number) and the path holds the ``@``. (Several hosts, ``h1:5432,h2``,
    and IPv6 addresses, ``[::1]``, have numeric ports or none.)"""
    if "@" in netloc or "@" not in path:
        return False
    last = netloc.rsplit(",", 1)[-1]
    return ":" in last and not last.endswith("]") and not last.rsplit(":", 1)[1].isdigit()


def parse_str(raw: str) -> str:
    return raw.strip()


def format_value(value: Any) -> str:
    """Render a parsed value back as the text an operator would write in the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, ZoneInfo):
        return value.key
    if value is None:
        return ""
    return str(value)
