"""Telling a column passed through unchanged (selected as is, or renamed) from a derived one, on the
real demo's compiled SQL and on the public jaffle_shop_duckdb project."""

from __future__ import annotations

from pathlib import Path

from portal.lineage.columns import ColumnRef, ColumnTracer
from portal.project.artifacts import load_catalog, load_manifest
from portal.service import PortalService
from portal.settings import Settings

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"


def _demo_tracer(demo_env: dict[str, str]) -> ColumnTracer:
    artifacts = PortalService(Settings.from_env(demo_env)).artifacts()
    return ColumnTracer(artifacts.manifest, artifacts.catalog)


def test_plain_references_and_renames_pass_through_ctes(demo_env: dict[str, str]) -> None:
    tracer = _demo_tracer(demo_env)
    # int_orders: `orders.customer_id` in a CTE over `select * from stg_orders`, then `select *`.
    assert tracer.passes_through(ColumnRef("model.asgard.int_orders", "customer_id")) == ColumnRef(
        "model.asgard.stg_orders", "customer_id"
    )
    # `channels.channel_code as channel`: a rename is still the same column.
    assert tracer.passes_through(ColumnRef("model.asgard.int_orders", "channel")) == ColumnRef(
        "model.asgard.stg_channels", "channel_code"
    )
    # metrics_customer_segments groups by dp_customer_360.segment and selects it as is.
    assert tracer.passes_through(ColumnRef("model.asgard.metrics_customer_segments", "segment")) == ColumnRef(
        "model.asgard.dp_customer_360", "segment"
    )


def test_computed_columns_do_not_pass_through(demo_env: dict[str, str]) -> None:
    tracer = _demo_tracer(demo_env)
    for model, column in [
        ("int_orders", "net_revenue"),  # arithmetic under a cast
        ("int_orders", "order_month"),  # a function of order_date
        ("int_orders", "is_cancelled"),  # a comparison
        ("int_orders", "line_count"),  # count(*) in a CTE, then selected as is: still derived
        (
            "dp_customer_360",
            "customer_id",
        ),  # cast(customers.customer_id as bigint): a cast changes the column
        ("dp_customer_360", "data_product_updated_at"),  # a generated value, from no column
        ("stg_customers", "full_name"),  # first and last name concatenated
    ]:
        assert tracer.passes_through(ColumnRef(f"model.asgard.{model}", column)) is None, (model, column)
    # A source's columns are where lineage ends: nothing upstream to pass through.
    source = next(uid for uid in tracer.manifest.sources if uid.endswith("silver.customers"))
    assert tracer.passes_through(ColumnRef(source, "id")) is None


def test_pass_through_on_a_public_project() -> None:
    manifest = load_manifest(FIXTURES / "jaffle_shop_duckdb" / "manifest.json.gz")
    catalog = load_catalog(FIXTURES / "jaffle_shop_duckdb" / "catalog.json.gz")
    tracer = ColumnTracer(manifest, catalog)
    # customers: `customers.first_name` from stg_customers, through two CTEs.
    assert tracer.passes_through(ColumnRef("model.jaffle_shop.customers", "first_name")) == ColumnRef(
        "model.jaffle_shop.stg_customers", "first_name"
    )
    # stg_customers renames the seed's `id`: `id as customer_id`, and ends at the seed.
    assert tracer.passes_through(ColumnRef("model.jaffle_shop.stg_customers", "customer_id")) == ColumnRef(
        "seed.jaffle_shop.raw_customers", "id"
    )
    # number_of_orders is `count(order_id)`; customer_lifetime_value a sum.
    assert tracer.passes_through(ColumnRef("model.jaffle_shop.customers", "number_of_orders")) is None
    assert tracer.passes_through(ColumnRef("model.jaffle_shop.customers", "customer_lifetime_value")) is None
