"""Pointing the portal at somebody else's dbt project: public artifacts and databases."""

from __future__ import annotations

import time

import pytest

from portal.auth.identity import Identity
from portal.catalog.browse import CatalogQuery, browse
from portal.catalog.detail import product_detail
from portal.catalog.preview import preview as catalog_preview
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import FIXTURES


def test_jaffle_shop_duckdb_browses_and_previews(jaffle_env: dict[str, str]) -> None:
    service = PortalService(Settings.from_env(jaffle_env))
    products = browse(service)
    assert [e.name for e in products] == ["customers"]
    assert products[0].health.build_status == "success"
    assert products[0].health.tests_passed > 0
    everything = {e.name for e in browse(service, CatalogQuery(include_all_models=True))}
    assert {"orders", "stg_orders", "raw_orders"} <= everything
    preview = catalog_preview(service, "orders", identity=Identity("tester"), limit=10)
    assert len(preview.rows) == 10 and preview.total_rows == 99
    detail = product_detail(service, "customers")
    assert any(c.type for c in detail.columns)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
def test_every_public_fixture_opens_in_the_catalog(fixture: str, tmp_path) -> None:
    settings = Settings.from_env(
        {
            "PORTAL_DBT_TARGET_DIR": str(FIXTURES / fixture),
            "PORTAL_CATALOG_DB_URL": f"sqlite:///{tmp_path}/c.db",
        }
    )
    service = PortalService(settings)
    started = time.perf_counter()
    models = browse(service, CatalogQuery(include_all_models=True))
    assert models
    hits = browse(service, CatalogQuery(text=models[0].name, include_all_models=True))
    assert models[0].name in {e.name for e in hits}
    product_detail(service, models[-1].entry.unique_id)
    print(f"{fixture}: {len(models)} models in {time.perf_counter() - started:.2f} s")


def test_two_processes_syncing_at_once_register_each_product_once(
    jaffle_env: dict[str, str], tmp_path
) -> None:
    """The UI, the API and cron each hold a service; their first syncs may overlap."""
    import threading

    import sqlalchemy as sa

    from catalog_db.models import DataProduct

    environ = {**jaffle_env, "PORTAL_CATALOG_DB_URL": f"sqlite:///{tmp_path}/shared.db"}
    services = [PortalService(Settings.from_env(environ)) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(services))

    def first_sync(service: PortalService) -> None:
        barrier.wait()
        try:
            service.artifacts()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_sync, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with services[0].sessions() as session:
        assert session.scalars(sa.select(sa.func.count()).select_from(DataProduct)).one() == 1
