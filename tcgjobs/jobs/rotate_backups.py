"""rotate-backups: calendar-based retention that never loses the last good backup."""

from tcgjobs import parsers as p
from tcgjobs.registry import JobOption, Resource, declare

JOB = declare(
    name="rotate-backups",
    help="Calendar-based backup retention that never deletes the newest verified backup.",
    schedule="0 1 * * *",
    timeout=60,
    depends_on=("backup-database",),
    writes=frozenset({Resource.BACKUP_DIR}),
    options=(
        JobOption("daily", int, 7, "Keep the newest backup of each of the last N days with backups.",
                  p.int_between(0), env=("BACKUP_DAILY_RETENTION",)),
        JobOption("weekly", int, 4, "Keep the newest backup of each of the last N ISO weeks.",
                  p.int_between(0), env=("BACKUP_WEEKLY_RETENTION",)),
        JobOption("monthly", int, 3, "Keep the newest backup of each of the last N months.",
                  p.int_between(0), env=("BACKUP_MONTHLY_RETENTION",)),
        JobOption("minimum", int, 5, "Never keep fewer than N backups.",
                  p.int_between(1), env=("BACKUP_MINIMUM",)),
    ),
)
