"""The eight jobs, registered explicitly in the original's schedule-table order."""

from tcgjobs.jobs import (  # noqa: F401  (importing a module registers its job)
    backup_database,
    rotate_backups,
    sync_missing_sets,
    sync_missing_cards,
    replicate_to_primary,
    cleanup_stale_data,
    validate_data_integrity,
    database_health_check,
)
