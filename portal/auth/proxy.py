"""Trusted-proxy sign-in: a sign-in proxy in front of the portal (oauth2-proxy or similar) has
signed the user in and says who they are in request headers.

Those headers are worth what the address they come from is worth, so they are honoured only
from the proxy's own addresses (PORTAL_AUTH_PROXY_ADDRESSES), checked against the TCP peer and
nothing a client can write; from anyone else they are ignored, and a call carrying them gets no
local access either (portal/auth/access.py counts them as signs of a proxy). The UI and the API
read the same headers through `proxy_identity`.

This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from portal.auth.identity import PARTY_RE, Principal
from portal.auth.roles import signed_in_principal
from portal.errors import Unauthenticated
from portal.settings import Settings


class ProxySignInFailed(Unauthenticated):
    """The proxy's headers do not name a user the portal can accept; the message says why."""


def from_proxy(settings: Settings, client_host: str | None) -> bool:
    """Whether the TCP peer `client_host` is one of the configured sign-in proxy addresses."""
    if not client_host or not settings.auth_proxy_addresses:
        return False
    try:
        address = ipaddress.ip_address(client_host.strip("[]"))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in settings.auth_proxy_addresses)


def proxy_headers(settings: Settings) -> frozenset[str]:
    """The (lower-case) names of the headers the sign-in proxy sets."""
    return frozenset({settings.auth_proxy_user_header.lower(), settings.auth_proxy_groups_header.lower()})


def proxy_identity(
    settings: Settings, *, client_host: str | None, headers: Iterable[tuple[str, str]]
) -> Principal | None:
    """The user the sign-in proxy vouches for, with their groups and role; None when the call did not come from
    the proxy (or the portal is not in proxy mode). ProxySignInFailed when it came from the proxy
    without a usable user; roles.NoRole when the user's groups give no role."""
    if settings.auth != "proxy" or not from_proxy(settings, client_host):
        return None
    pairs = [(name.lower(), value) for name, value in headers]
    users = [value.strip() for name, value in pairs if name == settings.auth_proxy_user_header.lower()]
    if len(users) != 1 or not users[0]:
        header = f"`{settings.auth_proxy_user_header}` header"
        sent = (
            f"{len(users)} {header}s" if len(users) > 1 else f"an empty {header}" if users else f"no {header}"
        )
        raise ProxySignInFailed(
            f"The sign-in proxy sent {sent}; it must "
            "send exactly one, naming the signed-in user. Check the proxy's configuration (oauth2-proxy: "
            "--set-xauthrequest) or PORTAL_AUTH_PROXY_USER_HEADER."
        )
    user = users[0]
    if not PARTY_RE.match(user):
        raise ProxySignInFailed(
            f"The sign-in proxy named the user {user[:100]!r}, which is not a name the portal accepts "
            "(letters, digits and . _ @ -, at most 100)."
        )
    listed = [value for name, value in pairs if name == settings.auth_proxy_groups_header.lower()]
    groups = [group for value in listed for group in value.split(",") if group.strip()]
    return signed_in_principal(settings, user, "proxy", groups)


__all__ = ["ProxySignInFailed", "from_proxy", "proxy_headers", "proxy_identity"]
