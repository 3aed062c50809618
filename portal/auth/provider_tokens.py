"""The identity provider's own access tokens, which the API accepts beside the portal's tokens.

A JSON Web Token is accepted when all of this holds, and refused with what failed otherwise:

- it is signed by one of the issuer's keys (its JWKS, found through its discovery document at
  PORTAL_OIDC_ISSUER), with an asymmetric algorithm: a token "signed" with `none`, or with an
  HMAC keyed by the public key, is refused before any key is looked at;
- it names the issuer (`iss`) and the portal's audience (`aud`: PORTAL_OIDC_AUDIENCE, else the
  client id), and has not expired (`exp`, with CLOCK_LEEWAY_S for clocks that disagree);
- its claims name a user with a role (portal/auth/oidc.py: the same rules as the UI's sign-in).

Keys are cached. A token signed by a key id the cache does not hold makes one new fetch (the
provider has rotated its keys), at most every REFETCH_S, so a flood of invented key ids cannot
make the portal hammer the provider.

This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from portal.auth.identity import Principal
from portal.auth.oidc import identity_from_claims
from portal.errors import Unauthenticated, Unavailable
from portal.settings import Settings

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
CLOCK_LEEWAY_S = 30
REFETCH_S = 60.0
MAX_TOKEN_CHARS = 16_384


class TokenRefused(Unauthenticated):
    """The access token is not one the portal accepts; the message says what failed."""


class ProviderUnreachable(Unavailable):
    """The identity provider's discovery document or keys could not be read."""


def looks_like_jwt(secret: str) -> bool:
    """A JWT is three base64url parts; the portal's own tokens (asg_...) have no dots."""
    return secret.count(".") == 2


class ProviderKeys:
    """The issuer's signing keys, fetched on first use and again when a token names a new key."""

    def __init__(self, issuer: str, *, timeout_s: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.timeout_s = timeout_s
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _fetch(self) -> KeySet:
        try:
            discovery = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout_s)
            discovery.raise_for_status()
            document = discovery.json()
            if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                raise ProviderUnreachable(
                    f"The discovery document at {self.issuer} names the issuer {document.get('issuer')!r}; "
                    "set PORTAL_OIDC_ISSUER to exactly the issuer the provider names."
                )
            published = httpx.get(str(document["jwks_uri"]), timeout=self.timeout_s)
            published.raise_for_status()
            return KeySet.import_key_set(published.json())
        except (httpx.HTTPError, ValueError, KeyError, JoseError) as exc:
            raise ProviderUnreachable(
                f"The identity provider's signing keys could not be read from {self.issuer} ({exc}); "
                "provider tokens cannot be checked until it answers. Portal tokens still work."
            ) from exc

    def key(self, key_id: str | None) -> Any:
        """The key a token's header names; TokenRefused when the issuer publishes no such key."""
        with self._lock:
            if self._keys is None or (
                _find(self._keys, key_id) is None and time.monotonic() - self._fetched_at >= REFETCH_S
            ):
                self._keys = self._fetch()
                self._fetched_at = time.monotonic()
            found = _find(self._keys, key_id)
        if found is None:
            raise TokenRefused(
                f"The token is signed by a key ({key_id or 'no key id'}) that {self.issuer} does not publish."
            )
        return found


def _find(keys: KeySet, key_id: str | None) -> Any:
    for key in keys.keys:
        if key_id is None or key.kid == key_id:
            return key
    return None


def verify(settings: Settings, keys: ProviderKeys, token: str) -> Principal:
    """The user an access token of the identity provider names; TokenRefused (saying what failed)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused(f"The token is longer than {MAX_TOKEN_CHARS:,} characters.")
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise TokenRefused(f"The bearer token is neither a portal token nor a readable JWT ({exc}).") from exc
    if header.get("alg") not in ALGORITHMS:
        raise TokenRefused(
            f"The token is signed with {header.get('alg')!r}; only {', '.join(ALGORITHMS)} are accepted."
        )
    try:
        decoded = jwt.decode(token, keys.key(header.get("kid")), algorithms=list(ALGORITHMS))
    except BadSignatureError as exc:
        raise TokenRefused(
            "The token's signature does not verify: it was altered or signed by another key."
        ) from exc
    except JoseError as exc:
        raise TokenRefused(f"The token could not be read ({exc}).") from exc
    audience = settings.oidc_audience or settings.oidc_client_id
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY_S,
        iss={"essential": True, "value": keys.issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except ExpiredTokenError as exc:
        raise TokenRefused("The token has expired; get a new one from the identity provider.") from exc
    except MissingClaimError as exc:
        if "aud" in str(exc):
            raise TokenRefused(
                f"The token names no audience, so it is not meant for this portal; ask the provider for a "
                f"token for {audience}."
            ) from exc
        raise TokenRefused(f"The token lacks a claim the portal needs: {exc}.") from exc
    except InvalidClaimError as exc:
        which = str(exc)
        if "aud" in which:
            raise TokenRefused(
                f"The token is not meant for this portal: its audience is {decoded.claims.get('aud')!r}, "
                f"not {audience!r}. Ask the provider for a token for {audience}."
            ) from exc
        if "iss" in which:
            raise TokenRefused(
                f"The token was issued by {decoded.claims.get('iss')!r}, not by {keys.issuer}."
            ) from exc
        raise TokenRefused(f"The token's claims do not hold: {exc}.") from exc
    return identity_from_claims(settings, decoded.claims)


__all__ = ["ALGORITHMS", "ProviderKeys", "ProviderUnreachable", "TokenRefused", "looks_like_jwt", "verify"]
