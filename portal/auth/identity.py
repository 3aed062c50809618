"""Who is acting: the identity every core call that changes or reads data is given.

The embedded default has exactly one local user and says so; the API's bearer tokens give
named users. PARTY_RE is the one rule for what a user or team name may look like, shared by
tokens, owners and consumers, since the same names meet in audit events and Trino sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PARTY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}\Z")


@dataclass(frozen=True)
class Identity:
    """Who is acting. The embedded default has exactly one local user, and says so."""

    user: str
    kind: str = "local"

    @property
    def label(self) -> str:
        return f"{self.user} (local user, no sign-in)" if self.kind == "local" else self.user
