"""Settings: defaults, validation (every problem at once), _FILE secrets, deprecated aliases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tcgjobs.config import Settings, load_settings
from tcgjobs.errors import ConfigError
from tests.conftest import invoke, make_settings


def test_defaults_match_the_original(monkeypatch):
    for name in ("DATABASE_PATH", "BACKUP_DIR", "TCGJOBS_TMPDIR", "TCGJOBS_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(os.environ)
    assert settings.database_path == Path("./database/pokemon-data.sqlite3.db")
    assert settings.backup_dir == Path("./database/backups")
    assert settings.state_path == Path("database/tcgjobs-state.sqlite3")
    assert settings.timezone.key == "UTC"
    assert settings.notification_min_severity == "warning"
    assert settings.notifications_enabled is False
    assert settings.postgres_port == 5432
    assert not settings.postgres_configured
    rotate = settings.job(__import__("tcgjobs.registry", fromlist=["get_job"]).get_job("rotate-backups"))
    original = {"daily": 7, "weekly": 4, "monthly": 3, "minimum": 5}  # the original's effective values
    assert {name: rotate.options[name] for name in original} == original


def test_state_path_defaults_beside_the_card_database(tmp_path):
    settings = make_settings(DATABASE_PATH=str(tmp_path / "x" / "cards.db"))
    assert settings.state_path == tmp_path / "x" / "tcgjobs-state.sqlite3"
    assert settings.sources["state_path"] == "default"
    assert settings.sources["database_path"] == "env DATABASE_PATH"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        make_settings(TCGJOBS_TIMEZONE="Mars/Olympus", NOTIFICATIONS_ENABLED="maybe",
                      POSTGRES_PORT="99999", TCGJOBS_CLEANUP_STALE_DATA_SCHEDULE="every day",
                      BACKUP_DAILY_RETENTION="-1", NOTIFICATION_MIN_SEVERITY="loud")
    problems = caught.value.problems
    assert len(problems) == 6, problems
    joined = "\n".join(problems)
    for variable in ("TCGJOBS_TIMEZONE", "NOTIFICATIONS_ENABLED", "POSTGRES_PORT",
                     "TCGJOBS_CLEANUP_STALE_DATA_SCHEDULE", "BACKUP_DAILY_RETENTION", "NOTIFICATION_MIN_SEVERITY"):
        assert variable in joined


def test_config_errors_exit_78_listing_every_problem(cli, env):
    env["TCGJOBS_TIMEZONE"] = "Nowhere/Land"
    env["TCGJOBS_HEARTBEAT_SECONDS"] = "0"
    result = invoke(cli, "run", "cleanup-stale-data")
    assert result.exit_code == 78, result.output
    assert "2 configuration errors" in result.stderr
    assert "TCGJOBS_TIMEZONE" in result.stderr and "TCGJOBS_HEARTBEAT_SECONDS" in result.stderr
    assert not Path(env["DATABASE_PATH"]).parent.exists(), "nothing may be written on a config error"


def test_secret_is_read_from_its_file_variant(tmp_path):
    secret = tmp_path / "webhook"
    secret.write_text("https://hooks.example.test/services/T1/B2/filesecret\n")
    settings = make_settings(SLACK_WEBHOOK_URL_FILE=str(secret))
    assert settings.slack_webhook_url == "https://hooks.example.test/services/T1/B2/filesecret"
    assert settings.sources["slack_webhook_url"] == "file SLACK_WEBHOOK_URL_FILE"


def test_both_forms_of_a_secret_are_a_configuration_error(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("hunter2")
    with pytest.raises(ConfigError) as caught:
        make_settings(POSTGRES_PASSWORD="hunter2", POSTGRES_PASSWORD_FILE=str(secret))
    assert "POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set" in str(caught.value)


def test_an_unreadable_secret_file_is_named():
    with pytest.raises(ConfigError) as caught:
        make_settings(POSTGRES_PASSWORD_FILE="/nonexistent/secret")
    assert "POSTGRES_PASSWORD_FILE: cannot read /nonexistent/secret" in str(caught.value)


def test_invalid_secret_value_is_not_echoed():
    with pytest.raises(ConfigError) as caught:
        make_settings(TCGJOBS_POSTGRES_URL="mysql://user:topsecretpw@db/x")
    assert "topsecretpw" not in str(caught.value)
    assert "TCGJOBS_POSTGRES_URL" in str(caught.value)


@pytest.mark.parametrize("url", [
    "postgresql://app:p@ssw0rdSECRET@127.0.0.1:5432/x",  # libpq would take "ssw0rdSECRET@..." as host
    "postgresql://app:ab#SECRET2@127.0.0.1:5432/x",
    "postgresql://app:a/SECRETslash@127.0.0.1:5432/x",
    "postgresql://app:p%zzSECRET@127.0.0.1:5432/x",       # libpq's own message quotes the token
    "postgresql://app:TopSECRET1@127.0.0.1:5432/x?sslmod=require",
])
def test_a_postgres_url_libpq_would_misread_is_refused_without_echoing_it(url):
    with pytest.raises(ConfigError) as caught:
        make_settings(TCGJOBS_POSTGRES_URL=url)
    message = str(caught.value)
    assert "TCGJOBS_POSTGRES_URL" in message
    assert "SECRET" not in message and "127.0.0.1" not in message


@pytest.mark.parametrize("url", [
    "postgresql://app%40x:p%40ss%23w%2F@db.example:6543/cards?sslmode=require&options=-csearch_path%3Dtcg",
    "postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write",  # several hosts
    "postgresql://u:p@[::1]:5432/db", "postgresql://u@[2001:db8::1]:5432,[::1]/db",
    "postgresql:///db?host=/var/run/postgresql", "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
    "postgresql://db.example/cards", "postgresql://u@h/my@db", "postgresql://h/my%40db",
    "postgresql://u:pa?ss@h/db",
])
def test_postgres_urls_libpq_reads_correctly_are_accepted(url):
    assert make_settings(TCGJOBS_POSTGRES_URL=url).postgres_url == url


@pytest.mark.parametrize(("variable", "value", "attribute", "expected"), [
    ("NOTIFICATION_WEBHOOK_URL", "https://hooks.example.test/services/A/B/C", "slack_webhook_url",
     "https://hooks.example.test/services/A/B/C"),
    ("CRON_LOG_LEVEL", "warn", "log_level", "warning"),
    ("CRON_TIMEZONE", "America/New_York", "timezone", "America/New_York"),
])
def test_deprecated_variables_still_work_with_a_warning(variable, value, attribute, expected):
    settings = make_settings(**{variable: value})
    actual = getattr(settings, attribute)
    assert getattr(actual, "key", actual) == expected
    assert any(variable in w and "deprecated" in w for w in settings.warnings)


def test_the_current_name_wins_over_a_deprecated_alias():
    settings = make_settings(TCGJOBS_TIMEZONE="Europe/Berlin", CRON_TIMEZONE="America/New_York")
    assert settings.timezone.key == "Europe/Berlin"
    assert any("CRON_TIMEZONE ignored" in w for w in settings.warnings)


def test_warn_is_accepted_as_a_severity():
    assert make_settings(NOTIFICATION_MIN_SEVERITY="warn").notification_min_severity == "warning"


def test_notifications_need_a_webhook():
    with pytest.raises(ConfigError) as caught:
        make_settings(NOTIFICATIONS_ENABLED="true")
    assert "needs SLACK_WEBHOOK_URL" in str(caught.value)


def test_postgres_counts_as_configured_by_url_or_host():
    assert make_settings(POSTGRES_HOST="db.internal").postgres_configured
    assert make_settings(TCGJOBS_POSTGRES_URL="postgresql://u@db/x").postgres_configured
    with pytest.raises(ConfigError):
        make_settings(POSTGRES_HOST="db", TCGJOBS_POSTGRES_URL="postgresql://u@db/x")


def test_job_settings_override_schedule_enabled_and_options():
    from tcgjobs.registry import get_job

    settings = make_settings(TCGJOBS_CLEANUP_STALE_DATA_SCHEDULE="30  4 * * 6",
                             TCGJOBS_CLEANUP_STALE_DATA_ENABLED="false",
                             TCGJOBS_LEDGER_RETENTION_DAYS="7", BACKUP_MINIMUM="9")
    cleanup = settings.job(get_job("cleanup-stale-data"))
    assert cleanup.schedule == "30 4 * * 6"
    assert cleanup.enabled is False
    assert cleanup.options["ledger_retention_days"] == 7
    assert settings.job(get_job("rotate-backups")).options["minimum"] == 9


def test_config_command_redacts_secrets_and_names_sources(cli, env, tmp_path):
    env["POSTGRES_PASSWORD"] = "pw-very-secret"
    env["SLACK_WEBHOOK_URL"] = "https://hooks.example.test/services/T9/B9/hooksecret"
    result = invoke(cli, "config", "--json")
    assert result.exit_code == 0, result.output
    assert "pw-very-secret" not in result.output and "hooksecret" not in result.output
    import json

    entries = {e["variable"]: e for e in json.loads(result.stdout)["settings"]}
    assert entries["POSTGRES_PASSWORD"]["value"] == "<redacted>"
    assert entries["DATABASE_PATH"]["source"] == "env DATABASE_PATH"
    assert entries["TCGJOBS_TIMEZONE"]["source"] == "default"


def test_config_check_fails_with_78_when_a_path_is_not_writable(cli, env, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env["BACKUP_DIR"] = str(blocker / "backups")
    result = invoke(cli, "config", "--check")
    assert result.exit_code == 78, result.output
    assert "backup directory" in result.stdout and "FAILED" in result.stdout


def test_config_check_passes_on_a_fresh_machine(cli):
    result = invoke(cli, "config", "--check")
    assert result.exit_code == 0, result.output


def test_settings_with_overrides_keeps_the_original_untouched(settings: Settings):
    changed = settings.with_overrides(heartbeat_seconds=1.0)
    assert changed.heartbeat_seconds == 1.0 and settings.heartbeat_seconds == 10.0


def test_an_invalid_short_secret_does_not_mangle_the_message():
    with pytest.raises(ConfigError) as caught:
        make_settings(NOTIFICATION_WEBHOOK_URL="x")
    assert "NOTIFICATION_WEBHOOK_URL: expected an http(s):// URL" in str(caught.value)


def test_a_database_path_that_is_a_directory_is_reported_with_the_other_problems(tmp_path):
    with pytest.raises(ConfigError) as caught:
        make_settings(DATABASE_PATH=str(tmp_path), TCGJOBS_TIMEZONE="Nowhere/Land")
    assert len(caught.value.problems) == 2
    assert f"DATABASE_PATH={tmp_path} is a directory" in str(caught.value)


def test_a_statement_timeout_beyond_postgresqls_limit_is_a_configuration_error():
    assert make_settings(TCGJOBS_POSTGRES_STATEMENT_TIMEOUT="2147483").postgres_statement_timeout == 2147483
    with pytest.raises(ConfigError, match="TCGJOBS_POSTGRES_STATEMENT_TIMEOUT: must be at most 2147483"):
        make_settings(TCGJOBS_POSTGRES_STATEMENT_TIMEOUT="2147484")


def test_a_misspelt_setting_fails_config_check_with_78_naming_the_closest_one(cli, env):
    env["TCGJOBS_DATA_SOURSE"] = "/srv/pokemon-tcg-data"
    result = invoke(cli, "config", "--check")
    assert result.exit_code == 78, result.output
    assert ("TCGJOBS_DATA_SOURSE is not a tcgjobs setting and is ignored; did you mean "
            "TCGJOBS_DATA_SOURCE?") in result.stdout


def test_a_misspelt_setting_is_a_warning_in_other_commands_and_never_stops_a_run(cli, env):
    env["TCGJOBS_DATA_SOURSE"] = "/srv/pokemon-tcg-data"
    run = invoke(cli, "run", "sync-missing-sets")
    assert run.exit_code == 0, run.output
    assert "did you mean TCGJOBS_DATA_SOURCE?" in run.stderr
    listed = invoke(cli, "list")
    assert listed.exit_code == 0 and "did you mean TCGJOBS_DATA_SOURCE?" in listed.stderr
    shown = invoke(cli, "config")
    assert shown.exit_code == 0 and "warning: TCGJOBS_DATA_SOURSE" in shown.stdout


@pytest.mark.parametrize(("variable", "suggestion"), [
    ("TCGJOBS_LOGLEVEL", "TCGJOBS_LOG_LEVEL"),
    ("TCGJOBS_POSTGRES_HOST", "POSTGRES_HOST"),
    ("TCGJOBS_DATA_SOURCE_FILE", "TCGJOBS_DATA_SOURCE"),  # only secrets have a _FILE form
    ("TCGJOBS_FROBNICATE", None),
])
def test_unknown_variables_name_the_closest_known_setting(variable, suggestion):
    messages = make_settings(**{variable: "x"}).unknown
    assert len(messages) == 1 and messages[0].startswith(variable + " is not a tcgjobs setting")
    assert messages[0].endswith(f"did you mean {suggestion}?" if suggestion else "is ignored")


def test_test_variables_aliases_and_secret_files_are_not_unknown(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("http://127.0.0.1:9/ping/{job}")
    settings = make_settings(TCGJOBS_TEST_POSTGRES="host=x", CRON_TIMEZONE="UTC",
                             TCGJOBS_PING_URL_FILE=str(secret), TCGJOBS_BACKUP_DATABASE_TIMEOUT="60")
    assert settings.unknown == []


@pytest.mark.parametrize(("text", "size", "shown"), [
    ("1048576", 1 << 20, "1MiB"), ("64MiB", 64 << 20, "64MiB"), ("512 KiB", 512 << 10, "512KiB"),
    ("2gib", 2 << 30, "2GiB"), ("1000", 1000, "1000"), ("1536b", 1536, "1536"),
])
def test_sizes_are_read_in_bytes_or_binary_units_and_shown_the_way_they_are_written(text, size, shown):
    from tcgjobs.parsers import size_between

    value = size_between(1)(text)
    assert (value, str(value)) == (size, shown)


@pytest.mark.parametrize("text", ["", "MiB", "64 MB", "1.5MiB", "-1", "0"])
def test_a_size_that_is_not_a_whole_number_of_bytes_or_binary_units_is_refused(text):
    from tcgjobs.parsers import size_between

    with pytest.raises(ValueError, match="expected a size|at least"):
        size_between(1)(text)
