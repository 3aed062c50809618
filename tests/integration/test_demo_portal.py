"""The service over the real demo: dbt-built DuckDB warehouse, SQLite catalog, real artifacts."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from catalog_db.models import DataProduct, NodeResult, Run
from portal.auth.identity import Identity
from portal.catalog.browse import CatalogQuery, browse
from portal.catalog.detail import product_detail
from portal.catalog.preview import preview as catalog_preview
from portal.service import NotFound, PortalService
from portal.settings import Settings
from portal.warehouse import BadRequest, Filter

PRODUCTS = {"dp_customer_360", "dp_product_performance", "dp_revenue_analytics"}
ME = Identity("tester")


@pytest.fixture
def service(demo_settings: Settings) -> PortalService:
    return PortalService(demo_settings)


def test_the_three_products_are_registered_healthy(service: PortalService) -> None:
    entries = {e.name: e for e in browse(service)}
    assert set(entries) == PRODUCTS
    for entry in entries.values():
        assert entry.entry.lifecycle == "published"
        assert entry.entry.owner and entry.entry.consumers and entry.entry.update_frequency
        assert entry.health.build_status == "success", entry.name
        assert entry.health.tests_passed > 0 and entry.health.tests_failed == 0
        assert entry.health.level == "healthy"
        assert entry.entry.row_count and entry.entry.row_count > 0
        assert entry.last_refreshed is not None
    assert entries["dp_customer_360"].entry.data_product_type == "CUSTOMER_360"
    assert set(entries["dp_revenue_analytics"].entry.consumers) >= {"Finance", "Executive", "Analytics"}


def test_search_finds_a_product_by_column_name(service: PortalService) -> None:
    found = [e.name for e in browse(service, CatalogQuery(text="data_product_updated_at"))]
    assert set(found) == PRODUCTS
    detail = product_detail(service, "dp_customer_360")
    only_here = next(
        c.name
        for c in detail.columns
        if all(c.name not in service.entry(p).column_names for p in PRODUCTS - {"dp_customer_360"})
    )
    assert [e.name for e in browse(service, CatalogQuery(text=only_here))] == ["dp_customer_360"]


def test_filter_by_owner_and_type(service: PortalService) -> None:
    owner = service.entry("dp_revenue_analytics").owner
    assert owner
    by_owner = browse(service, CatalogQuery(owners=(owner,)))
    assert "dp_revenue_analytics" in {e.name for e in by_owner}
    assert all(e.entry.owner == owner for e in by_owner)
    assert [e.name for e in browse(service, CatalogQuery(types=("CUSTOMER_360",)))] == ["dp_customer_360"]


def test_all_models_toggle_shows_staging_and_intermediate(service: PortalService) -> None:
    names = {e.name for e in browse(service, CatalogQuery(include_all_models=True))}
    assert names > PRODUCTS
    assert any(n.startswith("stg_") for n in names) and any(n.startswith("int_") for n in names)


def test_product_detail_has_types_tests_and_sql(service: PortalService) -> None:
    detail = product_detail(service, "dp_customer_360")
    assert detail.node.contract_enforced and detail.node.access == "public" and detail.node.group
    assert all(c.type for c in detail.columns), "types come from catalog.json"
    assert all(c.description for c in detail.columns)
    assert any("unique" in c.tests for c in detail.columns)
    assert detail.tests and all(t.status == "pass" for t in detail.tests)
    assert "{{" in detail.raw_sql and detail.compiled_sql and "{{" not in detail.compiled_sql


def test_preview_returns_rows_and_respects_the_limit(service: PortalService) -> None:
    preview = catalog_preview(service, "dp_customer_360", identity=ME, limit=5)
    assert len(preview.rows) == 5
    assert preview.total_rows == service.entry("dp_customer_360").row_count
    with pytest.raises(BadRequest, match="over the maximum"):
        catalog_preview(service, "dp_customer_360", identity=ME, limit=service.settings.preview_max_rows + 1)


def test_preview_filters_on_a_real_product(service: PortalService) -> None:
    segment = catalog_preview(service, "dp_customer_360", identity=ME, limit=1).rows.iloc[0]
    column = "segment" if "segment" in segment else segment.index[1]
    preview = catalog_preview(
        service,
        "dp_customer_360",
        identity=ME,
        filters=[Filter(column, "=", str(segment[column]))],
        limit=1000,
    )
    assert set(preview.rows[column].astype(str)) == {str(segment[column])}


def test_a_products_latest_results_are_its_own_nodes_of_the_whole_projects(service: PortalService) -> None:
    everything = service.latest_results()
    node = service.resolve("dp_customer_360")
    own = [node.unique_id, *(t.unique_id for t in service.artifacts().manifest.tests_of(node.unique_id))]
    assert len(own) > 1 and len(everything) > len(own)
    assert {uid: r.id for uid, r in service.latest_results(own).items()} == {
        uid: everything[uid].id for uid in own
    }
    assert service.latest_results([]) == {}


def test_unknown_product_suggests_names(service: PortalService) -> None:
    with pytest.raises(NotFound, match="Did you mean dp_customer_360"):
        product_detail(service, "customer_360")


def test_catalog_rows_match_the_build(service: PortalService, demo_settings: Settings) -> None:
    with service.sessions() as session:
        products = session.scalars(sa.select(DataProduct)).all()
        assert {p.name for p in products} == PRODUCTS
        builds = session.scalars(sa.select(Run).where(Run.command == "build")).all()
        assert len(builds) == 1 and builds[0].status == "success"
        tests = session.scalars(sa.select(NodeResult).where(NodeResult.resource_type == "test")).all()
        generic = [t for t in tests if t.test_name != "singular"]
        assert generic and all(t.attached_node for t in generic), "generic tests know the node they test"
    con = duckdb.connect(str(demo_settings.duckdb_path), read_only=True)
    try:
        silver = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'silver'"
            ).fetchall()
        }
    finally:
        con.close()
    assert {"customers", "products", "orders", "order_items", "payments"} <= silver


def test_resync_is_idempotent(service: PortalService) -> None:
    def dump() -> list[tuple]:
        with service.sessions() as session:
            rows = []
            for model in (DataProduct, Run, NodeResult):
                for row in session.scalars(sa.select(model)).all():
                    rows.append(
                        tuple(sorted((k, repr(v)) for k, v in vars(row).items() if not k.startswith("_")))
                    )
            return rows

    before = dump()
    service.reload()
    assert service.last_sync is not None
    assert (service.last_sync.products_added, service.last_sync.runs_added) == (0, 0)
    assert dump() == before
