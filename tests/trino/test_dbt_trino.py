"""The demo dbt project built on Trino: Iceberg tables in the Nessie catalog, every test passing."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from trino_stack import fetch

from portal.project.dbt_runner import DbtResult, run_dbt
from portal.settings import Settings
from portal.warehouse import Relation, open_warehouse

pytestmark = pytest.mark.trino

# product -> the partitioning its config asks for (macros/iceberg.sql)
PARTITIONING = {
    "dp_customer_360": "ARRAY['region']",
    "dp_product_performance": "ARRAY['category']",
    "dp_revenue_analytics": "ARRAY['year(revenue_month)']",
}


def _manifest(settings: Settings) -> dict:
    return json.loads((settings.target_dir / "manifest.json").read_text())


def _products(settings: Settings) -> dict[str, dict]:
    nodes = _manifest(settings)["nodes"].values()
    return {
        n["name"]: n
        for n in nodes
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/data_products/")
    }


def test_build_passes_every_model_and_test(trino_build: DbtResult, project_settings: Settings) -> None:
    assert trino_build.ok, trino_build.tail(60)
    results = json.loads((project_settings.target_dir / "run_results.json").read_text())["results"]
    statuses = Counter(r["status"] for r in results)
    assert set(statuses) <= {"success", "pass"}, statuses
    manifest = _manifest(project_settings)
    expected = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] in {"model", "test"}}
    assert {r["unique_id"] for r in results} == expected
    assert sum(1 for uid in expected if uid.startswith("model.")) == 14
    assert sum(1 for uid in expected if uid.startswith("test.")) >= 90


def test_data_products_are_iceberg_tables_with_rows_and_contract_columns(
    built: DbtResult, project_settings: Settings
) -> None:
    warehouse = open_warehouse(project_settings)
    products = _products(project_settings)
    assert set(products) == set(PARTITIONING)
    for name, node in products.items():
        relation = Relation(node["database"], node["schema"], node["alias"] or name)
        assert relation.database == project_settings.trino_catalog
        assert warehouse.count(relation) > 0, f"{relation} is empty"
        assert [c.name for c in warehouse.columns(relation)] == list(node["columns"]), name
        create = fetch(
            project_settings, f'show create table "{relation.database}"."{relation.schema}"."{name}"'
        )
        ddl = create[0][0]
        assert "format = 'PARQUET'" in ddl, ddl
        assert f"partitioning = {PARTITIONING[name]}" in ddl, ddl


def test_staging_is_materialized_as_tables_on_trino(built: DbtResult, project_settings: Settings) -> None:
    """Trino's Iceberg `nessie` catalog cannot store views, so staging models are tables there."""
    rows = fetch(
        project_settings,
        f"select table_name, table_type from {project_settings.trino_catalog}.information_schema.tables "
        "where table_schema = 'staging'",
    )
    assert len(rows) == 7
    assert {table_type for _, table_type in rows} == {"BASE TABLE"}


def test_incremental_product_merges_on_a_second_build(built: DbtResult, project_settings: Settings) -> None:
    table = f'"{project_settings.trino_catalog}"."{project_settings.gold_schema}"."dp_revenue_analytics'
    snapshots_before = fetch(project_settings, f'select snapshot_id from {table}$snapshots"')
    rows_before = fetch(project_settings, f'select count(*) from {table}"')[0][0]

    again = run_dbt(project_settings, ["build", "--select", "dp_revenue_analytics"])

    assert again.ok, again.tail(40)
    assert "MERGE" in again.log  # dbt-trino reports the merge strategy's statement
    snapshots_after = fetch(project_settings, f'select snapshot_id from {table}$snapshots"')
    assert len(snapshots_after) > len(snapshots_before)
    # Merging the same months again updates rows in place: no duplicates, same row count.
    assert fetch(project_settings, f'select count(*) from {table}"')[0][0] == rows_before
    duplicates = fetch(
        project_settings,
        f'select count(*) from (select revenue_month, channel from {table}" '
        "group by 1, 2 having count(*) > 1)",
    )
    assert duplicates[0][0] == 0
