"""The sign-in tier: a real Keycloak on loopback with the realm of tests/sso/realm.json (two teams,
a viewer, a creator in each team, an admin, the portal's client with a groups claim), started by
`make test-sso` (deploy/keycloak.sh). These tests never start it themselves and never skip: if it
is not up they FAIL, saying how to start it. `make test` does not collect them."""

from __future__ import annotations

import httpx
import pytest
from sso_stack import HOW_TO_START, ISSUER


@pytest.fixture(scope="session", autouse=True)
def keycloak() -> str:
    try:
        answer = httpx.get(f"{ISSUER}/.well-known/openid-configuration", timeout=5)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"Keycloak does not answer at {ISSUER} ({exc}). {HOW_TO_START}", pytrace=False)
    return ISSUER
