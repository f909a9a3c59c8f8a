"""Settings come from POSTREC_* variables, are frozen, and reject bad values with a message naming the variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.keys import KeyLayout
from common.settings import DEFAULT_DATABASE_URL, load_settings


def test_defaults_are_the_embedded_urls() -> None:
    settings = load_settings({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert (settings.prefix, settings.k, settings.control_percent) == ("postrec", 200, 50)


def test_environment_values_are_parsed_by_field_type() -> None:
    settings = load_settings({"POSTREC_K": "50", "POSTREC_DATA_DIR": "/srv/postrec", "POSTREC_AB_SALT": "x"})
    assert (settings.k, settings.data_dir, settings.ab_salt) == (50, Path("/srv/postrec"), "x")


def test_an_optional_path_is_none_unless_set() -> None:
    assert load_settings({}).embedding_cache is None
    assert load_settings({"POSTREC_EMBEDDING_CACHE": "/var/cache/v"}).embedding_cache == Path("/var/cache/v")


def test_overrides_win_over_the_environment() -> None:
    assert load_settings({"POSTREC_K": "50"}, k=7).k == 7


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings({}).k = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"POSTREC_K": "many"}, "POSTREC_K='many' is not a valid int"),
        ({"POSTREC_K": "0"}, "POSTREC_K must be in 1..10000"),
        ({"POSTREC_CONTROL_PERCENT": "101"}, "POSTREC_CONTROL_PERCENT must be in 0..100"),
        ({"POSTREC_DATABASE_URL": "mysql://x"}, "POSTREC_DATABASE_URL must start with postgresql"),
        ({"POSTREC_REDIS_URL": "http://x"}, "POSTREC_REDIS_URL must be redis"),
        ({"POSTREC_PREFIX": "a:b"}, "POSTREC_PREFIX must be non-empty"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_user_keys_share_the_user_hash_tag() -> None:
    keys = KeyLayout("p")
    assert keys.recs("v1", 200) == "p:v:v1:recs:{200}"
    assert keys.liked(200) == "p:liked:{200}"
    assert keys.meta("v1").startswith(keys.version_prefix("v1"))


@pytest.mark.parametrize("level", ["LOUD", "verbose", ""])
def test_an_unknown_log_level_is_a_config_error_naming_the_variable(level: str) -> None:
    with pytest.raises(ConfigError, match=r"log level '.*' \(POSTREC_LOG_LEVEL or --log-level\) is not one of DEBUG"):
        load_settings({}, log_level=level or " ")


def test_log_levels_are_accepted_in_any_case() -> None:
    assert load_settings({"POSTREC_LOG_LEVEL": "debug"}).log_level == "debug"


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("postgres://u:p@db:5432/x", "postgresql://u:p@db:5432/x"),
        ("postgres+psycopg2://db/x", "postgresql+psycopg2://db/x"),
        ("postgresql://db/x", "postgresql://db/x"),
    ],
)
def test_postgres_urls_are_normalised_to_postgresql(given: str, normalised: str) -> None:
    assert load_settings({"POSTREC_DATABASE_URL": given}).database_url == normalised


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("no", False)])
def test_allow_worse_reads_the_usual_boolean_spellings(raw: str, value: bool) -> None:
    assert load_settings({"POSTREC_ALLOW_WORSE": raw}).allow_worse is value


def test_a_boolean_setting_that_is_no_boolean_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="POSTREC_ALLOW_WORSE='maybe'"):
        load_settings({"POSTREC_ALLOW_WORSE": "maybe"})


def test_the_lists_horizon_is_whole_hours_and_never_negative() -> None:
    assert load_settings({}).horizon_hours == 0
    assert load_settings({"POSTREC_HORIZON_HOURS": "168"}).horizon_hours == 168
    with pytest.raises(ConfigError, match="POSTREC_HORIZON_HOURS must be >= 0"):
        load_settings({"POSTREC_HORIZON_HOURS": "-1"})
    with pytest.raises(ConfigError, match="POSTREC_HORIZON_HOURS='a week'"):
        load_settings({"POSTREC_HORIZON_HOURS": "a week"})
