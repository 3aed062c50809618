"""What the SQL workspace lists as readable is what its guard accepts, on a private copy of the
real demo build (portal/catalog/readable.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.auth.identity import Identity
from portal.catalog import workspace
from portal.catalog.readable import find, readable
from portal.creation.flow import create
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo
from tests.failing_products import lines_by_customer

ME = Identity("tester")


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> PortalService:
    return PortalService(Settings.from_env(copy_demo(demo_env, tmp_path / "portal")))


def test_products_come_first_then_models_then_sources_with_the_warehouses_types(
    service: PortalService,
) -> None:
    listed = readable(service)
    kinds = [r.kind for r in listed]
    assert kinds == sorted(kinds, key=["data product", "model", "source"].index)
    by_name = {r.name: r for r in listed}
    assert {"dp_customer_360", "dp_product_performance", "dp_revenue_analytics"} == {
        r.name for r in listed if r.kind == "data product"
    }
    assert by_name["silver.orders"].kind == "source" and by_name["stg_orders"].kind == "model"
    customer = dict(by_name["dp_customer_360"].columns)
    assert customer["customer_id"] and customer["order_count"] == "BIGINT"  # catalog.json's names
    assert by_name["dp_customer_360"].description.startswith("One row per customer")


def test_every_listed_relation_is_accepted_as_its_select_and_an_unpublished_one_is_not_listed(
    service: PortalService,
) -> None:
    failing = lines_by_customer("dp_lines_failing")
    assert create(service, failing, ME).status == "failed"
    listed = readable(service)
    assert "dp_lines_failing" not in {r.name for r in listed}  # the guard withholds it too
    for relation in listed:
        result = workspace.run_query(service, relation.select(), ME, limit=1)
        assert result.ok, (relation.name, [p.message for p in result.problems])


def test_find_offers_the_products_first_and_at_most_its_limit(service: PortalService) -> None:
    listed = readable(service)
    assert readable(service) is listed  # once per build
    products, count = find(listed, "")
    assert count == 3 and {r.kind for r in products} == {"data product"}
    orders, count = find(listed, "ORDERS", limit=2)
    assert count > 2 and len(orders) == 2 and all("orders" in r.name for r in orders)
    assert find(listed, "no such relation") == ([], 0)
