"""Who may do what: API bearer tokens, roles, and the one `authorize` every face calls.

Roles, from least to most:

- **viewer**: list and read products, query their data, trace lineage, read runs and quality;
- **creator**: also create products, and edit, refresh, deprecate or discard *their own*: for a
  signed-in user the products their teams own, for a token's holder the ones they created or own
  (`owns`; `portal.creation.lifecycle.can_edit` asks the same);
- **reviewer**: what a creator may, and also review others' proposals (the review of products as
  code decides on them);
- **admin**: everything, including products written by hand in dbt.

Consumers (dbt exposures, `portal.creation.consumers`): anyone who may read a product may register
that they consume it (`register_consumer`, a reader's own statement, so no role above viewer is
needed); a registration may be removed by its registrant, by the product's owners (`owns`) or by an
admin (`consumer_removal_refusal`).

Tokens are random secrets shown once; the catalog database keeps only their SHA-256, so a
copy of the database cannot be replayed as credentials. A token's secret is 256 bits from
`secrets`, so one unsalted hash is enough: there is nothing to guess that a salt would protect.

Calls without a token are refused, except on the embedded default, where the local user of
the machine may call an API bound to a loopback address without one (`PORTAL_API_ANONYMOUS`).
That is refused in code for a non-loopback bind, for a caller that is not on the loopback
interface, and for requests that passed through a proxy, so a setting left on can never open
the API to the network; and for what a web page can make the user's browser send to it: a Host
that is not a loopback name (DNS rebinding: a site's own name resolved to 127.0.0.1) or a
request from another site's page (`Origin`, `Sec-Fetch-Site`: CSRF). A token is not sent by a
browser on its own, so token holders are bound by none of this.

This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from catalog_db.models import TOKEN_ROLES, ApiToken
from portal import audit
from portal.auth.identity import PARTY_RE, Identity, Principal
from portal.auth.proxy import proxy_headers
from portal.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from portal.settings import Settings

ROLES = TOKEN_ROLES  # viewer < creator < reviewer < admin
TOKEN_PREFIX = "asg_"
# How stale `last_used_at` may get: writing it on every request would serialise reads on SQLite.
LAST_USED_GRANULARITY = timedelta(minutes=5)
# Headers a reverse proxy, load balancer or CDN adds: a request carrying one came in somewhere
# else first, so its loopback address says nothing about who sent it. The one list; families that
# vendors extend (X-Forwarded-Host, -Proto, -Port, CF-*, X-Envoy-*, ...) go by their prefix.
PROXY_HEADERS = frozenset(
    {
        "forwarded",
        "forwarded-for",
        "via",
        "x-real-ip",
        "x-client-ip",
        "client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "x-proxyuser-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-originating-ip",
        "x-user-ip",
        "x-host",
        "proxy-client-ip",
        "wl-proxy-client-ip",
        "x-ms-forwarded-client-ip",
        "incap-client-ip",
        "x-sucuri-clientip",
        "x-bluecoat-via",
        "cdn-loop",
        "x-varnish",
        "front-end-https",
        "x-url-scheme",
    }
)
PROXY_HEADER_PREFIXES = (
    "x-forwarded",  # -for, -host, -proto, -port, -server, -prefix, -ssl, -client-ip, ...
    "x-original-",  # -forwarded-for, -host, -url (ingress-nginx, IIS)
    "cf-",  # Cloudflare
    "fastly-",
    "akamai-",
    "x-akamai-",
    "x-envoy-",  # Envoy, Istio
    "x-amzn-",  # AWS load balancers and API Gateway
    "x-azure-",  # Azure Front Door
    "x-arr-",  # IIS Application Request Routing
    "x-appengine-",
    "x-vercel-",
    "x-nf-",  # Netlify
    "x-auth-request-",  # oauth2-proxy's user headers (and PORTAL_AUTH_PROXY_*_HEADER, see below)
)
# The names a request for this machine may carry as its Host: an IP literal cannot be rebound.
LOOPBACK_NAMES = frozenset({"localhost"})
_AUTHORITY = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::(?P<port>[0-9]{1,5}))?"
)

READ_ACTIONS = frozenset({"read", "query"})
# What any reader may do: say that they read a product (a consumer, written as a dbt exposure).
READER_ACTIONS = frozenset({"register_consumer"})
OWN_ACTIONS = frozenset({"edit", "run", "deprecate", "discard", "grant"})
ACTIONS = READ_ACTIONS | READER_ACTIONS | OWN_ACTIONS | {"create", "review", "manage_tokens"}
# The least role each action needs (own-actions also need ownership, below admin).
NEEDS = {"create": "creator", "review": "reviewer", "manage_tokens": "admin"} | dict.fromkeys(
    OWN_ACTIONS, "creator"
)
_VERBS = {
    "read": "read data products",
    "query": "query data products",
    "create": "create data products",
    "edit": "edit",
    "run": "refresh",
    "deprecate": "deprecate",
    "discard": "discard",
    "grant": "decide on access requests to",
    "review": "review others' proposals",
    "manage_tokens": "manage API tokens",
    "register_consumer": "register a consumer",
}


class AuthenticationFailed(Unauthenticated):
    """No usable credentials (HTTP 401); the message says how to get a token."""


class PermissionDenied(Forbidden):
    """The identity's role does not allow the action (HTTP 403); the message says who may."""


class OwnedProduct(Protocol):
    """What ownership is decided on: a `catalog_db.models.DataProduct` row has these."""

    name: str
    created_by: str
    owner: str | None


def role_of(identity: Identity) -> str:
    """A Principal's role; the embedded default's local user (UI, CLI) is the admin of its own
    machine, as `portal.creation.lifecycle.can_edit` already treats it; any other identity only views."""
    if isinstance(identity, Principal):
        return identity.role
    return "admin" if identity.kind == "local" else "viewer"


def owns(identity: Identity, product: OwnedProduct) -> bool:
    """Whether `identity` may change `product` as its owner. Teams are owners: a signed-in user
    owns the products whose owner is one of their teams (groups), whoever created them. A token's
    holder (no groups) owns what they created or what names them as its owner."""
    if identity.signed_in:
        return product.owner is not None and product.owner in identity.groups
    return identity.user in {product.created_by, product.owner}


def may(identity: Identity, action: str, product: OwnedProduct | None = None) -> bool:
    """`authorize` as a yes/no, for a UI deciding which buttons to show."""
    return why_not(identity, action, product) is None


def why_not(identity: Identity, action: str, product: OwnedProduct | None = None) -> str | None:
    """`authorize`'s refusal in words, or None when it allows: what a UI shows beside a disabled
    button, so it says exactly what the core would."""
    try:
        authorize(identity, action, product)
    except PermissionDenied as refused:
        return str(refused)
    return None


def authorize(identity: Identity, action: str, product: OwnedProduct | None = None) -> None:
    """Raise PermissionDenied unless `identity` may do `action` (on `product`, for own-actions).

    The only place the rules live: the API calls it before every service call, and the UI
    can call it (or `may`) with its own identity.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {', '.join(sorted(ACTIONS))}.")
    role = role_of(identity)
    if role == "admin" or action in READ_ACTIONS or action in READER_ACTIONS:
        return
    verb = _VERBS[action]
    needed = NEEDS[action]
    if ROLES.index(role) < ROLES.index(needed):
        target = f" {product.name}" if product is not None and action in OWN_ACTIONS else ""
        if identity.signed_in:
            how = "Roles come from your groups (PORTAL_ROLE_MAP); ask an admin to add you to a group that has it."
        else:
            how = f"Ask an admin for a token: python -m portal token create --user {identity.user} --role {needed}"
        roles = needed if needed == "admin" else f"{needed} or admin"
        raise PermissionDenied(
            f"{identity.user} has the {role} role; to {verb}{target} you need the {roles} role. {how}"
        )
    if action not in OWN_ACTIONS:
        return
    # An own-action below admin: the product must be theirs.
    if product is None:
        raise PermissionDenied(
            f"Only an admin may {verb} a model that is not a registered data product; {identity.user} is a {role}."
        )
    if owns(identity, product):
        return
    if identity.signed_in:
        teams = ", ".join(identity.groups) or "no team"
        raise PermissionDenied(
            f"{identity.user} may {verb} only products of their teams ({teams}); {product.name} is "
            f"owned by {product.owner or 'no team'}. Ask a member of that team or an admin."
        )
    raise PermissionDenied(
        f"{identity.user} may {verb} only their own data products; {product.name} was created by "
        f"{product.created_by} and is owned by {product.owner or 'nobody'}. Ask one of them or an admin."
    )


def consumer_removal_refusal(
    identity: Identity, product: OwnedProduct | None, registered_by: str | None
) -> str | None:
    """Why `identity` may not remove a consumer of `product` that `registered_by` registered, or None
    when they may: its registrant, the product's owners (`owns`: their team, or for a token's holder
    the product they created or own) and admins may. `product` None: a model that is not a registered
    data product, whose consumers only their registrant or an admin may remove."""
    if role_of(identity) == "admin" or (registered_by is not None and identity.user == registered_by):
        return None
    if product is not None and owns(identity, product):
        return None
    owner = f"{product.name}'s owner ({product.owner or 'no team'})" if product is not None else "nobody"
    return (
        f"{identity.user} may not remove this consumer: only whoever registered it "
        f"({registered_by or 'unknown'}), {owner} or an admin may. Ask one of them."
    )


def authorize_consumer_removal(
    identity: Identity, product: OwnedProduct | None, registered_by: str | None
) -> None:
    """Raise PermissionDenied unless `identity` may remove the consumer (`consumer_removal_refusal`)."""
    refusal = consumer_removal_refusal(identity, product, registered_by)
    if refusal is not None:
        raise PermissionDenied(refusal)


def review_refusal(
    identity: Identity, *, author: str, upstream_owners: Sequence[str], reviewers: Sequence[str]
) -> str | None:
    """Why `identity` may not approve or reject a proposal by `author` that reads products owned
    by `upstream_owners`, or None when they may. `reviewers` is PORTAL_REVIEWERS: admin, reviewer
    (roles; an admin is a reviewer too), upstream-owners (members of an owning team, above viewer), group:NAME."""
    who = _reviewers_in_words(reviewers, upstream_owners)
    if identity.user == author:
        return (
            f"{identity.user} wrote this proposal, and authors cannot approve or reject their own; "
            f"ask one of the reviewers: {who}."
        )
    role, groups = role_of(identity), set(identity.groups)
    for kind in reviewers:
        if kind == "admin" and role == "admin":
            return None
        if kind == "reviewer" and ROLES.index(role) >= ROLES.index("reviewer"):  # an admin too
            return None
        owner = bool(groups & set(upstream_owners)) or identity.user in upstream_owners
        if kind == "upstream-owners" and role != "viewer" and owner:
            return None
        if kind.startswith("group:") and kind.removeprefix("group:") in groups:
            return None
    return f"{identity.user} ({role}) may not decide on this proposal; the reviewers are {who}."


def _reviewers_in_words(reviewers: Sequence[str], upstream_owners: Sequence[str]) -> str:
    words = []
    for kind in reviewers:
        if kind == "admin":
            words.append("admins")
        elif kind == "reviewer":
            words.append("users with the reviewer role")
        elif kind == "upstream-owners":
            teams = ", ".join(upstream_owners) or "none: it reads no owned product"
            words.append(f"the teams owning what it reads ({teams})")
        else:
            words.append(f"members of {kind.removeprefix('group:')}")
    return ", ".join(words) + " (PORTAL_REVIEWERS)"


# --- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret, which is never stored."""

    id: int
    user: str
    role: str
    note: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedToken:
    info: TokenInfo
    secret: str  # shown once: only its hash is kept


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=row.user,
        role=row.role,
        note=row.note,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _audit(session: Session, actor: str, action: str, token: ApiToken) -> None:
    audit.add_event(
        session, actor, action, "api_token", str(token.id), {"user": token.user, "role": token.role}
    )


def create_token(
    sessions: sessionmaker[Session], user: str, role: str, *, created_by: str, note: str = ""
) -> IssuedToken:
    """A new token for `user` with `role`; its secret is in the result and nowhere else."""
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    if not isinstance(user, str) or not PARTY_RE.match(user):
        raise InvalidInput(
            f"User {user!r} is not a valid user name: use letters, digits, `.`, `_`, `-` and `@` "
            "(a login or an e-mail address)."
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with sessions.begin() as session:
        row = ApiToken(
            user=user,
            role=role,
            secret_sha256=_digest(secret),
            note=note,
            created_at=datetime.now(UTC),
            created_by=created_by,
        )
        session.add(row)
        session.flush()
        _audit(session, created_by, "token.created", row)
        return IssuedToken(_info(row), secret)


def revoke_token(sessions: sessionmaker[Session], token_id: int, *, revoked_by: str) -> TokenInfo:
    """Revoke a token at once (its next request is refused). Revoking twice is harmless."""
    with sessions.begin() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"There is no token {token_id}. List them with: python -m portal token list")
        if row.revoked_at is None:
            row.revoked_at, row.revoked_by = datetime.now(UTC), revoked_by
            _audit(session, revoked_by, "token.revoked", row)
        return _info(row)


def list_tokens(sessions: sessionmaker[Session], *, include_revoked: bool = False) -> list[TokenInfo]:
    query = sa.select(ApiToken).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    with sessions() as session:
        return [_info(row) for row in session.scalars(query)]


def authenticate(sessions: sessionmaker[Session], secret: str) -> Principal:
    """The Principal holding the token `secret`; AuthenticationFailed if it is unknown or revoked."""
    if not secret.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed(
            f"That is not an Asgard API token (they start with {TOKEN_PREFIX}). "
            "Create one with: python -m portal token create --user NAME --role viewer"
        )
    with sessions() as session:
        row = session.scalar(sa.select(ApiToken).where(ApiToken.secret_sha256 == _digest(secret)))
    if row is None:
        raise AuthenticationFailed(
            "The token is not known (mistyped, or created for another catalog database). "
            "Create one with: python -m portal token create --user NAME --role viewer"
        )
    if row.revoked_at is not None:
        raise AuthenticationFailed(
            f"Token {row.id} of {row.user} was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC; ask an admin "
            "for a new one."
        )
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        with sessions.begin() as session:
            session.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return Principal(user=row.user, kind="token", role=row.role, token_id=row.id)


# --- anonymous local access ----------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def anonymous_role(settings: Settings, bind_host: str | None = None) -> str | None:
    """The role of calls without a token, or None when they are refused.

    `auto` means on (creator) in local mode, the embedded DuckDB default, where the one local
    user already creates products in the UI without signing in; off anywhere else. Whatever the
    setting, a known non-loopback bind turns it off.
    """
    value = settings.api_anonymous
    if value == "auto":
        value = "creator" if settings.embedded else "off"
    if value == "off" or (bind_host is not None and not is_loopback(bind_host)):
        return None
    return value


def anonymous_principal(
    settings: Settings,
    *,
    bind_host: str | None,
    client_host: str | None,
    headers: Iterable[tuple[str, str]],
) -> Principal:
    """The local user for a call without a token, if this call may be one; else AuthenticationFailed.

    `headers` are the request's (name, value) pairs, every one of them (a header may repeat).
    Each refusal names what gave the call away and says how to call instead: with a token.
    """
    how = (
        "Send `Authorization: Bearer <token>`; create a token with: "
        "python -m portal token create --user NAME --role viewer"
    )
    role = anonymous_role(settings, bind_host)
    if role is None:
        raise AuthenticationFailed(f"This API needs a token. {how}")
    if not is_loopback(client_host):
        raise AuthenticationFailed(
            f"Calls without a token are accepted only directly from this machine (127.0.0.1), not "
            f"from {client_host or 'an unknown address'}. {how}"
        )
    pairs = [(name.lower(), value) for name, value in headers]
    signed = proxy_headers(settings)  # a sign-in proxy's headers, under whatever names it uses
    proxied = sorted({name for name, _ in pairs if is_proxy_header(name) or name in signed})
    if proxied:
        raise AuthenticationFailed(
            f"This call came through a proxy (it has the header {', '.join(f'`{n}`' for n in proxied)}), "
            "so its address on this machine says nothing about who sent it; calls without a token are "
            f"accepted only directly from this machine. {how}"
        )
    hosts = [value for name, value in pairs if name == "host"]
    if len(hosts) != 1 or not is_loopback_authority(hosts[0]):
        found = "no Host header" if not hosts else ", ".join(f"`Host: {_shown(h)}`" for h in hosts)
        raise AuthenticationFailed(
            f"Calls without a token must address this machine as localhost, 127.0.0.1 or [::1] "
            f"(any port); this one has {found}. A web page of another site can reach a local API "
            f"under a name of its own (DNS rebinding), so no other name gets local access. {how}"
        )
    foreign = [value for name, value in pairs if name == "origin" and not is_loopback_origin(value)]
    if foreign:
        raise AuthenticationFailed(
            f"Calls without a token are not accepted from web pages of other sites; this one was sent "
            f"by a page at `Origin: {_shown(foreign[0])}`. Only a page on localhost, 127.0.0.1 or "
            f"[::1] may call this API without a token. {how}"
        )
    if any(name == "sec-fetch-site" and value.strip().lower() == "cross-site" for name, value in pairs):
        raise AuthenticationFailed(
            "Calls without a token are not accepted from web pages of other sites; the browser says "
            f"this one was sent by one (`Sec-Fetch-Site: cross-site`). {how}"
        )
    return Principal(user=settings.local_user, kind="local", role=role)


def is_proxy_header(name: str) -> bool:
    """Whether a header is one a proxy, a load balancer or a CDN adds (PROXY_HEADERS)."""
    name = name.lower()
    return name in PROXY_HEADERS or name.startswith(PROXY_HEADER_PREFIXES)


def is_loopback_authority(authority: str) -> bool:
    """Whether `host[:port]` (a Host header, an origin's authority) names this machine by a name no
    one else can point elsewhere: localhost or a loopback address (IPv6 in brackets)."""
    found = _AUTHORITY.fullmatch(authority.strip())
    if found is None or (found["port"] is not None and not 0 < int(found["port"]) < 65536):
        return False
    if found["ipv6"] is not None:
        try:
            return ipaddress.IPv6Address(found["ipv6"]).is_loopback
        except ValueError:
            return False
    name = found["name"].lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False


def is_loopback_origin(origin: str) -> bool:
    """Whether an `Origin` header is a page served from this machine (`null`, sent by sandboxed
    and file pages, is not: anyone can make one)."""
    scheme, separator, authority = origin.strip().partition("://")
    return bool(separator) and scheme.lower() in {"http", "https"} and is_loopback_authority(authority)


def _shown(value: str, most: int = 80) -> str:
    """A header value quoted in a message: printable, and short."""
    printable = "".join(c if c.isprintable() else "?" for c in value)
    return printable if len(printable) <= most else printable[: most - 3] + "..."


__all__ = [
    "ACTIONS",
    "ROLES",
    "AuthenticationFailed",
    "IssuedToken",
    "PermissionDenied",
    "Principal",
    "TokenInfo",
    "anonymous_principal",
    "anonymous_role",
    "authenticate",
    "authorize",
    "authorize_consumer_removal",
    "consumer_removal_refusal",
    "create_token",
    "is_loopback",
    "is_loopback_authority",
    "is_loopback_origin",
    "is_proxy_header",
    "list_tokens",
    "may",
    "owns",
    "revoke_token",
    "role_of",
    "why_not",
]
