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

from portal.settings import ROLE_NAMES

_RANK = {role: rank for rank, role in enumerate(ROLE_NAMES)}


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


def higher(role: str, than: str) -> bool:
    """Whether `role` is above `than` (viewer < creator < admin)."""
    return _RANK[role] > _RANK[than]


__all__ = ["higher", "role_for"]
