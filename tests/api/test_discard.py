"""DELETE /api/v1/data-products/{id}?discard=true: the API's Discard, as the Create page has it.
A product that was never published goes away with its files; a published one is only deprecated."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from portal.creation.lifecycle import models_dir
from portal.settings import Settings
from tests.api.conftest import bearer
from tests.api.test_api import BASE, CARL, problem

pytestmark = pytest.mark.slow

# Order lines repeat the order: order_id is no key here, so the audit's unique test fails.
LINES = {
    **CARL,
    "name": "Carl Lines",
    "source_query": "select o.order_id, i.product_id from silver.orders o join silver.order_items i using (order_id)",
    "primary_key": ["order_id"],
}


def test_a_failed_product_is_discarded_by_its_owner_only(
    client: TestClient, tokens: dict[str, str], api_settings: Settings
) -> None:
    creator = bearer(tokens["creator"])
    failed = client.post(f"{BASE}/?wait=true", json=LINES, headers=creator)
    assert failed.status_code == 201 and failed.json()["state"] == "failed", failed.text
    files = sorted(p.name for p in models_dir(api_settings).iterdir() if p.stem == "dp_carl_lines")
    assert files == ["dp_carl_lines.sql", "dp_carl_lines.yml"]

    problem(client.delete(f"{BASE}/dp_carl_lines?discard=true", headers=bearer(tokens["viewer"])), 403)
    problem(client.delete(f"{BASE}/dp_carl_lines?discard=true", headers=bearer(tokens["other"])), 403)
    discarded = client.delete(f"{BASE}/dp_carl_lines?discard=true", headers=creator)
    assert discarded.status_code == 200, discarded.text
    assert discarded.json()["lifecycle"] == "removed"
    assert not [p for p in models_dir(api_settings).iterdir() if p.stem == "dp_carl_lines"]
    problem(client.get(f"{BASE}/dp_carl_lines", headers=creator), 404)
    # the name is free again
    fixed = {**LINES, "source_query": "select order_id, customer_id from silver.orders"}
    published = client.post(f"{BASE}/?wait=true", json=fixed, headers=creator)
    assert published.status_code == 201 and published.json()["state"] == "published", published.text
    # once published it may have consumers: deprecated, never discarded
    refused = problem(client.delete(f"{BASE}/dp_carl_lines?discard=true", headers=creator), 409)
    assert "deprecate it instead" in refused["detail"]
    assert client.get(f"{BASE}/dp_carl_lines", headers=creator).json()["lifecycle"] == "published"


def test_a_product_written_in_dbt_is_never_discarded(client: TestClient, tokens: dict[str, str]) -> None:
    refused = problem(
        client.delete(f"{BASE}/dp_customer_360?discard=true", headers=bearer(tokens["admin"])), 409
    )
    assert "written by hand in the dbt project" in refused["detail"]
