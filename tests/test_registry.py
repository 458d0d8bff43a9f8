"""The registry declares every job as data: the original's eight with its schedules, timeouts and
dependencies, and the jobs tcgjobs adds; one implementation module per job, loaded only when that
job runs."""

from __future__ import annotations

import inspect
import json
import pkgutil
import subprocess
import sys
import typing
from collections import Counter

import pytest

import tcgjobs.jobs
from tcgjobs.config import all_settings
from tcgjobs.context import JobContext
from tcgjobs.registry import (
    JOBS,
    OPERATIONS,
    REGISTRY,
    DuplicateJobError,
    Job,
    JobResult,
    Resource,
    all_jobs,
    get_job,
    register,
)

ORIGINAL = {  # the original service's jobs: schedule, timeout (s), dependencies
    "backup-database": ("0 0 * * *", 300, ()),
    "rotate-backups": ("0 1 * * *", 60, ("backup-database",)),
    "sync-missing-sets": ("0 2 * * *", 300, ()),
    "sync-missing-cards": ("0 3 * * *", 1800, ("sync-missing-sets",)),
    "replicate-to-primary": ("0 4 * * *", 1800, ("sync-missing-cards",)),
    "cleanup-stale-data": ("0 5 * * 0", 600, ()),
    "validate-data-integrity": ("0 6 * * 0", 600, ()),
    "database-health-check": ("*/15 * * * *", 60, ()),
}
ADDED = {  # tcgjobs' own jobs (issue 16: off-site copies)
    "upload-backups": ("30 0 * * *", 1800, ("backup-database",)),
}

# Loads the settings in a fresh interpreter and prints the tcgjobs modules that took.
MODULES_AFTER_SETTINGS = """
import json, os, sys
from tcgjobs.config import load_settings
load_settings(os.environ)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("tcgjobs"))))
"""


def test_all_eight_jobs_are_registered_with_the_original_schedule_timeout_and_dependencies():
    jobs = all_jobs()
    assert sorted(jobs) == sorted({**ORIGINAL, **ADDED})
    assert [name for name in jobs if name in ORIGINAL] == list(ORIGINAL)
    for name, (schedule, timeout, depends_on) in {**ORIGINAL, **ADDED}.items():
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
    assert jobs["upload-backups"].writes == {Resource.OFFSITE}


@pytest.mark.parametrize("job", JOBS, ids=lambda job: job.name)
def test_every_declared_job_has_a_module_whose_run_takes_a_context_and_returns_a_result(job):
    run = job.load()
    assert run.__module__ == f"tcgjobs.jobs.{job.name.replace('-', '_')}"
    parameters = list(inspect.signature(run).parameters.values())
    assert len(parameters) == 1 and parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    hints = typing.get_type_hints(run)
    assert hints == {parameters[0].name: JobContext, "return": JobResult}


def test_every_module_of_the_jobs_package_is_a_declared_job_or_operation():
    modules = {info.name for info in pkgutil.iter_modules(tcgjobs.jobs.__path__)}
    assert modules == {job.module_name for job in (*JOBS, *OPERATIONS.values())}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=lambda job: job.name)
def test_operations_are_not_registry_jobs_but_load_like_them(operation):
    assert operation.name not in REGISTRY and operation.schedule == ""
    assert inspect.signature(operation.load()).parameters.keys() == {"ctx"}


def test_loading_the_settings_imports_no_job_health_or_service_module():
    result = subprocess.run([sys.executable, "-c", MODULES_AFTER_SETTINGS], capture_output=True,
                            text=True, timeout=60, check=True)
    modules = json.loads(result.stdout)
    assert "tcgjobs.registry" in modules
    below = ("tcgjobs.jobs", "tcgjobs.health", "tcgjobs.services")
    assert [name for name in modules if name.startswith(below)] == []


def test_a_second_job_with_the_same_name_is_refused_and_the_registry_is_unchanged():
    before = dict(REGISTRY)
    with pytest.raises(DuplicateJobError, match="'cleanup-stale-data' is already registered"):
        register(Job(name="cleanup-stale-data", help="again", schedule="* * * * *", timeout=1))
    assert before == REGISTRY
    assert all(REGISTRY[name] is job for name, job in before.items())


def test_a_new_name_is_registered_after_the_declared_jobs(monkeypatch):
    monkeypatch.setattr("tcgjobs.registry.REGISTRY", dict(REGISTRY))
    extra = register(Job(name="t-extra", help="a test job", schedule="* * * * *", timeout=1))
    assert list(all_jobs())[-1] == "t-extra" and get_job("t-extra") is extra


def test_every_dependency_names_a_job_declared_before_it():
    for position, job in enumerate(JOBS):
        earlier = {other.name for other in JOBS[:position]}
        assert set(job.depends_on) <= earlier, job.name


def test_no_two_settings_read_the_same_variable():
    variables = Counter(variable for setting in all_settings()
                        for variable in setting.env + setting.deprecated_env)
    assert [variable for variable, count in variables.items() if count > 1] == []


def test_every_option_has_a_distinct_name_flag_and_a_default_its_parser_accepts():
    from tcgjobs.config import load_settings

    defaults = load_settings({})  # a default may follow another setting (the off-site counts)
    for job in JOBS:
        assert len({option.flag for option in job.options}) == len(job.options), job.name
        for option in job.options:
            default = defaults.job(job).options[option.name]
            assert callable(option.default) or default == option.default
            if option.kind is not bool:
                assert option.parser(str(default)) == default, (job.name, option.name)


def test_the_offsite_counts_follow_the_local_policy_unless_set():
    from tcgjobs.config import load_settings

    settings = load_settings({"BACKUP_DAILY_RETENTION": "9", "TCGJOBS_OFFSITE_WEEKLY_RETENTION": "2"})
    options = settings.job(get_job("upload-backups")).options
    assert (options["daily"], options["weekly"], options["monthly"], options["minimum"]) == (9, 2, 3, 5)


def test_unknown_job_lookup_lists_the_valid_names():
    with pytest.raises(KeyError) as caught:
        get_job("vacuum-everything")
    assert "cleanup-stale-data" in str(caught.value) and "database-health-check" in str(caught.value)
