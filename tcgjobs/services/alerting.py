"""State-change alerting: alert on a change, not on every run (Alertmanager/healthchecks.io style).

Every subject (a health check ``check:<name>``, a job ``job:<name>``) has a row in ``alert_state``:
its observed level and ``notified_level``, the level Slack last *accepted* a message about. Each run:

* subjects whose effective level (below NOTIFICATION_MIN_SEVERITY counts as ok) differs from
  the notified level go into ONE digest: newly firing, changed, and recovered (with the downtime);
* optionally, subjects still firing ``TCGJOBS_ALERT_REMINDER_HOURS`` after the last message are
  repeated as reminders;
* ``notified_level`` is only updated when Slack accepted the digest, so a failed post is simply
  recomputed, and retried, next run;
* while a silence is active (``tcgjobs notify silence`` or TCGJOBS_SILENCE_UNTIL) nothing is sent
  but levels and level changes are still recorded; the first digest after the silence summarises
  what flipped meanwhile. A recovery is only ever sent after an alert that was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from peewee import SqliteDatabase

from tcgjobs.config import Settings
from tcgjobs.times import from_text, to_text
from tcgjobs.levels import Level
from tcgjobs.times import human_duration
from tcgjobs.services.slack import Alert, Delivery, SlackNotifier, severity_at_least

EVENT_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class Observation:
    """One subject's level this run. ``severity`` (for the minimum-severity filter) defaults to
    the level's name; job failures use ``error``."""

    key: str
    label: str
    level: Level
    detail: str
    severity: str | None = None

    @property
    def effective_severity(self) -> str:
        return self.severity or (self.level.value if self.level.bad else "info")


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    level: Level
    detail: str
    since: datetime | None = None


@dataclass(frozen=True)
class Event:
    id: int
    key: str
    at: datetime
    from_level: Level
    to_level: Level


@dataclass
class Digest:
    """What one message should say. Empty when nothing changed."""

    firing: list[Line] = field(default_factory=list)
    recovered: list[Line] = field(default_factory=list)
    reminders: list[Line] = field(default_factory=list)
    silenced_events: list[Event] = field(default_factory=list)
    silenced: bool = False

    @property
    def empty(self) -> bool:
        return not (self.firing or self.recovered or self.reminders or self.silenced_events)

    @property
    def worst(self) -> Level:
        return Level.worst([line.level for line in self.firing + self.reminders])


@dataclass(frozen=True)
class Silence:
    id: int | None
    starts_at: datetime
    until: datetime
    reason: str | None
    created_at: datetime
    ended_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until and (self.ended_at is None or self.ended_at > now)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "starts_at": to_text(self.starts_at), "until": to_text(self.until),
                "reason": self.reason, "created_at": to_text(self.created_at),
                "ended_at": to_text(self.ended_at)}


class AlertBook:
    """Alert state, level-change events and silences in the state database (migration 2)."""

    def __init__(self, db: SqliteDatabase, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    # --- silences ------------------------------------------------------------------------------
    def add_silence(self, until: datetime, reason: str | None, now: datetime) -> Silence:
        with self.db.atomic():
            cursor = self.db.execute_sql(
                "INSERT INTO silences (starts_at, until, reason, created_at) VALUES (?, ?, ?, ?)",
                (to_text(now), to_text(until), reason, to_text(now)))
        return Silence(cursor.lastrowid, now, until, reason, now, None)

    def silences(self, include_past: bool = False, now: datetime | None = None) -> list[Silence]:
        rows = self.db.execute_sql("SELECT id, starts_at, until, reason, created_at, ended_at FROM silences "
                                   "ORDER BY id").fetchall()
        found = [Silence(r[0], from_text(r[1]), from_text(r[2]), r[3], from_text(r[4]), from_text(r[5]))
                 for r in rows]
        if not include_past and now is not None:
            found = [s for s in found if s.active(now)]
        return found

    def end_silences(self, now: datetime, silence_id: int | None = None) -> int:
        """End one active silence (or all). Returns how many were ended."""
        ended = 0
        with self.db.atomic():
            for silence in self.silences(now=now):
                if silence_id is None or silence.id == silence_id:
                    self.db.execute_sql("UPDATE silences SET ended_at = ? WHERE id = ?",
                                        (to_text(now), silence.id))
                    ended += 1
        return ended

    def active_silence(self, now: datetime) -> Silence | None:
        """The active silence ending last, from the table or TCGJOBS_SILENCE_UNTIL."""
        active = self.silences(now=now)
        until = self.settings.silence_until
        if until is not None and now < until:
            active.append(Silence(None, now, until, "TCGJOBS_SILENCE_UNTIL", now, None))
        return max(active, key=lambda s: s.until) if active else None

    # --- observing and deciding ------------------------------------------------------------------
    def _state(self, key: str) -> tuple[Level, datetime | None, Level, datetime | None] | None:
        row = self.db.execute_sql("SELECT level, bad_since, notified_level, notified_at FROM alert_state "
                                  "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Level(row[0]), from_text(row[1]), Level(row[2]), from_text(row[3])

    def _effective(self, observation: Observation) -> Level:
        if not observation.level.bad:
            return Level.OK
        minimum = self.settings.notification_min_severity
        return observation.level if severity_at_least(observation.effective_severity, minimum) else Level.OK

    def evaluate(self, observations: Sequence[Observation], now: datetime) -> Digest:
        """Record ``observations`` (levels, level-change events) and work out what to send."""
        silence = self.active_silence(now)
        digest = Digest(silenced=silence is not None)
        reminder = self.settings.alert_reminder_hours
        with self.db.atomic():
            for obs in observations:
                state = self._state(obs.key)
                previous, bad_since, notified, notified_at = state or (Level.OK, None, Level.OK, None)
                if obs.level is not previous:
                    self.db.execute_sql(
                        "INSERT INTO alert_events (key, at, from_level, to_level, detail, silenced) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (obs.key, to_text(now), previous.value, obs.level.value, obs.detail, int(digest.silenced)))
                if obs.level.bad and bad_since is None:
                    bad_since = now
                elif not obs.level.bad and not notified.bad:
                    bad_since = None
                self.db.execute_sql(
                    "INSERT INTO alert_state (key, level, detail, bad_since, observed_at, notified_level) "
                    "VALUES (?, ?, ?, ?, ?, 'ok') ON CONFLICT(key) DO UPDATE SET level = excluded.level, "
                    "detail = excluded.detail, bad_since = excluded.bad_since, observed_at = excluded.observed_at",
                    (obs.key, obs.level.value, obs.detail, to_text(bad_since), to_text(now)))
                effective = self._effective(obs)
                line = Line(obs.key, obs.label, effective if effective.bad else obs.level, obs.detail, bad_since)
                if effective is not notified:
                    (digest.firing if effective.bad else digest.recovered).append(line)
                elif effective.bad and reminder and notified_at and now - notified_at >= timedelta(hours=reminder):
                    digest.reminders.append(line)
            self.db.execute_sql("DELETE FROM alert_events WHERE at < ? AND (silenced = 0 OR summarized = 1)",
                                (to_text(now - EVENT_RETENTION),))
        if not digest.silenced:
            keys = [obs.key for obs in observations]
            digest.silenced_events = self._pending_silenced(keys)
        return digest

    def _pending_silenced(self, keys: list[str]) -> list[Event]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = self.db.execute_sql(
            f"SELECT id, key, at, from_level, to_level FROM alert_events WHERE silenced = 1 AND summarized = 0 "
            f"AND key IN ({marks}) ORDER BY id", keys).fetchall()
        return [Event(r[0], r[1], from_text(r[2]), Level(r[3]), Level(r[4])) for r in rows]

    def commit(self, digest: Digest, now: datetime) -> None:
        """Slack accepted ``digest``: record what it told."""
        with self.db.atomic():
            for line in digest.firing + digest.reminders:
                self.db.execute_sql("UPDATE alert_state SET notified_level = ?, notified_at = ? WHERE key = ?",
                                    (line.level.value, to_text(now), line.key))
            for line in digest.recovered:
                self.db.execute_sql("UPDATE alert_state SET notified_level = 'ok', notified_at = ?, "
                                    "bad_since = CASE WHEN level = 'ok' THEN NULL ELSE bad_since END "
                                    "WHERE key = ?", (to_text(now), line.key))
            for event in digest.silenced_events:
                self.db.execute_sql("UPDATE alert_events SET summarized = 1 WHERE id = ?", (event.id,))


def deliver(book: AlertBook, digest: Digest, alert: Alert, notifier: SlackNotifier | None,
            now: datetime) -> Delivery | None:
    """Send ``alert`` for ``digest`` unless silenced or empty; commit only when Slack accepted it."""
    if digest.empty:
        return None
    if digest.silenced:
        logger.info("alerts silenced; not sending: {}", alert.title)
        return None
    if notifier is None:
        return None
    delivery = notifier.send(alert)
    if delivery.sent:
        book.commit(digest, now)
    else:
        logger.warning("alert not delivered ({}); it will be retried on the next run", delivery.detail)
    return delivery


def _downtime(line: Line, now: datetime) -> str:
    if line.since is None:
        return ""
    return f" (down for {human_duration(now - line.since)}, since {line.since:%Y-%m-%d %H:%M} UTC)"


def silence_summary(events: Sequence[Event], label_of: dict[str, str]) -> list[str]:
    """One line per subject that flipped while alerts were silenced."""
    by_key: dict[str, list[Event]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    lines = []
    for key, flips in by_key.items():
        steps = ", ".join(f"{e.from_level.value} → {e.to_level.value} at {e.at:%m-%d %H:%M}" for e in flips)
        lines.append(f"- {label_of.get(key, key)}: {steps}")
    return lines


def health_alert(digest: Digest, now: datetime, label_of: dict[str, str]) -> Alert:
    """The one Slack message for a health-check digest."""
    parts, lines = [], []
    for level in (Level.CRITICAL, Level.WARNING):
        count = sum(1 for line in digest.firing if line.level is level)
        if count:
            parts.append(f"{count} {level.value}")
    if digest.recovered:
        parts.append(f"{len(digest.recovered)} recovered")
    for line in sorted(digest.firing, key=lambda item: -item.level.rank):
        lines.append(f"{line.level.value.upper()} {line.label}: {line.detail}")
    for line in digest.recovered:
        lines.append(f"RECOVERED {line.label}{_downtime(line, now)}: {line.detail}")
    if digest.reminders:
        lines.append("Still failing:")
        lines += [f"{line.level.value.upper()} {line.label}{_downtime(line, now)}: {line.detail}"
                  for line in digest.reminders]
    if digest.silenced_events:
        lines.append("While alerts were silenced:")
        lines += silence_summary(digest.silenced_events, label_of)
    worst = digest.worst
    if worst.bad:
        title = f"Database Health {'Critical' if worst is Level.CRITICAL else 'Warning'}: " + ", ".join(parts)
        severity = "critical" if worst is Level.CRITICAL else "warning"
    elif digest.recovered:
        title, severity = "Database Health Recovered: " + ", ".join(parts), "info"
    else:
        title, severity = "Database Health: changes while alerts were silenced", "info"
    return Alert(title=title, message="\n".join(lines), severity=severity, job="database-health-check")
