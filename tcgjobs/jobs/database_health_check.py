"""database-health-check: named health checks with state-change alerting."""

from tcgjobs.registry import declare

JOB = declare(
    name="database-health-check",
    help="Health checks of the databases, backups and jobs; alerts when a check changes state.",
    schedule="*/15 * * * *",
    timeout=60,
)
