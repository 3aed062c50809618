"""Helpers of the sign-in tier: where Keycloak listens, the realm's users and clients, tokens."""

from __future__ import annotations

import os
from typing import Any

import httpx

PORT = int(os.environ.get("PORTAL_KEYCLOAK_PORT", "18080"))
ISSUER = f"http://127.0.0.1:{PORT}/realms/asgard"
CLIENT, CLIENT_SECRET = "asgard-portal", "asgard-portal-secret"
OTHER_CLIENT, OTHER_SECRET = "other-app", "other-app-secret"
PASSWORDS = {"vera": "vera-pass", "sam": "sam-pass", "maria": "maria-pass", "ada": "ada-pass"}
ROLE_MAP = (("analytics-admins", "admin"), ("portal-creators", "creator"), ("*", "viewer"))
HOW_TO_START = "Run the tier with `make test-sso` (it starts Keycloak and stops it afterwards), or `deploy/keycloak.sh up`."


def token(user: str, *, client: str = CLIENT, secret: str = CLIENT_SECRET) -> str:
    """An access token Keycloak issues to `user` (the password grant, as a script would get one)."""
    answer = httpx.post(
        f"{ISSUER}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": client,
            "client_secret": secret,
            "username": user,
            "password": PASSWORDS[user],
            "scope": "openid",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return str(body["access_token"])
