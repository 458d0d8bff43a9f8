"""Log sinks: JSON lines when not a terminal, human lines on request, job and run id on every line
of a run, standard-library loggers routed in."""

from __future__ import annotations

import io
import json
import logging

from loguru import logger

from tcgjobs import logging as tcg_logging
from tcgjobs.registry import REGISTRY, Job, JobResult
from tcgjobs.runner import RunRequest, run_job
from tests.conftest import make_settings


def test_every_line_of_a_run_carries_the_job_and_run_id(monkeypatch):
    def work(ctx):
        logger.info("working")
        logging.getLogger("some.library").warning("library says hi")
        return JobResult()

    job = Job(name="t-logs", help="logs", schedule="0 2 * * *", timeout=30, run=work)
    monkeypatch.setitem(REGISTRY, "t-logs", job)
    stream = io.StringIO()
    tcg_logging.configure(level="info", fmt="json", stream=stream)
    outcome = run_job(RunRequest(job=job, settings=make_settings()))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {line["message"] for line in lines} >= {"working", "library says hi"}
    for line in lines:
        assert line["job"] == "t-logs" and line["run_id"] == outcome.run_id
        assert {"ts", "level", "message"} <= set(line)


def test_a_line_from_the_heartbeat_thread_carries_the_job_and_run_id(monkeypatch):
    """The heartbeat writes from its own thread; while this job keeps the state database locked
    past the busy timeout, the beat fails and says so: with the run's job and run id."""
    import sqlite3
    import time

    def work(ctx):
        holder = sqlite3.connect(ctx.settings.state_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        time.sleep(1.5)  # two or three beats fail meanwhile
        holder.commit()
        holder.close()
        return JobResult()

    job = Job(name="t-beat", help="beats", schedule="0 2 * * *", timeout=30, run=work)
    monkeypatch.setitem(REGISTRY, "t-beat", job)
    settings = make_settings(TCGJOBS_HEARTBEAT_SECONDS="0.5", TCGJOBS_BUSY_TIMEOUT_MS="50")
    stream = io.StringIO()
    tcg_logging.configure(level="info", fmt="json", stream=stream)
    outcome = run_job(RunRequest(job=job, settings=settings))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(line["message"].startswith("heartbeat not recorded") for line in lines), lines
    for line in lines:
        assert (line["job"], line["run_id"]) == ("t-beat", outcome.run_id), line


def test_the_human_format_is_one_readable_line_per_message():
    stream = io.StringIO()
    tcg_logging.configure(level="debug", fmt="human", stream=stream)
    with logger.contextualize(job="backup-database", run_id="0123456789abcdef"):
        logger.warning("disk nearly full")
    line = stream.getvalue().strip()
    assert "WARNING" in line and "[backup-database 01234567]" in line and line.endswith("disk nearly full")


def test_the_level_setting_filters():
    stream = io.StringIO()
    tcg_logging.configure(level="warning", fmt="json", stream=stream)
    logger.info("quiet")
    logger.error("loud")
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["loud"]
