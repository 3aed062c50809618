"""The portal on Trino: browse, preview and lineage of the Trino-built project, as the signed-in user."""

from __future__ import annotations

import dataclasses
import shutil
import uuid

import networkx as nx
import pytest
from fastapi.testclient import TestClient
from trino_stack import fetch, signed_in

from portal.api import create_app
from portal.auth.identity import Identity
from portal.catalog.detail import product_detail
from portal.catalog.preview import preview as catalog_preview
from portal.project.dbt_runner import DbtResult, run_dbt
from portal.service import PortalService
from portal.settings import Settings
from portal.warehouse import Relation, WarehouseError, open_warehouse

pytestmark = pytest.mark.trino

PRODUCTS = {"dp_customer_360", "dp_product_performance", "dp_revenue_analytics"}


@pytest.fixture(scope="module")
def service(
    built: DbtResult, project_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> PortalService:
    """The portal over the Trino-built project: the full build's results plus docs' catalog.json."""
    docs = run_dbt(project_settings, ["docs", "generate"])  # catalog.json: column types from Trino
    assert docs.ok, docs.tail(40)
    target = tmp_path_factory.mktemp("portal-target")
    source = project_settings.target_dir
    shutil.copy(source / "manifest.json", target / "manifest.json")
    shutil.copy(source / "catalog.json", target / "catalog.json")
    shutil.copy(source / "build_run_results.json", target / "run_results.json")
    return PortalService(dataclasses.replace(project_settings, dbt_target_dir=str(target)))


def _queries_by(settings: Settings, user: str, marker: str) -> list[list[object]]:
    return fetch(
        settings,
        f"select user, query from system.runtime.queries where user = '{user}' and query like '%{marker}%'",
    )


def test_session_user_is_the_portal_user(stack: Settings) -> None:
    user = f"ann.{uuid.uuid4().hex[:8]}@example.com"
    warehouse = open_warehouse(stack, user=user)
    assert warehouse.query("select current_user as who")["who"].tolist() == [user]
    assert _queries_by(stack, user, "current_user"), "Trino recorded no query for the portal's user"


def test_trino_access_control_applies_to_the_portal_user(built: DbtResult, stack: Settings) -> None:
    relation = Relation(stack.trino_catalog, stack.gold_schema, "dp_customer_360")
    assert open_warehouse(stack, user="reader-ann").count(relation) > 0
    with pytest.raises(WarehouseError, match="Access Denied"):
        open_warehouse(stack, user="denied-bob").preview(relation, limit=5)


@pytest.mark.parametrize("through", ["the user's name", "the signed-in service user"])
def test_the_signed_in_user_is_who_trino_sees(service: PortalService, through: str) -> None:
    """Behind a sign-in proxy, an API query runs as the signed-in user: Trino's rules decide, and
    its refusal reaches the caller as a 403 that says who was refused and what to do. Either the
    name alone (plain HTTP) or the portal's service user, signed in over HTTPS, impersonating them."""
    sign_in = {"auth": "proxy", "auth_proxy_addresses": ("10.0.0.5/32",), "role_map": (("*", "viewer"),)}
    if through == "the signed-in service user":
        settings = signed_in(service.settings, **sign_in)
    else:
        settings = dataclasses.replace(service.settings, **sign_in)  # type: ignore[arg-type]
    url = "/api/v1/data-products/dp_customer_360/query?limit=3"
    with TestClient(
        create_app(settings), client=("10.0.0.5", 40000), base_url="http://portal.example.com"
    ) as client:
        reader = client.get(url, headers={"X-Auth-Request-Email": "reader-sam@example.com"})
        assert reader.status_code == 200 and len(reader.json()["rows"]) == 3, reader.text
        denied = client.get(url, headers={"X-Auth-Request-Email": "denied-sam@example.com"})
    assert denied.status_code == 403, denied.text
    detail = denied.json()["detail"]
    assert "does not let denied-sam@example.com read" in detail and "Access Denied" in detail, detail


def test_catalog_lists_the_products_built_on_trino(service: PortalService) -> None:
    entries = {e.name: e for e in service.entries()}
    assert set(entries) >= PRODUCTS
    for name in PRODUCTS:
        assert entries[name].is_data_product
        assert entries[name].relation_name and entries[name].relation_name.startswith('"nessie"')


def test_product_detail_has_trino_column_types(service: PortalService) -> None:
    detail = product_detail(service, "dp_customer_360")
    types = {c.name: (c.type or "").lower() for c in detail.columns}
    assert types["customer_id"] == "bigint"
    assert types["lifetime_value"].replace(" ", "") == "decimal(18,2)"
    assert detail.tests and all(t.status == "pass" for t in detail.tests)


def test_preview_runs_on_trino_as_the_signed_in_user(service: PortalService, stack: Settings) -> None:
    user = f"carol.{uuid.uuid4().hex[:8]}"
    preview = catalog_preview(
        service,
        "dp_revenue_analytics",
        identity=Identity(user, kind="oidc"),
        columns=["revenue_month", "channel"],
        limit=5,
    )
    assert len(preview.rows) == 5
    assert preview.total_rows > 5
    assert list(preview.rows.columns) == ["revenue_month", "channel"]
    assert '"nessie"' in preview.sql
    assert _queries_by(stack, user, "dp_revenue_analytics")


def test_lineage_of_the_trino_project(service: PortalService) -> None:
    lineage = service.lineage()
    product = next(u for u in lineage.graph if u.endswith(".dp_customer_360"))
    upstream = nx.ancestors(lineage.graph, product)
    assert any(u.endswith(".int_orders") for u in upstream)
    assert any(u.startswith("source.") and u.endswith(".customers") for u in upstream)
