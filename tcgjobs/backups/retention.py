"""Which backups to keep: calendar buckets in UTC, restic's OR semantics, with reasons.

For each rule (daily, weekly, monthly, yearly) the backups that count are walked newest first;
the newest backup of each calendar bucket (a UTC day, an ISO week Monday–Sunday, a month, a year)
is kept, for the last N buckets that *have* backups. The rules are ORed: one backup may be the
daily, weekly and monthly pick at once, and then has all three reasons (restic ``forget``;
prior-art.md §1.3). Then:

* ``minimum``: while fewer backups are kept, the newest not yet kept are added;
* the newest sound backup is always kept, whatever the policy;
* backups dated in the future are kept (a clock problem is not a reason to delete);
* only sound backups (``verified``) count toward any rule. An ``unverifiable`` backup is kept
  and reported, never counted. A ``corrupt`` one is deleted, except while no sound backup exists
  (then every corrupt backup is kept: a damaged copy may still be partly salvageable, and an
  unverifiable one is no proof that anything restorable is left).

Pure: no files, no clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tcgjobs.errors import ConfigError

SOUND, UNVERIFIABLE, CORRUPT = "verified", "unverifiable", "corrupt"


@dataclass(frozen=True)
class Policy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 3
    yearly: int = 0
    minimum: int = 5

    def check(self) -> None:
        """Raises ConfigError for a policy that would keep nothing by rule (restic refuses too)."""
        if min(self.daily, self.weekly, self.monthly, self.yearly, self.minimum) < 0:
            raise ConfigError("retention counts must not be negative")
        if not (self.daily or self.weekly or self.monthly or self.yearly):
            raise ConfigError("empty retention policy: daily, weekly, monthly and yearly are all 0; "
                              "refusing to rotate (set BACKUP_DAILY_RETENTION or another rule)")


@dataclass(frozen=True)
class Candidate:
    """One backup as retention sees it. ``status``: verified, unverifiable or corrupt."""

    key: str
    created_at: datetime
    status: str


@dataclass
class Decision:
    key: str
    keep: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def action(self) -> str:
        return "keep" if self.keep else "delete"


def day_bucket(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def week_bucket(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def month_bucket(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def year_bucket(moment: datetime) -> str:
    return moment.strftime("%Y")


RULES: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("daily", day_bucket), ("weekly", week_bucket), ("monthly", month_bucket), ("yearly", year_bucket))


def plan(candidates: Sequence[Candidate], policy: Policy, now: datetime) -> list[Decision]:
    """A decision per candidate, newest first. Raises ConfigError for an empty policy.

    Times are compared in UTC (``created_at`` must be timezone-aware).
    """
    policy.check()
    ordered = sorted(candidates, key=lambda c: (c.created_at, c.key), reverse=True)
    decisions = {c.key: Decision(c.key, False) for c in ordered}
    sound = [c for c in ordered if c.status == SOUND]

    for rule, bucket_of in RULES:
        limit = getattr(policy, rule)
        seen: set[str] = set()
        for candidate in sound:
            if len(seen) >= limit:
                break
            bucket = bucket_of(_utc(candidate.created_at))
            if bucket in seen:
                continue
            seen.add(bucket)
            decisions[candidate.key].reasons.append(f"{rule} {bucket}")
    for candidate in sound:
        if _utc(candidate.created_at) > _utc(now):
            decisions[candidate.key].reasons.append("dated in the future")
    if sound and not decisions[sound[0].key].reasons:
        decisions[sound[0].key].reasons.append("newest verified backup")
    kept = sum(1 for c in sound if decisions[c.key].reasons)
    for candidate in sound:
        if kept >= policy.minimum:
            break
        if not decisions[candidate.key].reasons:
            decisions[candidate.key].reasons.append(f"minimum {policy.minimum}")
            kept += 1

    for candidate in ordered:
        decision = decisions[candidate.key]
        if candidate.status == UNVERIFIABLE:
            decision.reasons.append("unverifiable: kept, not counted")
        elif candidate.status == CORRUPT:
            if not sound:
                decision.reasons.append("corrupt, kept: no verified backup exists")
            else:
                decision.reasons.append("corrupt")
                continue
        elif candidate.status != SOUND:
            raise ValueError(f"unknown status {candidate.status!r}")
        elif not decision.reasons:
            decision.reasons.append("no rule keeps it")
            continue
        decision.keep = True
    return [decisions[c.key] for c in ordered]


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("retention needs timezone-aware times")
    return moment.astimezone(UTC)
