"""The consumers API over a private copy of the demo, with real dbt parse: register (201), list,
clear 4xx problems for bad input, a taken name and a refused removal, and removal."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer

pytestmark = pytest.mark.slow
URL = "/api/v1/data-products/dp_customer_360/consumers"
BOARD: dict[str, Any] = {
    "owner_name": "growth-team",
    "owner_email": "growth@example.com",
    "description": "Churn notebook of the growth team.",
    "url": "https://notebooks.example.com/churn",
    "type": "notebook",
    "maturity": "low",
}


def test_register_list_refuse_and_remove(client: TestClient, tokens: dict[str, str]) -> None:
    viewer, other = bearer(tokens["viewer"]), bearer(tokens["other"])
    created = client.post(URL, json=BOARD, headers=viewer)  # a reader may register what they read
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "growth_team_dp_customer_360"
    assert (body["registered_by"], body["owner_name"], body["type"]) == ("vera", "growth-team", "notebook")
    assert body["path"] == "models/data_products/consumers/growth_team_dp_customer_360.yml"

    listed = client.get(URL, headers=other)
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()] == ["growth_team_dp_customer_360"]

    # The product's lineage now ends in the exposure.
    lineage = client.get("/api/v1/data-products/dp_customer_360/lineage", headers=other).json()
    assert "exposure.asgard.growth_team_dp_customer_360" in {n["unique_id"] for n in lineage["nodes"]}

    again = client.post(URL, json=BOARD, headers=other)
    assert again.status_code == 409, again.text
    assert "already has an exposure named `growth_team_dp_customer_360`" in again.json()["detail"]

    removed_by_stranger = client.delete(f"{URL}/growth_team_dp_customer_360", headers=other)
    assert removed_by_stranger.status_code == 403
    assert "only whoever registered it (vera)" in removed_by_stranger.json()["detail"]

    removed = client.delete(f"{URL}/growth_team_dp_customer_360", headers=viewer)
    assert removed.status_code == 200, removed.text
    assert client.get(URL, headers=viewer).json() == []
    assert client.delete(f"{URL}/growth_team_dp_customer_360", headers=viewer).status_code == 404


def test_bad_input_is_a_422_naming_each_field(client: TestClient, tokens: dict[str, str]) -> None:
    bad = {**BOARD, "owner_email": "growth at example", "url": "ftp://x", "name": "9lives"}
    answer = client.post(URL, json=bad, headers=bearer(tokens["viewer"]))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"owner_email", "url", "name"}
    wrong_type = client.post(URL, json={**BOARD, "type": "billboard"}, headers=bearer(tokens["viewer"]))
    assert wrong_type.status_code == 422 and "dashboard" in wrong_type.text  # OpenAPI's choices
    assert (
        client.post(
            "/api/v1/data-products/dp_nothing_here/consumers", json=BOARD, headers=bearer(tokens["viewer"])
        ).status_code
        == 404
    )
    assert client.get(URL, headers=bearer(tokens["viewer"])).json() == []
