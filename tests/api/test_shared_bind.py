"""A portal that listens on a non-loopback address answers nobody without an identity: not a
product, not /docs, its assets, /openapi.json, /health or /version, not even a 404. Every path
of the app's OpenAPI document is asked, so a route added later is covered without editing this."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.api import create_app
from portal.auth.access import create_token
from portal.settings import Settings
from tests.api.conftest import LOCAL, bearer

PROXY = ("10.0.0.5", 41000)
SAM = {"X-Auth-Request-Email": "sam@example.com", "X-Auth-Request-Groups": "team-sales"}
OPEN_BEFORE = ["/docs", "/docs/assets/swagger-ui.css", "/openapi.json", "/health", "/api/v1/version"]


@pytest.fixture(scope="module")
def shared(api_settings: Settings) -> FastAPI:
    """The API as `python -m portal api --host 0.0.0.0` builds it, behind a sign-in proxy."""
    settings = replace(
        api_settings, auth="proxy", auth_proxy_addresses=("10.0.0.5/32",), role_map=(("*", "viewer"),)
    )
    return create_app(settings, host="0.0.0.0")


@pytest.fixture(scope="module")
def clients(shared: FastAPI) -> Iterator[tuple[TestClient, TestClient]]:
    """(a caller on this very machine, the sign-in proxy)."""
    with (
        TestClient(
            shared, client=LOCAL, base_url="http://127.0.0.1:8000", raise_server_exceptions=False
        ) as here,
        TestClient(
            shared, client=PROXY, base_url="https://portal.example.com", raise_server_exceptions=False
        ) as proxy,
    ):
        yield here, proxy


def every_call(app: FastAPI) -> list[tuple[str, str]]:
    calls = [("GET", path) for path in OPEN_BEFORE] + [("GET", "/no/such/path")]
    for template, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[a-z_]+\}", "dp_customer_360", template.replace("{run_id}", "1"))
        calls += [(method.upper(), path) for method in operations]
    return calls


def test_no_call_answers_without_an_identity(clients: tuple[TestClient, TestClient], shared: FastAPI) -> None:
    here, proxy = clients
    calls = every_call(shared)
    assert len(calls) > 20 and ("POST", "/api/v1/data-products/") in calls
    # the loopback peer is no one either (the bind is shared); the proxy is told what it failed to send
    for client, says in ((here, "token"), (proxy, "X-Auth-Request-Email")):
        for method, path in calls:
            body = {"json": {}} if method in {"POST", "PATCH", "DELETE"} else {}
            answer = client.request(method, path, **body)
            assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
            assert answer.headers["content-type"] == "application/problem+json", (method, path)
            assert answer.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert says in answer.json()["detail"], answer.text


def test_a_token_or_the_proxy_opens_the_same_paths(
    clients: tuple[TestClient, TestClient], shared: FastAPI
) -> None:
    here, proxy = clients
    viewer = create_token(shared.state.service.sessions, "probe", "viewer", created_by="tests").secret
    for path in OPEN_BEFORE:
        assert here.get(path, headers=bearer(viewer)).status_code == 200, path
        assert proxy.get(path, headers=SAM).status_code == 200, path
    # the proxy's headers count from the proxy only: the same headers from this machine are no one
    assert here.get("/health", headers=SAM).status_code == 401
    health = proxy.get("/health", headers=SAM).json()
    assert health["status"] == "ok" and all(c.get("detail") is None for c in health["checks"])
    assert proxy.get("/no/such/path", headers=SAM).status_code == 404
