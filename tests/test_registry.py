"""The registry declares all eight jobs with the original's schedules, timeouts and dependencies."""

from __future__ import annotations

import pytest

from tcgjobs.registry import REGISTRY, DuplicateJobError, Job, Resource, all_jobs, get_job, register

ORIGINAL = {  # original-service.md §3.0: schedule, timeout (s), dependencies
    "backup-database": ("0 0 * * *", 300, ()),
    "rotate-backups": ("0 1 * * *", 60, ("backup-database",)),
    "sync-missing-sets": ("0 2 * * *", 300, ()),
    "sync-missing-cards": ("0 3 * * *", 1800, ("sync-missing-sets",)),
    "replicate-to-primary": ("0 4 * * *", 1800, ("sync-missing-cards",)),
    "cleanup-stale-data": ("0 5 * * 0", 600, ()),
    "validate-data-integrity": ("0 6 * * 0", 600, ()),
    "database-health-check": ("*/15 * * * *", 60, ()),
}


def test_all_eight_jobs_are_registered_with_the_original_schedule_timeout_and_dependencies():
    jobs = all_jobs()
    assert list(jobs) == list(ORIGINAL)
    for name, (schedule, timeout, depends_on) in ORIGINAL.items():
        job = jobs[name]
        assert (job.schedule, job.timeout, job.depends_on) == (schedule, timeout, depends_on), name
        assert job.help


def test_jobs_declare_the_resources_they_write():
    jobs = all_jobs()
    assert Resource.CARD_DB in jobs["sync-missing-cards"].writes
    assert Resource.CARD_DB in jobs["cleanup-stale-data"].writes
    assert jobs["backup-database"].writes == jobs["rotate-backups"].writes == {Resource.BACKUP_DIR}
    assert jobs["replicate-to-primary"].writes == {Resource.PRIMARY}
    assert not jobs["database-health-check"].writes


def test_a_second_job_with_the_same_name_is_refused():
    with pytest.raises(DuplicateJobError, match="already registered"):
        register(Job(name="cleanup-stale-data", help="again", schedule="* * * * *", timeout=1,
                     run=lambda ctx: None))
    assert REGISTRY["cleanup-stale-data"].help != "again"


def test_unknown_job_lookup_lists_the_valid_names():
    with pytest.raises(KeyError) as caught:
        get_job("vacuum-everything")
    assert "cleanup-stale-data" in str(caught.value) and "database-health-check" in str(caught.value)


def test_module_names_match_cli_names():
    import importlib

    for name, job in all_jobs().items():
        module = importlib.import_module(f"tcgjobs.jobs.{job.module_name}")
        assert module.__name__.endswith(name.replace("-", "_"))
