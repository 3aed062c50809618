from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from portal.settings import ROOT, TABLE, SettingError, Settings, settings_markdown


def test_defaults_are_the_embedded_portal() -> None:
    settings = Settings.from_env({})
    assert settings.warehouse == "duckdb"
    assert settings.duckdb_path == ROOT / "var" / "warehouse.duckdb"
    assert settings.dbt_project_dir == ROOT / "var" / "project"  # a copy of dbt/, a git repository
    assert settings.target_dir == ROOT / "var" / "project" / "target"
    assert settings.profiles_dir == ROOT / "var" / "project"
    assert settings.resolved_catalog_db_url == f"sqlite:///{ROOT / 'var' / 'catalog.db'}"
    assert settings.preview_default_rows == 100


def test_environment_overrides_and_types() -> None:
    settings = Settings.from_env(
        {"PORTAL_PREVIEW_MAX_ROWS": "500", "PORTAL_WAREHOUSE": "trino", "PORTAL_DBT_TARGET_DIR": "/tmp/t"}
    )
    assert settings.preview_max_rows == 500
    assert settings.warehouse == "trino"
    assert str(settings.target_dir) == "/tmp/t"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORTAL_PREVIEW_MAX_ROWS", "lots", "PORTAL_PREVIEW_MAX_ROWS='lots' is not valid"),
        ("PORTAL_PREVIEW_MAX_ROWS", "0", "must be a positive whole number"),
        ("PORTAL_WAREHOUSE", "oracle", "must be one of duckdb, trino"),
        ("PORTAL_QUERY_TIMEOUT_S", "-1", "must be a positive number"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingError, match="Unset it to use the default") as info:
        Settings.from_env({variable: value})
    assert expected in str(info.value)


def test_dbt_sees_the_same_warehouse_as_the_portal() -> None:
    settings = Settings.from_env({"PORTAL_DUCKDB_PATH": "/data/w.duckdb", "PORTAL_TRINO_PORT": "9090"})
    env = settings.dbt_env()
    assert env["PORTAL_DUCKDB_PATH"] == "/data/w.duckdb"
    assert env["PORTAL_TRINO_PORT"] == "9090"
    profiles = (ROOT / "dbt" / "profiles.yml").read_text()
    for variable in env:
        assert variable in profiles, f"dbt/profiles.yml does not read {variable}"


def test_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_markdown() in readme, "regenerate the table with `python -m portal settings --markdown`"
    assert len(TABLE) == settings_markdown().count("| `PORTAL_")


def test_extra_product_types_come_from_a_setting() -> None:
    assert Settings.from_env({}).product_types == ()
    assert Settings.from_env({"PORTAL_PRODUCT_TYPES": "RISK, MARKETING_MIX"}).product_types == (
        "RISK",
        "MARKETING_MIX",
    )
    with pytest.raises(SettingError, match="risk must be UPPER_SNAKE_CASE"):
        Settings.from_env({"PORTAL_PRODUCT_TYPES": "risk"})


def test_the_trino_password_goes_over_https_only_and_to_dbt_as_a_secret(tmp_path: Path) -> None:
    from portal.warehouse import open_warehouse

    secret = tmp_path / "trino-password"
    secret.write_text("s3cret-pass\n")
    over_http = Settings.from_env({"PORTAL_WAREHOUSE": "trino", "PORTAL_TRINO_PASSWORD_FILE": str(secret)})
    with pytest.raises(SettingError, match=r"over HTTPS only\. Set PORTAL_TRINO_HTTP_SCHEME=https"):
        open_warehouse(over_http)
    settings = dataclasses.replace(over_http, trino_http_scheme="https")
    assert settings.trino_service_password() == "s3cret-pass"  # the file's line, without its newline
    env = settings.dbt_env()
    assert env["DBT_ENV_SECRET_TRINO_PASSWORD"] == "s3cret-pass"  # dbt scrubs DBT_ENV_SECRET_* from logs
    assert Path(env["PORTAL_TRINO_CA_FILE"]).is_file()  # requests' own bundle when none is named
    shown = repr(Settings.from_env({"PORTAL_TRINO_PASSWORD": "s3cret-pass"}))
    assert "s3cret-pass" not in shown
    missing = dataclasses.replace(settings, trino_password_file=str(tmp_path / "nothing"))
    with pytest.raises(
        SettingError, match=r"PORTAL_TRINO_PASSWORD_FILE names .*nothing, which cannot be read"
    ):
        missing.trino_service_password()
    assert Settings.from_env({}).dbt_env()["DBT_ENV_SECRET_TRINO_PASSWORD"] == ""  # method none
