"""One product, one health: the catalog, the Health page, the product page, the API and the CLI
judge it by the same rule (`portal/project/statuses.py`).

Two products that used to read differently from place to place: one whose audit failed (the
catalog said "Last build success · Refreshed just now" and "fresh" next to its failing test),
and one past its daily promise (the catalog's badge said "healthy", the Health page "late").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog_db.models import NodeResult, ProductProfile
from portal.auth.identity import Identity
from portal.catalog.browse import CatalogQuery, browse
from portal.catalog.detail import product_detail
from portal.creation.flow import create
from portal.creation.spec import ProductSpec
from portal.observability.health import health_overview
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.api.conftest import bearer

pytestmark = pytest.mark.slow
BASE = "/api/v1/data-products"
FAILED = "dp_order_customers"  # its primary key repeats: the audit's unique test fails
LATE = "dp_product_performance"  # promised daily


@pytest.fixture(scope="module")
def judged(api_settings: Settings) -> PortalService:
    service = PortalService(api_settings)
    spec = ProductSpec(
        name=FAILED,
        description="Each order's customer; order_id is no key of order lines.",
        data_product_type="CUSTOMER_360",
        owner="customer-analytics-team",
        consumers=("Marketing",),
        update_frequency="daily",
        tags=(),
        primary_key=("customer_id",),
        materialization="table",
        sql="select customer_id, order_id from int_orders",
        column_descriptions={},
    )
    assert create(service, spec, Identity("tester")).status == "failed"
    # A day and a half passes for the late product: its build and its profile are that old now.
    back = timedelta(hours=36)
    unique_id = service.entry(LATE).unique_id
    with service.sessions.begin() as session:
        for result in session.scalars(sa.select(NodeResult).where(NodeResult.unique_id == unique_id)):
            if result.completed_at is not None:
                result.completed_at -= back
        for profile in session.scalars(sa.select(ProductProfile).where(ProductProfile.product == LATE)):
            profile.measured_at -= back
            if profile.newest_update is not None:
                profile.newest_update -= back
    return service


def _cli_health(settings_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "portal", "health", "--json"],
        env={**os.environ, **settings_env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return {item["name"]: item for item in json.loads(done.stdout)}


def test_every_face_gives_every_product_the_same_health(
    judged: PortalService, client: TestClient, tokens: dict[str, str], api_env: dict[str, str]
) -> None:
    headers = bearer(tokens["viewer"])
    catalog = {h.name: h for h in browse(judged)}
    page = {h.name: h for h in health_overview(judged)}
    listed = {p["name"]: p for p in client.get(f"{BASE}/?limit=500", headers=headers).json()["items"]}
    cli = _cli_health(api_env)
    assert set(catalog) == set(page) == set(listed) == set(cli) >= {FAILED, LATE, "dp_customer_360"}
    for name, item in catalog.items():
        level = item.level
        assert page[name].health == item.health, name
        assert product_detail(judged, name).health.level == level, name
        assert listed[name]["health"]["level"] == level, name
        one = client.get(f"{BASE}/{name}", headers=headers).json()
        assert one["health"]["level"] == level and one["lifecycle"] == item.entry.lifecycle, name
        assert client.get(f"{BASE}/{name}/quality", headers=headers).json()["health"]["level"] == level
        assert cli[name]["level"] == level and cli[name]["lifecycle"] == item.entry.lifecycle, name

    failed = catalog[FAILED]
    assert failed.entry.lifecycle == "failed" and failed.level == "failing"
    assert failed.health.build_status is None and failed.last_refreshed is None  # never "success"
    assert failed.health.freshness != "fresh"
    assert listed[FAILED]["health"]["problems"][0] == "not published: its last audit failed"
    assert listed[FAILED]["status"] == "failed"  # the old field name still answers, deprecated

    late = catalog[LATE]
    assert late.entry.lifecycle == "published" and late.health.freshness == "late"
    assert late.level == "warning" and "late" in late.problems
    assert catalog["dp_customer_360"].level == "healthy"


def test_lifecycle_and_health_are_two_filters(
    judged: PortalService, client: TestClient, tokens: dict[str, str]
) -> None:
    headers = bearer(tokens["viewer"])

    def names(query: str) -> set[str]:
        response = client.get(f"{BASE}/?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return {p["name"] for p in response.json()["items"]}

    assert names("lifecycle=failed") == {FAILED}
    assert names("health=failing") == {FAILED}
    assert names("health=warning") == {LATE}
    assert names("lifecycle=published&health=warning") == {LATE}
    assert names("lifecycle=published&health=failing") == set()
    assert names("status=failed") == {FAILED}  # deprecated: a lifecycle or a health level
    assert names("status=warning") == {LATE}
    assert {h.name for h in browse(judged, CatalogQuery(health=("warning", "failing")))} == {FAILED, LATE}
    refused = client.get(f"{BASE}/?lifecycle=broken", headers=headers)
    assert refused.status_code == 422 and "published" in refused.json()["detail"]
    refused = client.get(f"{BASE}/?health=fine", headers=headers)
    assert refused.status_code == 422 and "healthy" in refused.json()["detail"]


def test_the_health_command_is_a_monitoring_check(judged: PortalService, api_env: dict[str, str]) -> None:
    def health(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "portal", "health", *args]
        env = {**os.environ, **api_env}
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)

    everything = health("--fail-on", "failing")
    assert everything.returncode == 1, everything.stderr
    first = everything.stdout.splitlines()[0]
    assert first.startswith("failing") and FAILED in first and "not published" in first
    assert health("dp_customer_360", "--fail-on", "warning").returncode == 0
    assert health(LATE, "--fail-on", "warning").returncode == 1
    unknown = health("dp_nope")  # could not start: exit 2, one sentence, no traceback
    assert unknown.returncode == 2 and "dp_nope" in unknown.stderr and "Traceback" not in unknown.stderr
