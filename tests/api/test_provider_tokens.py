"""The API accepts the identity provider's access tokens: real RSA keys, a real HTTP server
publishing the issuer's discovery document and keys, real signatures. Only a token signed by a
published key, for this issuer and audience, not expired, is accepted; a rotated key is fetched.
(The sign-in tier, `make test-sso`, does the same with Keycloak's own tokens.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from portal.api import create_app
from portal.auth import provider_tokens
from portal.settings import Settings

BASE = "/api/v1/data-products"
CLIENT = "asgard-portal"


@dataclass
class Issuer:
    """An identity provider's public face: discovery document and key set, over real HTTP."""

    url: str = ""
    keys: list[RSAKey] = field(default_factory=list)
    fetches: int = 0

    def token(self, key: RSAKey | None = None, **claims: Any) -> str:
        signer = key or self.keys[-1]
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": [CLIENT, "account"],
            "exp": now + 300,
            "iat": now,
            "email": "sam@example.com",
            "groups": ["team-sales", "portal-creators"],
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, body, signer)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    published = Issuer(keys=[RSAKey.generate_key(2048, parameters={"kid": "key-1"})])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.endswith("/.well-known/openid-configuration"):
                body: dict[str, Any] = {"issuer": published.url, "jwks_uri": f"{published.url}/certs"}
            elif self.path.endswith("/certs"):
                published.fetches += 1
                body = {"keys": [key.as_dict(private=False) for key in published.keys]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    published.url = f"http://127.0.0.1:{server.server_address[1]}/realms/asgard"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield published
    server.shutdown()


@pytest.fixture(scope="module")
def client(api_settings: Settings, issuer: Issuer) -> Iterator[TestClient]:
    settings = replace(
        api_settings,
        oidc_issuer=issuer.url,
        oidc_client_id=CLIENT,
        role_map=(("portal-creators", "creator"), ("team-*", "viewer")),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def call(client: TestClient, token: str) -> Any:
    return client.get(f"{BASE}/", headers={"Authorization": f"Bearer {token}"})


def test_only_a_sound_token_is_accepted(client: TestClient, issuer: Issuer) -> None:
    assert call(client, issuer.token()).status_code == 200
    other_key = RSAKey.generate_key(2048, parameters={"kid": "key-1"})  # same id, not the issuer's
    valid = issuer.token()
    head, payload, signature = valid.split(".")
    forged_payload = jwt.encode({"alg": "RS256"}, {"email": "ada@example.com"}, other_key).split(".")[1]
    public = issuer.keys[-1].as_dict(private=False)
    refused = {
        "expired": issuer.token(exp=int(time.time()) - 120),
        "wrong audience": issuer.token(aud="other-app"),
        "another issuer": issuer.token(iss="https://evil.example.com/realms/asgard"),
        "signed by another key": issuer.token(key=other_key),
        "tampered": f"{head}.{forged_payload}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "HMAC with the public key": jwt.encode(
            {"alg": "HS256", "kid": "key-1"},
            {"iss": issuer.url, "aud": CLIENT, "exp": int(time.time()) + 300, "email": "x@example.com"},
            OctKey.import_key(json.dumps(public).encode()),
        ),
        "unknown key id": issuer.token(key=RSAKey.generate_key(2048, parameters={"kid": "nobody"})),
        "no groups with a role": issuer.token(groups=["contractors"]),
    }
    for what, token in refused.items():
        answer = call(client, token)
        assert answer.status_code in (401, 403), (what, answer.status_code, answer.text)
        assert answer.json()["detail"], what
    assert "expired" in call(client, refused["expired"]).json()["detail"]
    assert "audience" in call(client, refused["wrong audience"]).json()["detail"]
    assert "signature" in call(client, refused["tampered"]).json()["detail"]
    assert "'none'" in call(client, refused["alg none"]).json()["detail"]
    assert "'HS256'" in call(client, refused["HMAC with the public key"]).json()["detail"]
    assert "evil.example.com" in call(client, refused["another issuer"]).json()["detail"]
    assert "(nobody)" in call(client, refused["unknown key id"]).json()["detail"]
    assert call(client, refused["no groups with a role"]).status_code == 403


def test_a_rotated_key_is_fetched(
    client: TestClient, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert call(client, issuer.token()).status_code == 200
    monkeypatch.setattr(provider_tokens, "REFETCH_S", 0.0)  # no need to wait out the rate limit here
    issuer.keys.append(RSAKey.generate_key(2048, parameters={"kid": "key-2"}))
    before = issuer.fetches
    assert call(client, issuer.token()).status_code == 200  # signed by the new key
    assert issuer.fetches == before + 1
    assert call(client, issuer.token()).status_code == 200  # and now cached
    assert issuer.fetches == before + 1


def test_provider_users_follow_team_rules(client: TestClient, issuer: Issuer) -> None:
    viewer = issuer.token(email="vera@example.com", groups=["team-readers"])
    created = client.post(
        f"{BASE}/",
        headers={"Authorization": f"Bearer {viewer}"},
        json={
            "name": "Vera Orders",
            "description": "x",
            "data_product_type": "CUSTOM",
            "owner": "team-readers",
            "source_query": "select order_id from silver.orders",
            "primary_key": ["order_id"],
        },
    )
    assert created.status_code == 403 and "viewer role" in created.json()["detail"], created.text


def _b64(header: dict[str, str]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
