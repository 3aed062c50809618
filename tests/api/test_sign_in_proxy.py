"""The API behind a sign-in proxy: the proxy's user headers name the caller, from its own address
only; roles come from groups and teams own products. A private copy of the demo, real builds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from portal.api import create_app
from portal.settings import Settings

pytestmark = pytest.mark.slow
BASE = "/api/v1/data-products"
PROXY = ("10.0.0.5", 41000)
ELSEWHERE = ("10.0.0.9", 41000)


def who(email: str, groups: str) -> dict[str, str]:
    return {"X-Auth-Request-Email": email, "X-Auth-Request-Groups": groups}


SAM = who("sam@example.com", "team-sales,portal-creators")
MARIA = who("maria@example.com", "team-marketing,portal-creators")
VERA = who("vera@example.com", "team-readers")
EVE = who("eve@example.com", "contractors")
PRODUCT = {
    "name": "Sales Orders",
    "description": "Orders, for the sales team.",
    "data_product_type": "CUSTOM",
    "owner": "team-sales",
    "source_query": "select order_id, customer_id from silver.orders",
    "primary_key": ["order_id"],
}


@pytest.fixture(scope="module")
def proxied(api_settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    settings = replace(
        api_settings,
        auth="proxy",
        review="off",  # ownership is the question here; tests/integration/test_review.py holds reviews
        auth_proxy_addresses=("10.0.0.5/32",),
        role_map=(("analytics-admins", "admin"), ("portal-creators", "creator"), ("team-*", "viewer")),
    )
    app = create_app(settings)
    base = "http://portal.example.com"
    with (
        TestClient(app, client=PROXY, base_url=base, raise_server_exceptions=False) as via_proxy,
        TestClient(app, client=ELSEWHERE, base_url=base, raise_server_exceptions=False) as direct,
    ):
        yield via_proxy, direct


def test_the_proxy_names_the_caller(proxied: tuple[TestClient, TestClient]) -> None:
    via_proxy, direct = proxied
    assert via_proxy.get(f"{BASE}/", headers=SAM).status_code == 200
    # the same headers from anyone but the proxy are ignored: no token, no access
    refused = direct.get(f"{BASE}/", headers=SAM)
    assert refused.status_code == 401 and "without a token" in refused.json()["detail"], refused.text
    # signed in, but in no group that has a role
    nobody = via_proxy.get(f"{BASE}/", headers=EVE)
    assert nobody.status_code == 403 and "none of their groups (contractors)" in nobody.json()["detail"]
    missing = via_proxy.get(f"{BASE}/", headers={"X-Auth-Request-Groups": "team-sales"})
    assert missing.status_code == 401 and "X-Auth-Request-Email" in missing.json()["detail"]


def test_teams_own_what_their_members_create(proxied: tuple[TestClient, TestClient]) -> None:
    via_proxy, _direct = proxied
    elsewhere = via_proxy.post(f"{BASE}/", json={**PRODUCT, "owner": "team-marketing"}, headers=SAM)
    assert elsewhere.status_code == 422, elsewhere.text
    assert elsewhere.json()["errors"][0]["field"] == "owner" and "`team-sales`" in elsewhere.text

    created = via_proxy.post(f"{BASE}/?wait=true", json=PRODUCT, headers=SAM)
    assert created.status_code == 201, created.text
    body = via_proxy.get(f"{BASE}/dp_sales_orders", headers=MARIA).json()  # anyone may read it
    assert body["created_by"] == "sam@example.com" and body["owner"] == "team-sales"

    change = {"description": "Orders, edited by marketing."}
    other_team = via_proxy.patch(f"{BASE}/dp_sales_orders", json=change, headers=MARIA)
    assert other_team.status_code == 403, other_team.text
    assert "only products of their teams (team-marketing, portal-creators)" in other_team.json()["detail"]
    viewer = via_proxy.post(f"{BASE}/", json={**PRODUCT, "name": "Vera Orders"}, headers=VERA)
    assert viewer.status_code == 403 and "viewer role" in viewer.json()["detail"], viewer.text
    same_team = via_proxy.patch(f"{BASE}/dp_sales_orders?wait=true", json=change, headers=SAM)
    assert same_team.status_code == 200 and same_team.json()["state"] == "published", same_team.text


def test_the_history_names_who_changed_the_product_and_their_teams(
    proxied: tuple[TestClient, TestClient],
) -> None:
    via_proxy, direct = proxied
    history = via_proxy.get(f"{BASE}/dp_sales_orders/history", headers=VERA)  # any reader may see it
    assert history.status_code == 200, history.text
    changes = history.json()
    # newest first; the build's own event says what changed, with no sync event repeating it
    assert [c["action"] for c in changes] == ["product.edited", "product.created"], changes
    created = changes[-1]
    assert created["actor"] == "sam@example.com" and created["teams"] == ["team-sales", "portal-creators"]
    edited = changes[0]
    assert edited["actor"] == "sam@example.com" and edited["detail"]["changes"]["description"] == {
        "from": "Orders, for the sales team.",
        "to": "Orders, edited by marketing.",
    }
    # marketing's refused edit changed nothing, so it is not a change of the product
    assert "maria@example.com" not in {c["actor"] for c in changes}
    assert direct.get(f"{BASE}/dp_sales_orders/history", headers=VERA).status_code == 401
    missing = via_proxy.get(f"{BASE}/dp_no_such_product/history", headers=VERA)
    assert missing.status_code == 404 and "dp_no_such_product" in missing.json()["detail"]


def test_every_change_is_a_proposal_with_its_author_and_its_diff(
    proxied: tuple[TestClient, TestClient],
) -> None:
    via_proxy, _direct = proxied
    listed = via_proxy.get("/api/v1/proposals/?product=dp_sales_orders", headers=VERA)
    assert listed.status_code == 200, listed.text
    found = listed.json()
    assert [(p["action"], p["state"], p["author"]) for p in found] == [
        ("product.edited", "published", "sam@example.com"),
        ("product.created", "published", "sam@example.com"),
    ]
    assert found[0]["merged_sha"] and found[0]["branch"] == f"product/dp_sales_orders/{found[0]['run_id']}"
    edit = via_proxy.get(f"/api/v1/proposals/{found[0]['id']}", headers=VERA).json()
    (yml,) = [f for f in edit["files"] if f["path"].endswith("dp_sales_orders.yml")]
    assert yml["status"] == "modified"
    assert "Orders, for the sales team." in yml["before"] and "Orders, edited by marketing." in yml["after"]
    created = via_proxy.get(f"/api/v1/proposals/{found[1]['id']}", headers=VERA).json()
    assert {f["status"] for f in created["files"]} == {"added"} and len(created["files"]) == 2
    assert via_proxy.get("/api/v1/proposals/?state=failed&author=sam@example.com", headers=VERA).json() == []
    bad = via_proxy.get("/api/v1/proposals/?state=merged", headers=VERA)
    assert bad.status_code == 422 and "state" in bad.text
    missing = via_proxy.get("/api/v1/proposals/999999", headers=VERA)
    assert missing.status_code == 404 and "no proposal 999999" in missing.json()["detail"]
