"""The review API over a real portal with review required: a creation waits in review, its
proposal shows the file, schema and data diff, the tests and who may decide; the author's own
approval is refused; a reviewer approves; decisions on a decided proposal conflict."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal.api import create_app
from portal.auth.access import create_token
from portal.settings import Settings
from tests.api.conftest import bearer
from tests.api.test_api import problem

pytestmark = pytest.mark.slow
BASE = "/api/v1/data-products"
PROPOSALS = "/api/v1/proposals"
CARL = {
    "name": "Carl Reviewed",
    "description": "Orders with their customer and status.",
    "data_product_type": "CUSTOM",
    "owner": "sales-team",
    "source_query": "select order_id, customer_id, status from silver.orders",
    "primary_key": ["order_id"],
}


@pytest.fixture(scope="module")
def reviewed(api_settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    app = create_app(replace(api_settings, review="required"))
    sessions = app.state.service.sessions
    headers = {
        who: bearer(create_token(sessions, user, role, created_by="tests").secret)
        for who, user, role in (
            ("author", "carl", "creator"),
            ("creator", "olga", "creator"),
            ("reviewer", "rita", "reviewer"),
            ("viewer", "vera", "viewer"),
        )
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, headers


@pytest.fixture(scope="module")
def submitted(reviewed: tuple[TestClient, dict[str, dict[str, str]]]) -> dict[str, Any]:
    client, headers = reviewed
    response = client.post(f"{BASE}/?wait=true", json=CARL, headers=headers["author"])
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["state"] == "in_review" and body["proposal"], body
    assert body["product"]["lifecycle"] == "in_review"
    return body


def test_a_proposal_in_review_shows_what_it_changes(
    reviewed: tuple[TestClient, dict[str, dict[str, str]]], submitted: dict[str, Any]
) -> None:
    client, headers = reviewed
    listed = client.get(f"{PROPOSALS}/", params={"state": "in_review"}, headers=headers["viewer"]).json()
    assert [p["id"] for p in listed] == [submitted["proposal"]]
    detail = client.get(f"{PROPOSALS}/{submitted['proposal']}", headers=headers["reviewer"]).json()
    assert {f["path"] for f in detail["files"]} == {
        "models/data_products/dp_carl_reviewed.sql",
        "models/data_products/dp_carl_reviewed.yml",
    }
    review = detail["review"]
    assert review["schema_diff"]["added"] == ["order_id", "customer_id", "status"]  # a new product
    data = review["data_diff"]
    assert data["before"] is None and data["key"] == ["order_id"]
    assert data["rows_before"] == 0 and data["added"] == data["rows_after"] > 0
    assert len(data["samples"]) == 10 and {s["change"] for s in data["samples"]} == {"added"}
    assert {t["resource_type"] for t in review["tests"]} == {"model", "test"}
    assert all(t["status"] in {"success", "pass"} for t in review["tests"])
    assert {c["column"]: c["upstream"] for c in review["lineage"]}["status"] == ["orders.status"]
    assert review["may_decide"] is True and review["refusal"] is None and review["stale"] is None
    as_author = client.get(f"{PROPOSALS}/{submitted['proposal']}", headers=headers["author"]).json()
    assert as_author["review"]["may_decide"] is False
    assert "authors cannot approve or reject their own" in as_author["review"]["refusal"]


def test_only_another_reviewer_decides_and_only_once(
    reviewed: tuple[TestClient, dict[str, dict[str, str]]], submitted: dict[str, Any]
) -> None:
    client, headers = reviewed
    url = f"{PROPOSALS}/{submitted['proposal']}"
    assert (
        "authors cannot" in problem(client.post(f"{url}/approve", headers=headers["author"]), 403)["detail"]
    )
    assert (
        "may not decide" in problem(client.post(f"{url}/approve", headers=headers["creator"]), 403)["detail"]
    )
    problem(client.post(f"{url}/reject", json={}, headers=headers["reviewer"]), 422)  # no comment
    problem(
        client.post(f"{url}/approve", json={"comment": "ok", "extra": 1}, headers=headers["reviewer"]), 422
    )
    assert client.post(f"{url}/approve", headers=headers["viewer"]).status_code == 403
    approved = client.post(f"{url}/approve", json={"comment": "Ship it."}, headers=headers["reviewer"])
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["proposal"]["state"] == "published" and body["proposal"]["decided_by"] == "rita"
    assert body["proposal"]["comment"] == "Ship it." and body["row_count"] > 0
    product = client.get(f"{BASE}/dp_carl_reviewed", headers=headers["viewer"]).json()
    assert product["lifecycle"] == "published"
    again = problem(client.post(f"{url}/reject", json={"comment": "no"}, headers=headers["reviewer"]), 409)
    assert "it was published (approved by rita)" in again["detail"]
    problem(client.post(f"{PROPOSALS}/999999/approve", headers=headers["reviewer"]), 404)
    detail = client.get(url, headers=headers["viewer"]).json()
    assert detail["review"]["data_diff"] is None and detail["review"]["may_decide"] is False
