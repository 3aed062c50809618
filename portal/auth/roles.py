"""Roles from groups, and teams as owners.

An identity provider (OpenID Connect, or a sign-in proxy) says who someone is and which groups
they belong to. The portal turns groups into a role through PORTAL_ROLE_MAP, an ordered list of
`GROUP=ROLE` entries: an entry matches a group of that name, `team-*` matches every group that
starts with `team-`, and `*` matches anyone signed in. A user gets the highest role of all the
entries that match, so `analytics-admins=admin,*=viewer` makes admins of one group and viewers of
everyone else; a user no entry matches gets no role and is refused, saying which groups were seen.

Groups are also teams: a product's owner names a team, and a signed-in user may change a product
when they are a member of its owning team (portal/auth/access.py, `owns`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from portal.auth.identity import PARTY_RE, Principal
from portal.errors import Forbidden
from portal.settings import ROLE_NAMES, Settings

_RANK = {role: rank for rank, role in enumerate(ROLE_NAMES)}
MAX_GROUPS = 200


class NoRole(Forbidden):
    """The user is signed in, but no entry of PORTAL_ROLE_MAP gives them a role."""


def _matches(pattern: str, groups: Sequence[str]) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return any(group.startswith(pattern[:-1]) for group in groups)
    return pattern in groups


def role_for(groups: Iterable[str], role_map: Sequence[tuple[str, str]]) -> str | None:
    """The highest role of every `role_map` entry that `groups` match; None when none does."""
    found = tuple(groups)
    roles = [role for pattern, role in role_map if _matches(pattern, found)]
    return max(roles, key=_RANK.__getitem__) if roles else None


def teams_of(names: Iterable[object]) -> tuple[str, ...]:
    """A provider's group names as teams: the last part of a group path (Keycloak can send
    `/org/team-sales`), each once, in order; a name no team can have (PARTY_RE) is no team."""
    parts = (str(name).strip().rstrip("/").rsplit("/", 1)[-1] for name in names)
    return tuple(team for team in dict.fromkeys(parts) if PARTY_RE.match(team))[:MAX_GROUPS]


def signed_in_principal(settings: Settings, user: str, kind: str, groups: Iterable[object]) -> Principal:
    """The portal's identity of `user`, signed in by `kind` (oidc, proxy) with the provider's
    `groups`: their teams, and the role PORTAL_ROLE_MAP gives them. NoRole (saying which groups
    were seen) when it gives none."""
    teams = teams_of(groups)
    role = role_for(teams, settings.role_map)
    if role is None:
        seen = ", ".join(teams) if teams else "none"
        raise NoRole(
            f"{user} is signed in, but none of their groups ({seen}) has a role in this portal. Ask an admin "
            "to add them to a group that PORTAL_ROLE_MAP gives a role (e.g. `*=viewer` lets every "
            "signed-in user read)."
        )
    return Principal(user=user, kind=kind, groups=teams, role=role)


__all__ = ["MAX_GROUPS", "NoRole", "role_for", "signed_in_principal", "teams_of"]
