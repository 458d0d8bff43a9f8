"""Lock names: one per resource, taken by the runner and the backup commands alike."""

from __future__ import annotations

from tcgjobs.registry import Resource
from tcgjobs.services.locks import resource_lock

# Spelled out, not derived: lock files are shared by every process on a state database, older
# versions included while an upgrade rolls out, so a renamed lock would let two writers in at once.
LOCK_NAMES = {
    Resource.CARD_DB: "resource-card-database",
    Resource.BACKUP_DIR: "resource-backup-directory",
    Resource.PRIMARY: "resource-primary-postgres",
}


def test_every_resource_has_its_own_lock_and_the_names_never_change():
    assert {resource: resource_lock(resource) for resource in Resource} == LOCK_NAMES
