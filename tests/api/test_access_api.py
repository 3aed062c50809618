"""Access requests through the API: asked by one token holder, decided by the owner, visible to both."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import bearer

PRODUCT = "dp_revenue_analytics"


def test_ask_decide_and_see_it_from_both_sides(
    client: TestClient, tokens: dict[str, str], api_settings
) -> None:
    asked = client.post(
        f"/api/v1/data-products/{PRODUCT}/access-requests",
        json={"reason": "Quarterly board deck", "days": 14},
        headers=bearer(tokens["viewer"]),
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "pending" and request["requester"] == "vera" and not request["enforced"]
    again = client.post(
        f"/api/v1/data-products/{PRODUCT}/access-requests",
        json={"reason": "Quarterly board deck", "days": 14},
        headers=bearer(tokens["viewer"]),
    )
    assert again.status_code == 409 and "withdraw it" in again.json()["detail"]
    # a creator who does not own the product may not decide; an admin may
    refused = client.post(
        f"/api/v1/access-requests/{request['id']}/approve", headers=bearer(tokens["creator"])
    )
    assert refused.status_code == 403 and PRODUCT in refused.json()["detail"]
    approved = client.post(
        f"/api/v1/access-requests/{request['id']}/approve",
        json={"comment": "ok"},
        headers=bearer(tokens["admin"]),
    )
    assert approved.status_code == 200 and approved.json()["live"] and approved.json()["decided_by"] == "ada"
    mine = client.get("/api/v1/access-requests", headers=bearer(tokens["viewer"])).json()
    assert [r["id"] for r in mine] == [request["id"]] and mine[0]["shown_state"] == "approved"
    # the requester sees only their own on the product; the admin sees all of them
    theirs = client.get(f"/api/v1/data-products/{PRODUCT}/access-requests", headers=bearer(tokens["creator"]))
    assert theirs.json() == []
    everyone = client.get(f"/api/v1/data-products/{PRODUCT}/access-requests", headers=bearer(tokens["admin"]))
    assert [r["requester"] for r in everyone.json()] == ["vera"]
    ended = client.post(f"/api/v1/access-requests/{request['id']}/end", headers=bearer(tokens["viewer"]))
    assert ended.json()["state"] == "withdrawn" and not ended.json()["live"]


def test_bad_requests_are_refused_with_the_fix(client: TestClient, tokens: dict[str, str]) -> None:
    short = client.post(
        f"/api/v1/data-products/{PRODUCT}/access-requests",
        json={"reason": "x", "days": 3},
        headers=bearer(tokens["viewer"]),
    )
    assert short.status_code == 400 and "characters" in short.json()["detail"]
    long = client.post(
        f"/api/v1/data-products/{PRODUCT}/access-requests",
        json={"reason": "Quarterly board deck", "days": 400},
        headers=bearer(tokens["viewer"]),
    )
    assert long.status_code == 400 and "PORTAL_ACCESS_MAX_DAYS" in long.json()["detail"]
    missing = client.post(
        "/api/v1/access-requests/999/refuse", json={"comment": "no"}, headers=bearer(tokens["admin"])
    )
    assert missing.status_code == 404
