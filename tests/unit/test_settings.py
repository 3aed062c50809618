from __future__ import annotations

import pytest

from portal.settings import ROOT, TABLE, SettingError, Settings, settings_markdown


def test_defaults_are_the_embedded_portal() -> None:
    settings = Settings.from_env({})
    assert settings.warehouse == "duckdb"
    assert settings.duckdb_path == ROOT / "var" / "warehouse.duckdb"
    assert settings.target_dir == ROOT / "dbt" / "target"
    assert settings.profiles_dir == ROOT / "dbt"
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
