"""The API with Keycloak's own access tokens: only a valid one for the portal is accepted; an
expired one, one for another client, one re-signed by another key and a tampered one are refused,
each saying why. Teams from Keycloak's groups own products."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws, jwt
from joserfc.jwk import RSAKey
from sso_stack import CLIENT, ISSUER, OTHER_CLIENT, OTHER_SECRET, ROLE_MAP, token

from portal.api import create_app
from portal.auth.provider_tokens import CLOCK_LEEWAY_S
from portal.settings import Settings
from tests.conftest import copy_demo

pytestmark = pytest.mark.sso
BASE = "/api/v1/data-products"


@pytest.fixture(scope="module")
def client(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = replace(
        Settings.from_env(copy_demo(demo_env, tmp_path_factory.mktemp("sso-api") / "portal")),
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT,
        role_map=ROLE_MAP,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def _part(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_only_a_valid_token_for_the_portal_is_accepted(client: TestClient) -> None:
    sam = token("sam")
    assert client.get(f"{BASE}/", headers=bearer(sam)).status_code == 200

    header = jws.extract_compact(sam.encode()).headers()
    claims = json.loads(base64.urlsafe_b64decode(sam.split(".")[1] + "=="))
    impostor = RSAKey.generate_key(2048, parameters={"kid": header["kid"]})  # Keycloak's key id, not its key
    refused = {
        "for another client": (token("sam", client=OTHER_CLIENT, secret=OTHER_SECRET), "audience"),
        "signed by another key": (
            jwt.encode({"alg": header["alg"], "kid": header["kid"]}, claims, impostor),
            "signature",
        ),
        "tampered": (
            ".".join(
                [sam.split(".")[0], _part({**claims, "groups": ["analytics-admins"]}), sam.split(".")[2]]
            ),
            "signature",
        ),
    }
    for what, (value, reason) in refused.items():
        answer = client.get(f"{BASE}/", headers=bearer(value))
        assert answer.status_code == 401, (what, answer.text)
        assert reason in answer.json()["detail"], (what, answer.text)


def test_an_expired_token_is_refused(client: TestClient) -> None:
    short = token("sam", client="short-lived", secret="short-lived-secret")  # lives 1 s in Keycloak
    expires = json.loads(base64.urlsafe_b64decode(short.split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, expires + CLOCK_LEEWAY_S + 1 - time.time()))
    answer = client.get(f"{BASE}/", headers=bearer(short))
    assert answer.status_code == 401 and "expired" in answer.json()["detail"], answer.text


def test_keycloak_teams_own_products(client: TestClient, tmp_path: Path) -> None:
    body = {
        "name": "Sales Pipeline",
        "description": "Orders of the sales team's customers.",
        "data_product_type": "CUSTOM",
        "owner": "team-sales",
        "source_query": "select order_id, customer_id from silver.orders",
        "primary_key": ["order_id"],
    }
    created = client.post(f"{BASE}/?wait=true", json=body, headers=bearer(token("sam")))
    assert created.status_code == 201, created.text
    change = {"description": "Edited by marketing."}
    other_team = client.patch(f"{BASE}/dp_sales_pipeline", json=change, headers=bearer(token("maria")))
    assert other_team.status_code == 403 and "only products of their teams" in other_team.json()["detail"]
    viewer = client.post(f"{BASE}/", json={**body, "name": "Vera Pipeline"}, headers=bearer(token("vera")))
    assert viewer.status_code == 403 and "viewer role" in viewer.json()["detail"]
    admin = client.patch(f"{BASE}/dp_sales_pipeline?wait=true", json=change, headers=bearer(token("ada")))
    assert admin.status_code == 200, admin.text
