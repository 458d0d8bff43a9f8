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

This module is the policy only; the alert tables are read and written through
:class:`tcgjobs.db.state.AlertStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loguru import logger

from tcgjobs.cancel import CancelScope
from tcgjobs.config import Settings
from tcgjobs.db.state import AlertStore, LevelChange, Silence
from tcgjobs.levels import Level
from tcgjobs.services.slack import Alert, Delivery, SlackNotifier, severity_at_least
from tcgjobs.times import human_duration

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


@dataclass
class Digest:
    """What one message should say. Empty when nothing changed."""

    firing: list[Line] = field(default_factory=list)
    recovered: list[Line] = field(default_factory=list)
    reminders: list[Line] = field(default_factory=list)
    silenced_events: list[LevelChange] = field(default_factory=list)
    silenced: bool = False

    @property
    def empty(self) -> bool:
        return not (self.firing or self.recovered or self.reminders or self.silenced_events)

    @property
    def worst(self) -> Level:
        return Level.worst([line.level for line in self.firing + self.reminders])


def silences_in_effect(stored: Iterable[Silence], settings: Settings, now: datetime) -> list[Silence]:
    """The silences in effect at ``now``: the stored ones (``tcgjobs notify silence``) that are
    active and TCGJOBS_SILENCE_UNTIL, ending soonest first."""
    found = [silence for silence in stored if silence.active(now)]
    until = settings.silence_until
    if until is not None and now < until:
        found.append(Silence(None, now, until, "TCGJOBS_SILENCE_UNTIL", now, None))
    return sorted(found, key=lambda silence: silence.until)


class AlertPolicy:
    """Decides what to send for a run's observations, and records it in the alert tables."""

    def __init__(self, store: AlertStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def active_silence(self, now: datetime) -> Silence | None:
        """The silence in effect ending last, if any."""
        found = silences_in_effect(self.store.silences(now=now), self.settings, now)
        return found[-1] if found else None

    def _effective(self, observation: Observation) -> Level:
        if not observation.level.bad:
            return Level.OK
        minimum = self.settings.notification_min_severity
        return observation.level if severity_at_least(observation.effective_severity, minimum) else Level.OK

    def evaluate(self, observations: Sequence[Observation], now: datetime) -> Digest:
        """Record ``observations`` (levels, level changes) and work out what to send."""
        digest = Digest(silenced=self.active_silence(now) is not None)
        with self.store.atomic():
            for observation in observations:
                self._observe(observation, now, digest)
            self.store.forget_changes(before=now - EVENT_RETENTION)
        if not digest.silenced:
            keys = [observation.key for observation in observations]
            digest.silenced_events = self.store.unsummarized_silenced_changes(keys)
        return digest

    def _observe(self, observation: Observation, now: datetime, digest: Digest) -> None:
        """Record one subject's level and add its line to ``digest`` if it is to be sent."""
        subject = self.store.subject(observation.key)
        previous = subject.level if subject else Level.OK
        bad_since = subject.bad_since if subject else None
        notified = subject.notified_level if subject else Level.OK
        notified_at = subject.notified_at if subject else None
        if observation.level is not previous:
            self.store.record_change(observation.key, now, previous, observation.level, observation.detail,
                                     silenced=digest.silenced)
        if observation.level.bad and bad_since is None:
            bad_since = now
        elif not observation.level.bad and not notified.bad:
            bad_since = None
        self.store.observe(observation.key, observation.level, observation.detail, bad_since, now)
        effective = self._effective(observation)
        line = Line(observation.key, observation.label, effective if effective.bad else observation.level,
                    observation.detail, bad_since)
        reminder = self.settings.alert_reminder_hours
        if effective is not notified:
            (digest.firing if effective.bad else digest.recovered).append(line)
        elif effective.bad and reminder and notified_at and now - notified_at >= timedelta(hours=reminder):
            digest.reminders.append(line)

    def commit(self, digest: Digest, now: datetime) -> None:
        """Slack accepted ``digest``: record what it told."""
        with self.store.atomic():
            for line in digest.firing + digest.reminders:
                self.store.mark_notified(line.key, line.level, now)
            for line in digest.recovered:
                self.store.mark_recovered(line.key, now)
            self.store.mark_summarized(digest.silenced_events)


def deliver(policy: AlertPolicy, digest: Digest, alert: Alert, notifier: SlackNotifier | None,
            now: datetime, cancel: CancelScope | None = None) -> Delivery | None:
    """Send ``alert`` for ``digest`` unless silenced or empty; commit only when Slack accepted it.
    ``cancel`` cuts the sending short (then nothing is committed and the next run sends it)."""
    if digest.empty:
        return None
    if digest.silenced:
        logger.info("alerts silenced; not sending: {}", alert.title)
        return None
    if notifier is None:
        return None
    delivery = notifier.send(alert, cancel)
    if delivery.sent:
        policy.commit(digest, now)
    else:
        logger.warning("alert not delivered ({}); it will be retried on the next run", delivery.detail)
    return delivery


def _downtime(line: Line, now: datetime) -> str:
    if line.since is None:
        return ""
    return f" (down for {human_duration(now - line.since)}, since {line.since:%Y-%m-%d %H:%M} UTC)"


def silence_summary(events: Sequence[LevelChange], label_of: dict[str, str]) -> list[str]:
    """One line per subject that flipped while alerts were silenced."""
    by_key: dict[str, list[LevelChange]] = {}
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
