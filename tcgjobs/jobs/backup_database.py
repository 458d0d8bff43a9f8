"""backup-database: consistent, compressed, SHA256-verified SQLite backup."""

from tcgjobs.registry import Resource, declare

JOB = declare(
    name="backup-database",
    help="Consistent, compressed, SHA256-verified backup of the card database.",
    schedule="0 0 * * *",
    timeout=300,
    writes=frozenset({Resource.BACKUP_DIR}),
)
