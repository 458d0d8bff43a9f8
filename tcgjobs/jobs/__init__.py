"""The eight jobs, registered explicitly in the original's schedule-table order.

Every run and most commands import all eight modules for their declarations (name, schedule,
options), so a job module imports at its top only what the declaration needs; the services its
``run`` uses are imported in the functions that use them, and a run loads only its own job's.
"""

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
