"""Who is acting: the identity every core call that changes or reads data is given.

The embedded default has exactly one local user and says so; the API's bearer tokens give
named users; an identity provider (OpenID Connect, a sign-in proxy) gives signed-in users with
their groups, which are their teams. PARTY_RE is the one rule for what a user or team name may
look like, shared by tokens, owners and consumers, since the same names meet in audit events and
Trino sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PARTY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}\Z")


# Identities an identity provider vouches for, with their groups: ownership goes by team.
SIGNED_IN_KINDS = frozenset({"oidc", "proxy"})


@dataclass(frozen=True)
class Identity:
    """Who is acting. The embedded default has exactly one local user, and says so."""

    user: str
    kind: str = "local"  # local, token, oidc or proxy
    # A signed-in user's groups, which are also their teams (keyword-only: Principal's positional
    # fields stay user, kind, role).
    groups: tuple[str, ...] = field(default=(), kw_only=True)

    @property
    def signed_in(self) -> bool:
        """Whether an identity provider vouches for this user (and their groups)."""
        return self.kind in SIGNED_IN_KINDS

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"{self.user} (local user, no sign-in)"
        if self.signed_in and self.groups:
            return f"{self.user} ({', '.join(self.groups)})"
        return self.user


@dataclass(frozen=True)
class Principal(Identity):
    """An identity with a role: a token's holder, a signed-in user, or the local user of the API."""

    role: str = "viewer"
    token_id: int | None = None
