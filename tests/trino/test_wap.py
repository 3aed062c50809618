"""Write-audit-publish on a Nessie branch: a passing product is merged, a failing one never touches main."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from trino_stack import fetch, main_state

from portal.creation.publish.nessie import (
    FAILED,
    PUBLISHED,
    NessieClient,
    WapConfig,
    WapError,
    create_catalog_sql,
    write_audit_publish,
)
from portal.project.dbt_runner import DbtResult
from portal.settings import ROOT, Settings

pytestmark = pytest.mark.trino

GOOD = {
    "wap_good.sql": """
        select customer_id, region, lifetime_value
        from {{ ref('dp_customer_360') }}
        where order_count > 0
    """,
    "wap_good.yml": """
        version: 2
        models:
          - name: wap_good
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
    """,
}
# Builds fine, but its test fails: every customer has a region, so this `accepted_values` cannot pass.
FAILING_TEST = {
    "wap_failing_test.sql": "select customer_id, region from {{ ref('dp_customer_360') }}",
    "wap_failing_test.yml": """
        version: 2
        models:
          - name: wap_failing_test
            columns:
              - name: region
                data_tests:
                  - accepted_values:
                      arguments:
                        values: ['Atlantis']
    """,
}
BROKEN_SQL = {"wap_broken.sql": "select no_such_column from {{ ref('dp_customer_360') }}"}


@pytest.fixture(scope="module")
def wap_settings(
    built: DbtResult, project_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Its own copy of the project, with the probe models of this module under models/wap/."""
    base = tmp_path_factory.mktemp("wap")
    project = base / "dbt"
    shutil.copytree(ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    probes = project / "models" / "wap"
    probes.mkdir()
    for files in (GOOD, FAILING_TEST, BROKEN_SQL):
        for name, text in files.items():
            (probes / name).write_text(textwrap.dedent(text).strip() + "\n")
    return Settings.from_env(
        warehouse="trino",
        dbt_target="trino",
        dbt_project_dir=project,
        dbt_target_dir=str(base / "target"),
        catalog_db_url=f"sqlite:///{base / 'catalog.db'}",
    )


def test_passing_product_is_merged_into_main(
    wap_settings: Settings, wap_config: WapConfig, tmp_path: Path
) -> None:
    with NessieClient(wap_config.nessie_uri) as nessie:
        before = nessie.head("main")
        lines: list[str] = []
        result = write_audit_publish(
            wap_settings, wap_config, ["wap_good"], on_line=lines.append, target_dir=tmp_path / "target"
        )

        assert result.outcome == PUBLISHED, result.message
        assert result.merged and result.dbt is not None and result.dbt.ok
        assert result.main_hash_before == before
        assert result.branch_hash not in (None, before)
        assert result.main_hash_after == nessie.head("main") != before
        assert result.branch_deleted and result.branch not in nessie.branches()
        assert f"{wap_settings.gold_schema}.wap_good" in nessie.entries("main")
    rows = fetch(
        wap_settings, f"select count(*) from {wap_settings.trino_catalog}.{wap_settings.gold_schema}.wap_good"
    )
    assert rows[0][0] > 0
    catalogs = {r[0] for r in fetch(wap_settings, "show catalogs")}
    assert result.catalog not in catalogs, "the branch catalog must be dropped afterwards"
    record = result.as_record()
    assert json.loads(json.dumps(record))["outcome"] == "published"
    assert {"branch", "main_hash_before", "branch_hash", "main_hash_after"} <= set(record)
    assert any(result.branch in line for line in lines)


@pytest.mark.parametrize(
    ("selection", "missing"),
    [
        # the incremental product is rebuilt (merged) on the branch, then the new model's test fails
        (["dp_revenue_analytics", "wap_failing_test"], "wap_failing_test"),
        (["wap_broken"], "wap_broken"),
    ],
    ids=["failing-test", "sql-error"],
)
def test_failing_product_leaves_main_untouched(
    wap_settings: Settings, wap_config: WapConfig, selection: list[str], missing: str, tmp_path: Path
) -> None:
    with NessieClient(wap_config.nessie_uri) as nessie:
        before = main_state(wap_settings, nessie)

        result = write_audit_publish(wap_settings, wap_config, selection, target_dir=tmp_path / "target")

        assert result.outcome == FAILED, result.message
        assert result.dbt is not None and not result.dbt.ok
        assert "main is unchanged" in result.message
        assert result.main_hash_before == result.main_hash_after == before["head"]
        assert result.branch_deleted and result.branch not in nessie.branches()
        after = main_state(wap_settings, nessie)
    # Nessie: same head, same content; Iceberg: the same snapshots of every table on main.
    assert after == before
    assert f"{wap_settings.gold_schema}.{missing}" not in after["entries"]  # type: ignore[operator]
    if "dp_revenue_analytics" in selection:
        # the branch really was written to (the incremental merge committed there) ...
        assert result.branch_hash != before["head"]
        # ... and none of it reached main
        assert before["snapshots"]["dp_revenue_analytics"]  # type: ignore[index]


def test_unsafe_selection_is_refused_before_anything_happens(
    wap_settings: Settings, wap_config: WapConfig
) -> None:
    with NessieClient(wap_config.nessie_uri) as nessie:
        branches = nessie.branches()
        with pytest.raises(WapError, match="is not a dbt selector"):
            write_audit_publish(wap_settings, wap_config, ["dp_customer_360; rm -rf /"])
        assert nessie.branches() == branches


def test_branch_catalog_copies_the_main_catalog(wap_config: WapConfig) -> None:
    sql = create_catalog_sql("wap_x", wap_config.catalog_properties, "wap-x")
    assert sql.startswith('CREATE CATALOG "wap_x" USING iceberg')
    assert "\"iceberg.nessie-catalog.ref\" = 'wap-x'" in sql
    assert "\"fs.native-local.enabled\" = 'true'" in sql
    with pytest.raises(WapError):
        create_catalog_sql("wap_x", wap_config.catalog_properties, "bad..ref")
