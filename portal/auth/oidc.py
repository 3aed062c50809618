"""OpenID Connect: who a signed-in user is, from the claims of their token.

The UI signs people in with Streamlit's own `st.login` (Authlib underneath), configured from
the PORTAL_OIDC_* settings (`streamlit_auth_secrets` writes Streamlit's [auth] section from
them); its `st.user` holds the ID token's claims. `identity_from_claims` turns claims into the
portal's identity, with the same rules wherever the claims come from: the user from
PORTAL_OIDC_USER_CLAIM, their groups (teams) from PORTAL_OIDC_GROUPS_CLAIM, their role from the
groups through PORTAL_ROLE_MAP.

This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

from portal.auth.identity import PARTY_RE, Principal
from portal.auth.roles import signed_in_principal
from portal.errors import Unauthenticated
from portal.settings import ROOT, SettingError, Settings, env_of, secret

REQUIRED = ("oidc_issuer", "oidc_client_id", "oidc_redirect_uri")


class SignInFailed(Unauthenticated):
    """The identity provider's claims do not name a user the portal can accept."""


def identity_from_claims(settings: Settings, claims: Mapping[str, Any]) -> Principal:
    """The signed-in user the claims describe; SignInFailed or NoRole (with why) otherwise."""
    user = claims.get(settings.oidc_user_claim)
    if not isinstance(user, str) or not PARTY_RE.match(user):
        shown = "no value" if user is None else repr(str(user)[:100])
        raise SignInFailed(
            f"The identity provider's token has {shown} in its `{settings.oidc_user_claim}` claim, so the "
            "portal cannot tell who signed in. Set PORTAL_OIDC_USER_CLAIM to a claim naming the user "
            "(letters, digits and . _ @ -), e.g. email or preferred_username."
        )
    listed = claims.get(settings.oidc_groups_claim) or []
    if isinstance(listed, str):
        listed = [listed]
    return signed_in_principal(settings, user, "oidc", listed if isinstance(listed, list) else [])


def missing_settings(settings: Settings) -> list[str]:
    """The variables OIDC sign-in still needs, by name."""
    missing = [env_of(field) for field in REQUIRED if not getattr(settings, field)]
    if not settings.oidc_client_secret and not settings.oidc_client_secret_file:
        missing.append(f"{env_of('oidc_client_secret')} (or {env_of('oidc_client_secret_file')})")
    return missing


def client_secret(settings: Settings) -> str:
    try:
        found = secret(
            settings.oidc_client_secret, settings.oidc_client_secret_file, "oidc_client_secret_file"
        )
    except SettingError as exc:
        raise SignInFailed(str(exc)) from exc
    return found or ""


COOKIE_SECRET = ROOT / "var" / "secrets" / "oidc-cookie-secret"


def cookie_secret() -> str:
    """The secret Streamlit signs its identity cookie with: made once per installation, kept
    outside git with only its owner able to read it (UI replicas behind one address share var/)."""
    if not COOKIE_SECRET.exists():
        COOKIE_SECRET.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(COOKIE_SECRET, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return COOKIE_SECRET.read_text(encoding="utf-8").strip()


def streamlit_auth_secrets(settings: Settings) -> str:
    """Streamlit's secrets.toml [auth] section for the configured provider (TOML strings are JSON
    strings here: every value is quoted and escaped)."""
    values = {
        "redirect_uri": settings.oidc_redirect_uri,
        "cookie_secret": cookie_secret(),
        "client_id": settings.oidc_client_id,
        "client_secret": client_secret(settings),
        "server_metadata_url": settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
    }
    lines = ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    lines += ["", "[auth.client_kwargs]", 'scope = "openid profile email"', ""]
    return "\n".join(lines)


__all__ = [
    "SignInFailed",
    "cookie_secret",
    "identity_from_claims",
    "missing_settings",
    "streamlit_auth_secrets",
]
