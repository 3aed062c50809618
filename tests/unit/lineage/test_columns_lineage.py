"""Column-level lineage on the built jaffle-shop projects, and the reasons given when it cannot trace."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from portal.lineage.columns import EXTERNAL, ColumnRef, ColumnTracer, column_lineage, dialect_of
from portal.lineage.errors import UnknownNodeError
from portal.project.artifacts import CatalogArtifact, Manifest, load_catalog, load_manifest

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"


def _project(name: str) -> tuple[Manifest, CatalogArtifact]:
    return load_manifest(FIXTURES / name / "manifest.json.gz"), load_catalog(
        FIXTURES / name / "catalog.json.gz"
    )


@pytest.fixture(scope="module")
def jaffle_shop() -> tuple[Manifest, CatalogArtifact]:
    return _project("jaffle-shop")


@pytest.fixture(scope="module")
def jaffle_shop_duckdb() -> tuple[Manifest, CatalogArtifact]:
    return _project("jaffle_shop_duckdb")


def test_a_mart_column_traces_back_to_its_source_column(
    jaffle_shop: tuple[Manifest, CatalogArtifact],
) -> None:
    manifest, catalog = jaffle_shop
    result = column_lineage(manifest, "model.jaffle_shop.customers", "lifetime_spend", catalog)
    assert result.traced
    orders_total = ColumnRef("model.jaffle_shop.orders", "order_total")
    stg_total = ColumnRef("model.jaffle_shop.stg_orders", "order_total")
    source_total = ColumnRef("source.jaffle_shop.ecom.raw_orders", "order_total")
    assert result.upstream_of(result.target) == [orders_total]
    assert result.upstream_of(orders_total) == [stg_total]
    assert result.upstream_of(stg_total) == [source_total]
    # The seed that loads the same table is not a parent of stg_orders: the source is.
    assert result.origins == [source_total]
    assert result.columns == [orders_total, stg_total, source_total]


def test_a_derived_column_lists_every_input(jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest, catalog = jaffle_shop
    # customer_type is `case when count(distinct order_id) > 1 ...`: it derives from order ids.
    result = column_lineage(manifest, "customers", "customer_type", catalog)
    assert result.traced
    assert result.origins == [ColumnRef("source.jaffle_shop.ecom.raw_orders", "id")]


def test_lineage_through_select_star_and_joins(jaffle_shop_duckdb: tuple[Manifest, CatalogArtifact]) -> None:
    manifest, catalog = jaffle_shop_duckdb
    result = column_lineage(manifest, "model.jaffle_shop.customers", "customer_lifetime_value", catalog)
    assert result.traced
    assert result.origins == [ColumnRef("seed.jaffle_shop.raw_payments", "amount")]
    assert ColumnRef("model.jaffle_shop.stg_payments", "amount") in result.columns


def test_max_depth_stops_early(jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest, catalog = jaffle_shop
    result = column_lineage(manifest, "model.jaffle_shop.customers", "lifetime_spend", catalog, max_depth=1)
    assert result.columns == [ColumnRef("model.jaffle_shop.orders", "order_total")]


def test_select_star_over_unknown_columns_is_not_guessed(
    jaffle_shop_duckdb: tuple[Manifest, CatalogArtifact],
) -> None:
    manifest, _ = jaffle_shop_duckdb
    result = column_lineage(manifest, "model.jaffle_shop.stg_orders", "status", catalog=None)
    assert not result.traced and result.columns == []
    [why] = result.untraceable
    assert why.column == ColumnRef("model.jaffle_shop.stg_orders", "status")
    assert "`SELECT *` from" in why.reason and "raw_orders" in why.reason
    assert "dbt docs generate" in why.reason


def test_an_unqualified_column_over_unknown_tables_is_not_guessed(
    jaffle_shop_duckdb: tuple[Manifest, CatalogArtifact],
) -> None:
    manifest, _ = jaffle_shop_duckdb
    result = column_lineage(manifest, "model.jaffle_shop.customers", "customer_lifetime_value", catalog=None)
    [why] = result.untraceable
    assert "column 'amount'" in why.reason and "is not qualified with a table" in why.reason
    assert "payments, orders" in why.reason


def test_without_compiled_sql_it_says_to_compile() -> None:
    manifest = load_manifest(FIXTURES / "calitp_warehouse" / "manifest.json.gz")
    model = next(m for m in manifest.models() if m.columns)
    result = column_lineage(manifest, model.unique_id, next(iter(model.columns)))
    [why] = result.untraceable
    assert "has no compiled SQL" in why.reason and "run `dbt compile`" in why.reason


def test_an_unknown_column_lists_the_real_ones(jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest, catalog = jaffle_shop
    [why] = column_lineage(manifest, "model.jaffle_shop.customers", "lifetime_value", catalog).untraceable
    assert "has no column 'lifetime_value'" in why.reason and "lifetime_spend" in why.reason


def test_an_unknown_model_suggests_names(jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest, catalog = jaffle_shop
    with pytest.raises(UnknownNodeError) as caught:
        column_lineage(manifest, "model.jaffle_shop.custommers", "customer_id", catalog)
    assert "model.jaffle_shop.customers" in caught.value.suggestions


def _with_sql(tmp_path: Path, sql: str) -> Manifest:
    raw = json.loads(gzip.decompress((FIXTURES / "jaffle-shop" / "manifest.json.gz").read_bytes()))
    raw["nodes"]["model.jaffle_shop.customers"]["compiled_code"] = sql
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    return load_manifest(path)


def test_unparseable_sql_is_reported(tmp_path: Path, jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest = _with_sql(tmp_path, "select from from where")
    [why] = column_lineage(manifest, "model.jaffle_shop.customers", "customer_id", jaffle_shop[1]).untraceable
    assert "could not be parsed as duckdb SQL" in why.reason


def test_tables_outside_the_project_are_external_origins(
    tmp_path: Path, jaffle_shop: tuple[Manifest, CatalogArtifact]
) -> None:
    manifest = _with_sql(tmp_path, 'select c.id as customer_id from "elsewhere"."crm"."contacts" as c')
    result = column_lineage(manifest, "model.jaffle_shop.customers", "customer_id", jaffle_shop[1])
    assert result.traced
    assert result.origins == [ColumnRef(EXTERNAL + '"elsewhere"."crm"."contacts"', "id")]


def test_constants_have_no_upstream(tmp_path: Path, jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest = _with_sql(tmp_path, "select 1 as customer_id")
    result = column_lineage(manifest, "model.jaffle_shop.customers", "customer_id", jaffle_shop[1])
    assert result.traced and result.columns == []


def test_a_tracer_answers_repeated_questions(jaffle_shop: tuple[Manifest, CatalogArtifact]) -> None:
    manifest, catalog = jaffle_shop
    tracer = ColumnTracer(manifest, catalog)
    first = tracer.trace("model.jaffle_shop.orders", "order_total")
    assert tracer.trace("model.jaffle_shop.orders", "order_total") == first
    assert tracer.known_columns("model.jaffle_shop.orders")["order_total"].startswith("DECIMAL")


def test_dialects_follow_the_adapter() -> None:
    assert [dialect_of(a) for a in ("duckdb", "trino", "snowflake", "bigquery")] == [
        "duckdb", "trino", "snowflake", "bigquery"
    ]  # fmt: skip
    assert dialect_of("no_such_adapter") is None and dialect_of(None) is None
