"""database-health-check: named, graded health checks with state-change alerting.

Runs every 15 minutes, so it is quick, read-only on the card database (opened ``mode=ro``, never
created) and quiet unless something changes. Each check (see :mod:`tcgjobs.health.checks`) is
ok, warning or critical against thresholds from the settings. Results are recorded in the state
database (``tcgjobs status`` shows them) and fed to the alerting policy
(:mod:`tcgjobs.services.alerting`): one Slack digest when checks enter warning/critical, one
recovery with the downtime, nothing while unchanged.

Exit 0 when nothing is critical (warnings included), 3 when something is. ``--dry-run`` runs the
checks and shows them but records nothing and sends nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from loguru import logger

from tcgjobs.context import JobContext
from tcgjobs.levels import Level
from tcgjobs.registry import JobResult
from tcgjobs.times import utcnow

if TYPE_CHECKING:
    from tcgjobs.health.checks import CheckResult
    from tcgjobs.services.alerting import AlertPolicy


def _alert(ctx: JobContext, results: list[CheckResult], policy: AlertPolicy) -> str:
    """Run the alerting policy; returns a short note about what was sent."""
    from tcgjobs.observers import notifier_for
    from tcgjobs.services.alerting import Observation, deliver, health_alert

    now = utcnow()
    observations = [Observation(f"check:{r.name}", r.name, r.level, r.detail) for r in results]
    digest = policy.evaluate(observations, now)
    if digest.empty:
        return "no change to alert on"
    alert = health_alert(digest, now, {o.key: o.label for o in observations})
    if digest.silenced:
        return "changes recorded; alerts are silenced"
    delivery = deliver(policy, digest, alert, notifier_for(ctx.settings), now, ctx.cancel)
    if delivery is None:
        return "changes recorded; notifications are off"
    return "alert sent" if delivery.sent else f"alert NOT delivered ({delivery.detail}); retried next run"


def run(ctx: JobContext) -> JobResult:
    from tcgjobs.db.state import AlertStore, HealthStore, open_state
    from tcgjobs.health.checks import CheckEnv, run_checks
    from tcgjobs.services.alerting import AlertPolicy

    settings = ctx.settings
    state = open_state(settings.state_path, busy_timeout_ms=settings.busy_timeout_ms)
    ctx.watch_sqlite(state.db)
    store = HealthStore(state)
    env = CheckEnv(settings=settings, now=utcnow(), open_card_db=lambda: ctx.card_db(readonly=True),
                   history=ctx.history, previous=store.current(),
                   connect_postgres=lambda timeout: ctx.postgres(connect_timeout=timeout))
    results = run_checks(env, check_cancelled=ctx.check_cancelled)
    levels = Counter(r.level for r in results)
    for result in results:
        log = logger.info if result.level is Level.OK else logger.warning
        log("{} {}: {}", result.level.value.upper(), result.name, result.detail)
    note = "dry run: nothing recorded, nothing sent"
    if not ctx.dry_run:
        store.record(results, env.now, ctx.run_id)
        ctx.committed(f"{len(results)} check results recorded; alerts not sent yet",
                      {"checks": len(results)})
        note = _alert(ctx, results, AlertPolicy(AlertStore(state), settings))
    metrics: dict[str, float | int] = {"checks": len(results), "ok": levels[Level.OK], "warning": levels[Level.WARNING],
               "critical": levels[Level.CRITICAL]}
    details = {
        "checks": [r.as_json() for r in results],
        "table": {"columns": ["check", "level", "detail"],
                  "rows": [[r.name, r.level.value, r.detail] for r in results]},
    }
    summary = (f"{len(results)} checks: {levels[Level.OK]} ok, {levels[Level.WARNING]} warning, "
               f"{levels[Level.CRITICAL]} critical; {note}")
    if levels[Level.CRITICAL]:
        failing = ", ".join(r.name for r in results if r.level is Level.CRITICAL)
        return JobResult.problems(f"critical: {failing}", metrics=metrics, summary=summary, details=details)
    return JobResult(metrics=metrics, summary=summary, details=details)
