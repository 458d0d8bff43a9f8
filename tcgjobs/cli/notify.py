"""``tcgjobs notify``: send a test message, and silence alerts during maintenance.

``notify test`` exits 0 when Slack accepted the message, 69 when it could not be delivered now
(timeout, 5xx, 429 beyond the cap: worth retrying), 78 when Slack refused it for good (404/410,
``invalid_token``: the webhook URL is wrong) or no webhook is configured.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tcgjobs.cli import common
from tcgjobs.cli.common import JsonOption
from tcgjobs.cli.output import Column, print_table, when
from tcgjobs.config import Settings
from tcgjobs.db.state import AlertStore, open_state
from tcgjobs.errors import ConfigError, ExitCode, UsageError
from tcgjobs.services.slack import Alert, SlackNotifier
from tcgjobs.times import parse_until, utcnow

notify_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="Test the Slack webhook; silence alerts during maintenance.")


@notify_app.command("test")
def test(
    message: Annotated[str, typer.Option("--message", help="Text of the test message.")] =
        "Test message from tcgjobs: Slack notifications work.",
    as_json: JsonOption = False,
) -> None:
    """Send a test message to SLACK_WEBHOOK_URL (even with NOTIFICATIONS_ENABLED=false) and report
    the HTTP outcome. Exit 0 delivered, 69 not delivered (retryable), 78 refused or unconfigured."""
    settings = common.settings()
    if not settings.slack_webhook_url:
        common.exit_with(ConfigError("SLACK_WEBHOOK_URL is not set; nothing to test"))
    notifier = SlackNotifier(settings.slack_webhook_url, timeout=settings.slack_timeout,
                             max_attempts=settings.slack_max_attempts,
                             max_retry_after=settings.slack_max_retry_after)
    delivery = notifier.send(Alert(title="tcgjobs test", message=message, severity="info"))
    code = ExitCode.OK if delivery.sent else (ExitCode.CONFIG if delivery.permanent else ExitCode.UNAVAILABLE)
    if as_json:
        common.print_json({"delivered": delivery.sent, "http_status": delivery.status,
                           "attempts": delivery.attempts, "permanent": delivery.permanent,
                           "detail": delivery.detail, "exit_code": int(code)},
                          exit_code=code, error=f"not delivered: {delivery.detail}")
    else:
        status = f"HTTP {delivery.status}" if delivery.status else "no HTTP answer"
        verdict = "delivered" if delivery.sent else ("refused for good" if delivery.permanent else "not delivered")
        common.print_text(f"{verdict}: {status} after {delivery.attempts} attempt(s); {delivery.detail}"
                          + ("" if settings.notifications_enabled or not delivery.sent else
                             " (note: NOTIFICATIONS_ENABLED is false, so jobs will not alert)"))
    common.exit_code(code)


def _store(settings: Settings) -> AlertStore:
    """The alert tables of the state database (silences live there); exits 78 if it cannot be opened."""
    with common.errors_exit():
        return AlertStore(open_state(settings.state_path, busy_timeout_ms=settings.busy_timeout_ms))


@notify_app.command("silence")
def silence(
    until: Annotated[str, typer.Option("--until", metavar="TIME",
                                       help="Duration (30m, 2h, 1d) or ISO-8601 time; a time without a "
                                            "zone (2026-11-28T18:00) is in TCGJOBS_TIMEZONE, like the "
                                            "schedules; add Z or +01:00 to be explicit.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown in listings).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Mute Slack alerts until TIME. Checks still run and record; when the silence ends, the next
    alert summarises what changed meanwhile."""
    now = utcnow()
    settings = common.settings()
    zone = settings.timezone
    try:
        end = parse_until(until, now, zone)
    except ValueError as exc:
        common.exit_with(UsageError(f"--until: {exc}"))
    if end <= now:
        common.exit_with(UsageError(f"--until: {end:%Y-%m-%d %H:%M:%S} UTC is not in the future"))
    store = _store(settings)
    created = store.add_silence(end, reason, now)
    store.state.close()
    if as_json:
        common.print_json({"silence": created.as_json()})
    else:
        local = "" if zone.key == "UTC" else f" ({end.astimezone(zone):%Y-%m-%d %H:%M} {zone.key})"
        common.print_text(f"alerts silenced until {when(end)}{local} (silence {created.id}); "
                          f"end it early with `tcgjobs notify unsilence {created.id}`")


@notify_app.command("silences")
def silences(
    all_: Annotated[bool, typer.Option("--all", help="Include ended and expired silences.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List active silences (and TCGJOBS_SILENCE_UNTIL)."""
    settings = common.settings()
    store = _store(settings)
    now = utcnow()
    found = store.silences(include_past=all_, now=now)
    env_until = settings.silence_until
    store.state.close()
    if as_json:
        common.print_json({"silences": [dict(s.as_json(), active=s.active(now)) for s in found],
                           "silence_until_setting": env_until.isoformat() if env_until else None})
        return
    rows: list[tuple[object, ...]] = [
        (s.id, s.starts_at, s.until, s.ended_at or "-", "yes" if s.active(now) else "no", s.reason or "")
        for s in found]
    if env_until is not None and env_until > now:
        rows.append(("env", "-", env_until, "-", "yes", "TCGJOBS_SILENCE_UNTIL"))
    print_table([Column("id", essential=True), Column("from", rank=2), Column("until", essential=True),
                 Column("ended", rank=3), Column("active", essential=True),
                 Column("reason", rank=1, wrap=True, note=True)], rows, zone=settings.timezone)


@notify_app.command("unsilence")
def unsilence(
    silence_id: Annotated[int | None, typer.Argument(help="Silence to end (default: all active).")] = None,
) -> None:
    """End an active silence now (or all of them). TCGJOBS_SILENCE_UNTIL is not affected."""
    store = _store(common.settings())
    ended = store.end_silences(utcnow(), silence_id)
    store.state.close()
    if silence_id is not None and not ended:
        common.exit_with(UsageError(f"no active silence with id {silence_id}"))
    common.print_text(f"ended {ended} silence(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
