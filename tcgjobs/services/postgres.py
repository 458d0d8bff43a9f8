"""Connection parameters for the primary PostgreSQL.

The primary counts as configured when TCGJOBS_POSTGRES_URL or POSTGRES_HOST is set; nothing here
ever falls back to localhost. Parameters are passed to psycopg2 as keywords, so the password never
has to be part of a string that could be logged.
"""

from __future__ import annotations

import math
from typing import Any

from tcgjobs.cancel import CancelScope, call_unless_cancelled
from tcgjobs.config import Settings
from tcgjobs.errors import ConfigError, JobFailed, ServiceRefused, ServiceUnavailable, TcgjobsError, first_line

#: libpq's words when the server answered and said no (unknown database or role, credentials,
#: pg_hba, SSL demanded or refused): the settings must change, so 78, not a retryable 69.
REFUSALS = ("does not exist", "authentication failed", "no pg_hba.conf entry", "permission denied",
            "not permitted to log in", "no password supplied", "SSL was required",
            "does not support SSL")


def connect_params(settings: Settings) -> dict[str, Any]:
    """psycopg2.connect keyword arguments. Raises ConfigError when no primary is configured."""
    if not settings.postgres_configured:
        raise ConfigError("no PostgreSQL primary is configured (set TCGJOBS_POSTGRES_URL or POSTGRES_HOST)")
    params: dict[str, Any] = {"application_name": "tcgjobs",
                              "connect_timeout": settings.postgres_connect_timeout}
    if settings.postgres_url:
        params["dsn"] = settings.postgres_url
    else:
        params.update(host=settings.postgres_host, port=settings.postgres_port)
        for key, value in (("user", settings.postgres_user), ("password", settings.postgres_password),
                           ("dbname", settings.postgres_db)):
            if value:
                params[key] = value
    if settings.postgres_sslmode:
        params["sslmode"] = settings.postgres_sslmode
    # No ``options`` here: it would replace the URL's own (a search_path, say) and PGOPTIONS.
    return params


def describe_target(settings: Settings) -> str:
    """host:port/db for messages, without user or password."""
    params = connect_params(settings)
    if "dsn" in params:
        from psycopg2.extensions import parse_dsn

        parsed = parse_dsn(params["dsn"])
        return f"{parsed.get('host', 'localhost')}:{parsed.get('port', 5432)}/{parsed.get('dbname', '')}"
    return f"{params['host']}:{params['port']}/{params.get('dbname', '')}"


def _password(settings: Settings) -> str | None:
    if settings.postgres_url:
        from psycopg2.extensions import parse_dsn

        try:
            return parse_dsn(settings.postgres_url).get("password")
        except Exception:  # noqa: BLE001 - an unparsable URL has no password we could recognise
            return None
    return settings.postgres_password


def _scrub(message: str, settings: Settings) -> str:
    """``message`` without the password (libpq never prints it, but a DSN echo could)."""
    password = _password(settings)
    text = " ".join(message.split())
    if password:
        text = text.replace(password, "<redacted>")
    if settings.postgres_url:
        text = text.replace(settings.postgres_url, "<postgres url>")
    return text


def connect(settings: Settings, *, cancel: CancelScope | None = None,
            timeout: int | None = None) -> Any:
    """An open psycopg2 connection to the primary (autocommit off, UTF-8, application_name
    ``tcgjobs``, connect and statement timeouts from the settings; ``timeout`` overrides the
    connect timeout).

    With ``cancel`` (the run's scope) the connect never outlives the run: libpq waits for the
    server in C and resumes after a signal, so Python cannot interrupt it. It runs in a worker
    thread that the caller stops waiting for when the scope fires (Cancelled; the process exits
    soon after recording the run, and a connection that arrives later is closed), and its
    timeout is at most what is left of the deadline (libpq counts at least 2 s).

    Raises ConfigError when no primary is configured, ServiceUnavailable when it cannot be
    reached and ServiceRefused when it refuses us (:func:`connect_failure`); no message contains
    the password.
    """
    params = connect_params(settings)
    if timeout is not None:
        params["connect_timeout"] = timeout
    if cancel is None:
        return _open(params, settings)
    params["connect_timeout"] = max(2, math.ceil(cancel.bound(params["connect_timeout"])))
    return call_unless_cancelled(cancel, lambda: _open(params, settings), name="postgres-connect",
                                 discard=lambda connection: connection.close())


def _open(params: dict[str, Any], settings: Settings) -> Any:
    import psycopg2

    target = describe_target(settings)
    try:
        connection = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        raise connect_failure(exc, settings) from None
    try:
        connection.set_client_encoding("UTF8")
        connection.autocommit = True  # a session setting, outside any transaction
        with connection.cursor() as cursor:  # 0: no limit, whatever the server's default
            cursor.execute("SET statement_timeout = %s",
                           (int(settings.postgres_statement_timeout) * 1000,))
        connection.autocommit = False
    except psycopg2.Error as exc:
        connection.close()
        raise ServiceUnavailable(f"cannot set up the PostgreSQL connection at {target}: "
                                 f"{_scrub(str(exc), settings)}") from None
    return connection


def connect_failure(exc: Exception, settings: Settings) -> ServiceUnavailable | ServiceRefused:
    """Why a connection could not be made, by the rule of :class:`ServiceUnavailable`: the server
    refusing us (REFUSALS) is 78, anything else (refused connection, DNS, timeout, a server
    starting up or full) is 69. Names host, port and database, never the password."""
    reason = _scrub(str(exc), settings)
    target = describe_target(settings)
    if any(word in reason for word in REFUSALS):
        return ServiceRefused(f"PostgreSQL at {target} refused the connection: {reason}")
    return ServiceUnavailable(f"cannot connect to PostgreSQL at {target}: {reason}")


def unavailable(exc: Exception, settings: Settings) -> ServiceUnavailable:
    """A ServiceUnavailable for a connection lost mid-run, without the password."""
    return ServiceUnavailable(f"lost the PostgreSQL connection to {describe_target(settings)}: "
                              f"{_scrub(str(exc), settings)}")


def connection_lost(exc: Exception) -> bool:
    """Whether a psycopg2 error means the connection is gone (or the server is going away),
    rather than a statement the server refused."""
    import psycopg2

    if isinstance(exc, psycopg2.InterfaceError):
        return True
    code = getattr(exc, "pgcode", None)
    if code is None:  # raised by libpq itself: the server closed the connection, a network error
        return isinstance(exc, psycopg2.OperationalError)
    return code.startswith("08") or code in ("57P01", "57P02", "57P03")


def failure(exc: Exception, settings: Settings) -> TcgjobsError:
    """The error to report for a psycopg2 error that ended a run: :func:`unavailable` when the
    connection is gone (69), else :func:`refused` (1)."""
    return unavailable(exc, settings) if connection_lost(exc) else refused(exc, settings)


def refused(exc: Exception, settings: Settings) -> JobFailed:
    """A JobFailed for a statement PostgreSQL refused (the transaction was rolled back), naming
    the SQLSTATE, without the password; a statement timeout names its setting."""
    code = getattr(exc, "pgcode", None) or "?"
    hint = ""
    if code == "57014":
        hint = (f" (longer than TCGJOBS_POSTGRES_STATEMENT_TIMEOUT, "
                f"{settings.postgres_statement_timeout} s)")
    reason = _scrub(first_line(exc), settings)
    return JobFailed(f"PostgreSQL refused a statement{hint}: {reason} (SQLSTATE {code}); the "
                     "transaction was rolled back, nothing was changed")
