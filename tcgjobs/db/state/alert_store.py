"""Alert state, level changes and silences (tables ``alert_state``, ``alert_events``, ``silences``).

Storage only: what to send, and when, is the alerting policy's (:mod:`tcgjobs.services.alerting`),
which reads and writes through :class:`AlertStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peewee import Case

from tcgjobs.db.state.records import AlertSubject, LevelChange, Silence
from tcgjobs.db.state.tables import StateDatabase, values
from tcgjobs.levels import Level


class AlertStore:
    """Reads and writes the alert tables of a migrated state database."""

    def __init__(self, state: StateDatabase) -> None:
        self.state = state

    def atomic(self) -> Any:
        """A transaction around several calls (one run's observations are recorded together)."""
        return self.state.atomic()

    def subject(self, key: str) -> AlertSubject | None:
        table = self.state.alert_state
        row = table.get_or_none(table.key == key)
        return AlertSubject(**values(row)) if row else None

    def observe(self, key: str, level: Level, detail: str, bad_since: datetime | None,
                now: datetime) -> None:
        """Record ``key``'s level this run. What Slack was told (``notified_*``) is kept."""
        table = self.state.alert_state
        (table.insert(key=key, level=level, detail=detail, bad_since=bad_since, observed_at=now,
                      notified_level=Level.OK)
         .on_conflict(conflict_target=[table.key],
                      preserve=[table.level, table.detail, table.bad_since, table.observed_at])
         .execute())

    def record_change(self, key: str, at: datetime, from_level: Level, to_level: Level, detail: str,
                      silenced: bool) -> None:
        self.state.alert_events.insert(key=key, at=at, from_level=from_level, to_level=to_level,
                                       detail=detail, silenced=silenced).execute()

    def forget_changes(self, before: datetime) -> int:
        """Delete level changes older than ``before``, except silenced ones not yet summarised."""
        table = self.state.alert_events
        return (table.delete()
                .where((table.at < before) & ((table.silenced == False) | (table.summarized == True)))  # noqa: E712
                .execute())

    def unsummarized_silenced_changes(self, keys: Sequence[str]) -> list[LevelChange]:
        """Level changes of ``keys`` that happened during a silence and no message has summarised."""
        if not keys:
            return []
        table = self.state.alert_events
        rows = (table.select(table.id, table.key, table.at, table.from_level, table.to_level)
                .where((table.silenced == True) & (table.summarized == False)  # noqa: E712
                       & table.key.in_(list(keys)))
                .order_by(table.id))
        return [LevelChange(**values(row)) for row in rows]

    def mark_notified(self, key: str, level: Level, at: datetime) -> None:
        """Slack accepted a message telling that ``key`` is at ``level``."""
        table = self.state.alert_state
        table.update(notified_level=level, notified_at=at).where(table.key == key).execute()

    def mark_recovered(self, key: str, at: datetime) -> None:
        """Slack accepted a recovery for ``key``. Its outage ends (``bad_since`` cleared) unless it
        is still bad, only below the minimum severity."""
        table = self.state.alert_state
        (table.update(notified_level=Level.OK, notified_at=at,
                      bad_since=Case(None, [(table.level == Level.OK, None)], table.bad_since))
         .where(table.key == key).execute())

    def mark_summarized(self, changes: Sequence[LevelChange]) -> None:
        if changes:
            table = self.state.alert_events
            table.update(summarized=True).where(table.id.in_([c.id for c in changes])).execute()

    def add_silence(self, until: datetime, reason: str | None, now: datetime) -> Silence:
        with self.state.atomic():
            silence_id = self.state.silences.insert(starts_at=now, until=until, reason=reason,
                                                    created_at=now).execute()
        return Silence(silence_id, now, until, reason, now, None)

    def silences(self, include_past: bool = False, now: datetime | None = None) -> list[Silence]:
        """Stored silences, oldest first: all of them with ``include_past`` (or without ``now``),
        else those active at ``now``."""
        table = self.state.silences
        found = [Silence(**values(row)) for row in table.select().order_by(table.id)]
        if not include_past and now is not None:
            found = [s for s in found if s.active(now)]
        return found

    def end_silences(self, now: datetime, silence_id: int | None = None) -> int:
        """End one active silence (or all). Returns how many were ended."""
        table = self.state.silences
        with self.state.atomic():
            ids = [s.id for s in self.silences(now=now) if silence_id is None or s.id == silence_id]
            if ids:
                table.update(ended_at=now).where(table.id.in_(ids)).execute()
        return len(ids)
