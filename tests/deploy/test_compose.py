"""docker-compose.yml: PostgreSQL plus one-shot tcgjobs runs, with no secret in the file."""

from __future__ import annotations

import yaml

from tcgjobs.config import all_settings
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_postgres_is_a_healthy_service_and_tcgjobs_runs_one_shot_against_it():
    services = load()["services"]
    postgres, tcgjobs = services["postgres"], services["tcgjobs"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert tcgjobs["build"] == "." and tcgjobs["profiles"] == ["jobs"]
    assert tcgjobs["restart"] == "no"
    assert tcgjobs["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = tcgjobs["environment"]
    assert env["POSTGRES_HOST"] == "postgres"
    assert env["POSTGRES_USER"] == postgres["environment"]["POSTGRES_USER"]
    assert env["POSTGRES_DB"] == postgres["environment"]["POSTGRES_DB"]
    assert tcgjobs["read_only"] is True and tcgjobs["cap_drop"] == ["ALL"]
    assert all(port.startswith("127.0.0.1:") for port in postgres.get("ports", []))


def test_every_variable_compose_sets_for_tcgjobs_is_a_tcgjobs_setting():
    table = all_settings()
    known = {v for s in table for v in s.env} | {f"{s.variable}_FILE" for s in table if s.secret}
    for name in ("tcgjobs", "tcgjobs-offsite"):
        assert set(load()["services"][name]["environment"]) <= known, name


def test_the_offsite_profile_has_a_local_s3_server_and_keys_only_as_secret_files():
    services = load()["services"]
    assert {services[name]["profiles"][0] for name in ("s3", "s3-bucket", "tcgjobs-offsite")} == {"offsite"}
    env = services["tcgjobs-offsite"]["environment"]
    assert env["TCGJOBS_OFFSITE_URL"].startswith("s3://tcgjobs-backups")
    assert env["TCGJOBS_OFFSITE_ENDPOINT_URL"] == "http://s3:9000"
    assert "AWS_SECRET_ACCESS_KEY" not in env and env["AWS_SECRET_ACCESS_KEY_FILE"].startswith("/run/secrets/")
    assert all(port.startswith("127.0.0.1:") for port in services["s3"]["ports"])


def test_compose_passes_the_password_as_a_secret_file_never_as_a_value():
    compose = load()
    for name, service in compose["services"].items():
        if name.startswith("s3"):
            continue  # the local S3 server's profile has no PostgreSQL
        env = service.get("environment", {})
        assert "POSTGRES_PASSWORD" not in env
        assert env.get("POSTGRES_PASSWORD_FILE") == "/run/secrets/postgres_password"
        assert service["secrets"][0] == "postgres_password"
    assert compose["secrets"]["postgres_password"] == {"file": ".secrets/postgres-password"}
