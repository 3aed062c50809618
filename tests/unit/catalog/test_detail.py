"""A product's columns on its page: descriptions inherited from the upstream column a column passes
through unchanged, and types as the warehouse names them. On a real product created from SQL over
the demo (the case where columns come undocumented), and on the demo's own products."""

from __future__ import annotations

import pytest

from portal.auth.identity import Identity
from portal.catalog.detail import ColumnDetail, product_detail
from portal.creation.flow import create
from portal.creation.spec import ProductSpec
from portal.observability.refresh import refresh_one
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

# Documented nowhere but in int_orders' YAML; `sales_channel` renames int_orders.channel.
UNDOCUMENTED = ProductSpec(
    name="dp_order_channels",
    description="Orders and their channel.",
    data_product_type="CUSTOM",
    owner="sales-team",
    sql=(
        "select order_id, customer_id, channel as sales_channel, order_value, "
        "order_value * 2 as doubled_value, upper(order_status) as loud_status from int_orders"
    ),
    primary_key=("order_id",),
    column_descriptions={"customer_id": "Who ordered; described here, so nothing is inherited."},
)


@pytest.fixture(scope="module")
def created(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> PortalService:
    environ = copy_demo(demo_env, tmp_path_factory.mktemp("detail") / "portal")
    service = PortalService(Settings.from_env(environ))
    run = create(service, UNDOCUMENTED, Identity(service.settings.local_user))
    assert run.status == "published", run
    # No refresh: the creation's parse compiles nothing, yet the product has its compiled SQL (from
    # its audit build) and every other model keeps its own (project/compiled.py).
    return service


def _columns(service: PortalService, name: str) -> dict[str, ColumnDetail]:
    return {c.name: c for c in product_detail(service, name).columns}


def test_an_undocumented_pass_through_column_inherits_its_upstream_description(
    created: PortalService,
) -> None:
    columns = _columns(created, UNDOCUMENTED.name)
    assert columns["order_id"].description == "The order."  # int_orders' YAML
    assert columns["order_id"].description_from == "int_orders.order_id"
    assert columns["order_id"].inherited
    # A rename is the same column: int_orders.channel's description, said to be from there.
    assert columns["sales_channel"].description == "Channel code of the order."
    assert columns["sales_channel"].description_from == "int_orders.channel"
    # order_value is derived in int_orders, but this product passes it through unchanged.
    assert columns["order_value"].description_from == "int_orders.order_value"


def test_a_derived_or_documented_column_does_not_inherit(created: PortalService) -> None:
    columns = _columns(created, UNDOCUMENTED.name)
    for derived in ("doubled_value", "loud_status"):
        assert columns[derived].description == "", derived
        assert columns[derived].description_from is None, derived
    own = columns["customer_id"]
    assert own.description == UNDOCUMENTED.column_descriptions["customer_id"]
    assert not own.inherited


def test_types_are_the_warehouses_even_before_the_catalog_knows_the_product(created: PortalService) -> None:
    # The product was built after catalog.json was written: its types come from the warehouse.
    artifacts = created.artifacts()
    unique_id = created.resolve(UNDOCUMENTED.name).unique_id
    assert artifacts.catalog is not None and artifacts.catalog.get(unique_id) is None
    columns = _columns(created, UNDOCUMENTED.name)
    assert columns["order_value"].type == "DECIMAL(18,2)"  # DuckDB's name; the YAML says decimal(18,2)
    assert columns["loud_status"].type == "VARCHAR"
    assert all(c.declared_type is None for c in columns.values())  # same types, differently cased


def test_the_declared_type_is_shown_only_where_it_differs(demo_settings: Settings) -> None:
    columns = _columns(PortalService(demo_settings), "dp_customer_360")
    assert columns["customer_id"].type == "BIGINT" and columns["customer_id"].declared_type is None
    assert (
        columns["lifetime_value"].type == "DECIMAL(18,2)" and columns["lifetime_value"].declared_type is None
    )
    # The YAML says timestamp(6); DuckDB's catalog calls it TIMESTAMP.
    assert columns["signed_up_at"].type == "TIMESTAMP"
    assert columns["signed_up_at"].declared_type == "timestamp(6)"
    # Every column of the demo's products has its own description: nothing is inherited.
    assert not any(c.inherited for c in columns.values())


def test_inherited_descriptions_are_computed_once_per_build(created: PortalService) -> None:
    product_detail(created, UNDOCUMENTED.name)
    tracer = created.column_tracer()
    traced = dict(tracer._passes)
    product_detail(created, UNDOCUMENTED.name)
    assert created.column_tracer() is tracer and tracer._passes == traced  # nothing traced again
    created.reload()  # a new build (artifacts re-read) forgets them
    assert created.column_tracer() is not tracer


def test_a_creation_and_a_refresh_leave_every_model_its_column_lineage(created: PortalService) -> None:
    """`dbt parse` and `dbt build --select x` write a manifest without the others' compiled SQL."""
    assert refresh_one(created, UNDOCUMENTED.name).ok
    created.artifacts()  # reloads the manifest the refresh wrote
    compiled = [n.name for n in created.artifacts().manifest.models() if not n.compiled_code]
    assert compiled == [], f"models without compiled SQL after a refresh: {compiled}"
    traced = created.column_lineage("dp_customer_360", "lifetime_value")
    assert traced.edges and not traced.untraceable
    assert _columns(created, UNDOCUMENTED.name)["order_id"].description_from == "int_orders.order_id"
