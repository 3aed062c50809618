"""Hostile input against the API's no-token local access, its bodies, its URLs, /health and /docs.

Each test is a request an attacker can make from a web page or from the network, sent to the
real app (TestClient, or a real uvicorn for the access log):

- DNS rebinding: a page on `attacker.example` that resolves to 127.0.0.1 reaches the API with
  `Host: attacker.example:8000`; a no-token call only counts as the local user with a loopback Host;
- CSRF: a page on another site posts to the API from the user's browser (`Origin: https://...`,
  `Sec-Fetch-Site: cross-site`, a `text/plain` or form body): refused for no-token callers, and a
  non-JSON body is refused for everyone (415);
- proxies: a loopback address behind a reverse proxy on this machine says nothing about the
  sender, so any proxy header turns local access off;
- leaks: a token in the URL (`?access_token=`) is refused and never reaches the access log,
  anonymous /health names no paths, /docs loads nothing from another host.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog_db.models import DataProduct, Run
from portal.api import create_app
from portal.auth import access as auth
from portal.auth.access import AuthenticationFailed
from portal.settings import Settings
from tests.api.conftest import LOCAL, LOCAL_URL, bearer, serving

pytestmark = pytest.mark.slow

BASE = "/api/v1/data-products"
LOOPBACK_URL = "http://127.0.0.1:8000"  # what a browser or curl on this machine sends as Host
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "errors"}
ATTACKER = "https://attacker.example"
BODY = {
    "name": "Rebound Orders",
    "description": "Created by a page on another site, if the API lets it.",
    "data_product_type": "CUSTOM",
    "owner": "attackers",
    "source_query": "select order_id, status from silver.orders",
    "primary_key": ["order_id"],
}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == PROBLEM_KEYS and body["status"] == status and body["detail"]
    return body


def refused_locally(response: httpx.Response, *named: str) -> str:
    """A 401 whose detail names what gave the call away and says to send a token."""
    body = problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    detail: str = body["detail"]
    for word in named:
        assert word.lower() in detail.lower(), (word, detail)
    assert "Authorization: Bearer" in detail and "python -m portal token create" in detail, detail
    return detail


@pytest.fixture(scope="module")
def here(app: FastAPI) -> Iterator[TestClient]:
    """A caller on this machine that addresses the API as a browser or curl here does."""
    with TestClient(app, client=LOCAL, base_url=LOOPBACK_URL, raise_server_exceptions=False) as test_client:
        yield test_client


def runs_of(app: FastAPI) -> int:
    """How many runs the catalog knows: a refused call starts none."""
    with app.state.service.sessions() as session:
        return len(session.scalars(sa.select(Run.id)).all())


# --- DNS rebinding: the Host header --------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "LOCALHOST:8000", "127.0.0.1", "127.0.0.1:8000", "[::1]", "[::1]:8000"],
)
def test_a_loopback_host_gets_local_access(here: TestClient, host: str) -> None:
    response = here.get(f"{BASE}/", headers={"Host": host})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:8000",
        "attacker.example",
        "127.0.0.1.nip.io:8000",
        "localhost.attacker.example",
        "localhost:8000@attacker.example",
        "localhost:99999",
        "localhost:",
        "[::1",
        "::1",
        "0.0.0.0:8000",
        "testserver",
        "",
    ],
)
def test_a_foreign_host_gets_no_local_access(here: TestClient, host: str) -> None:
    refused_locally(here.get(f"{BASE}/", headers={"Host": host}), "Host")


def test_dns_rebinding_cannot_create_a_product(here: TestClient, app: FastAPI) -> None:
    response = here.post(f"{BASE}/", json=BODY, headers={"Host": "attacker.example:8000"})
    refused_locally(response, "Host", "attacker.example:8000")
    with app.state.service.sessions() as session:
        assert session.scalar(sa.select(DataProduct).where(DataProduct.name == "dp_rebound_orders")) is None


def test_token_holders_are_not_bound_to_a_host_or_an_origin(here: TestClient, tokens: dict[str, str]) -> None:
    headers = {**bearer(tokens["viewer"]), "Host": "portal.example.com", "Origin": ATTACKER}
    assert here.get(f"{BASE}/", headers=headers).status_code == 200


# --- CSRF: Origin, Sec-Fetch-Site and simple bodies ----------------------------------------


def test_a_page_on_another_site_cannot_start_a_refresh(here: TestClient, app: FastAPI) -> None:
    before = runs_of(app)
    detail = refused_locally(here.post(f"{BASE}/dp_customer_360/run", headers={"Origin": ATTACKER}), "Origin")
    assert ATTACKER in detail
    refused_locally(here.post(f"{BASE}/dp_customer_360/run", headers={"Origin": "null"}), "Origin")
    assert runs_of(app) == before


def test_a_simple_text_plain_post_is_415_for_everyone(
    here: TestClient, client: TestClient, tokens: dict[str, str], app: FastAPI
) -> None:
    before = runs_of(app)
    plain = {"Content-Type": "text/plain"}
    body = problem(here.post(f"{BASE}/dp_customer_360/run", content=b"{}", headers=plain), 415)
    assert "application/json" in body["detail"] and "text/plain" in body["detail"]
    admin = {**bearer(tokens["admin"]), **plain}
    problem(client.post(f"{BASE}/dp_customer_360/run", content=b"{}", headers=admin), 415)
    assert runs_of(app) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{BASE}/"),
        ("PATCH", f"{BASE}/dp_customer_360"),
        ("DELETE", f"{BASE}/dp_customer_360"),
        ("PUT", f"{BASE}/dp_customer_360"),
    ],
)
@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"name": "x"}'),
        ("application/x-www-form-urlencoded", b"name=x"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n',
        ),
        (None, b'{"name": "x"}'),
    ],
)
def test_state_changing_calls_take_json_bodies_only(
    client: TestClient,
    tokens: dict[str, str],
    method: str,
    path: str,
    content_type: str | None,
    content: bytes,
) -> None:
    headers = {**bearer(tokens["admin"]), **({"Content-Type": content_type} if content_type else {})}
    response = client.request(method, path, content=content, headers=headers)
    body = problem(response, 415)
    assert "Content-Type: application/json" in body["detail"]


def test_json_with_a_charset_and_body_less_calls_are_still_accepted(here: TestClient) -> None:
    # Refused for what is in them (422, 404), not for their shape: the JSON rule lets them pass.
    typed = {"Content-Type": "application/json; charset=utf-8"}
    problem(here.post(f"{BASE}/", content=b'{"name": "!!!"}', headers=typed), 422)
    problem(here.post(f"{BASE}/dp_no_such_product/run"), 404)
    problem(here.post(f"{BASE}/dp_no_such_product/run", headers={"Origin": "http://localhost:8501"}), 404)


def test_loopback_pages_may_call_without_a_token(here: TestClient) -> None:
    for origin in ("http://localhost:8000", "http://127.0.0.1:8501", "http://[::1]:8000"):
        assert here.get(f"{BASE}/", headers={"Origin": origin}).status_code == 200, origin
    for site in ("none", "same-origin", "same-site"):
        assert here.get(f"{BASE}/", headers={"Sec-Fetch-Site": site}).status_code == 200, site


def test_a_cross_site_request_without_an_origin_gets_no_local_access(here: TestClient) -> None:
    # A GET from an <img> or a link on another site carries no Origin, but says cross-site.
    refused_locally(here.get(f"{BASE}/", headers={"Sec-Fetch-Site": "cross-site"}), "Sec-Fetch-Site")


def test_the_openapi_document_names_these_refusals(local: TestClient) -> None:
    schema = local.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            statuses = {"400", "415"} if method in {"post", "patch", "put", "delete"} else {"400"}
            for status in statuses:  # 400: a token in the URL; 415: a body that is not JSON
                assert list(operation["responses"][status]["content"]) == ["application/problem+json"], path
    assert {} in schema["paths"]["/health"]["get"]["security"]  # a token is optional there


# --- proxies -------------------------------------------------------------------------------

PROXY_HEADERS = {
    "Forwarded": "for=203.0.113.9",
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Host": "portal.example.com",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Server": "proxy",
    "X-Real-IP": "203.0.113.9",
    "X-Client-IP": "203.0.113.9",
    "Client-IP": "203.0.113.9",
    "True-Client-IP": "203.0.113.9",
    "CF-Connecting-IP": "203.0.113.9",
    "Fastly-Client-IP": "203.0.113.9",
    "X-Cluster-Client-IP": "203.0.113.9",
    "X-Original-Forwarded-For": "203.0.113.9",
    "Via": "1.1 proxy.example.com",
    "X-Envoy-External-Address": "203.0.113.9",
    "X-Amzn-Trace-Id": "Root=1-0-0",
    "X-ProxyUser-Ip": "203.0.113.9",
}


@pytest.mark.parametrize("header", sorted(PROXY_HEADERS))
def test_any_sign_of_a_proxy_turns_local_access_off(here: TestClient, header: str) -> None:
    refused_locally(here.get(f"{BASE}/", headers={header: PROXY_HEADERS[header]}), "proxy", header)


def test_the_local_access_rule_itself() -> None:
    """The core rule, without a server: every refusal is AuthenticationFailed and names its reason."""
    settings = Settings.from_env({})
    ok = [("host", "127.0.0.1:8000")]
    local = auth.anonymous_principal(settings, bind_host="127.0.0.1", client_host="127.0.0.1", headers=ok)
    assert (local.user, local.kind) == (settings.local_user, "local")
    for headers, reason in (
        ([], "Host"),
        ([("host", "localhost"), ("host", "attacker.example")], "Host"),
        ([*ok, ("origin", ATTACKER)], "Origin"),
        ([*ok, ("origin", "http://localhost:8000"), ("origin", ATTACKER)], "Origin"),
        ([*ok, ("x-forwarded-host", "portal.example.com")], "x-forwarded-host"),
        ([*ok, ("VIA", "1.1 proxy")], "via"),
    ):
        with pytest.raises(AuthenticationFailed, match=f"(?i){reason}"):
            auth.anonymous_principal(
                settings, bind_host="127.0.0.1", client_host="127.0.0.1", headers=headers
            )


# --- a token in the URL --------------------------------------------------------------------


@pytest.mark.parametrize("parameter", ["access_token", "token", "api_key"])
def test_a_token_in_the_url_is_refused_without_echoing_it(
    client: TestClient, tokens: dict[str, str], parameter: str
) -> None:
    secret = tokens["viewer"]
    response = client.get(f"{BASE}/?{parameter}={secret}")
    body = problem(response, 400)
    assert "Authorization: Bearer" in body["detail"] and secret not in response.text
    # Even next to a good header: a token in a URL is a leak whatever else the call carries.
    problem(client.get(f"/health?{parameter}={secret}", headers=bearer(secret)), 400)


def test_a_token_in_the_url_never_reaches_the_access_log(app: FastAPI, tokens: dict[str, str]) -> None:
    secret = tokens["viewer"]
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    with serving(app) as base:
        level, keep = access.level, Keep()
        access.setLevel(logging.INFO)
        access.addHandler(keep)
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                http.get(f"{BASE}/?access_token={secret}")
                http.get(f"{BASE}/?limit=1&api%5Fkey={secret}")
                http.get(f"{BASE}/{secret}", headers=bearer(secret))  # pasted in the wrong place
        finally:
            access.removeHandler(keep)
            access.setLevel(level)
    assert len(lines) == 3, lines
    assert not [line for line in lines if secret in line or secret[4:20] in line], lines
    assert "access_token=" in lines[0]  # the line still says what was asked


# --- /health -------------------------------------------------------------------------------


def test_anonymous_health_says_ok_or_not_and_nothing_else(local: TestClient, api_settings: Settings) -> None:
    response = local.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert [(c["name"], c["ok"], c.get("detail")) for c in body["checks"]] == [
        ("catalog_db", True, None),
        ("artifacts", True, None),
        ("warehouse", True, None),
    ]
    assert str(api_settings.duckdb_path) not in response.text and "DuckDB" not in response.text


def test_a_degraded_health_names_no_path_to_anonymous_callers(
    app: FastAPI, api_settings: Settings, tokens: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "secret-place" / "warehouse.duckdb"
    broken = create_app(replace(api_settings, duckdb_path=missing))
    with TestClient(broken, client=LOCAL, base_url=LOCAL_URL, raise_server_exceptions=False) as test_client:
        anonymous = test_client.get("/health")
        assert anonymous.status_code == 503 and anonymous.json()["status"] == "degraded"
        assert "secret-place" not in anonymous.text and str(tmp_path) not in anonymous.text
        assert all(c.get("detail") is None for c in anonymous.json()["checks"])
        named = test_client.get("/health", headers=bearer(tokens["viewer"]))
        assert named.status_code == 503
        assert {c["name"]: c["ok"] for c in named.json()["checks"]}["warehouse"] is False
        assert "secret-place" in named.text  # token holders get the details


def test_token_holders_get_the_health_details(client: TestClient, tokens: dict[str, str]) -> None:
    for who in ("viewer", "admin"):
        checks = {
            c["name"]: c["detail"]
            for c in client.get("/health", headers=bearer(tokens[who])).json()["checks"]
        }
        assert "nodes in the manifest" in checks["artifacts"] and "DuckDB" in checks["warehouse"]
    problem(client.get("/health", headers=bearer(tokens["revoked"])), 401)


# --- /docs works offline -------------------------------------------------------------------


def test_the_docs_load_nothing_from_another_host(local: TestClient) -> None:
    client = local
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert len(links) >= 3, html  # the script, the stylesheet, the icon
    assert not re.search(r"https?://|//[a-z]", html, re.IGNORECASE), html
    urls = re.findall(r"""\burl\s*:\s*["']([^"']+)["']""", html)
    for link in [*links, *urls]:
        assert link.startswith("/") and not link.startswith("//"), link
        assert client.get(link).status_code == 200, link
    css = next(link for link in links if link.endswith(".css"))
    referenced = [u.strip("'\" ") for u in re.findall(r"url\(([^)]*)\)", client.get(css).text)]
    external = [u for u in referenced if not u.startswith("data:") and ("://" in u or u.startswith("//"))]
    assert external == []
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/redoc").status_code == 404  # ReDoc would load its script and fonts from CDNs
