"""One error taxonomy: every refusal the portal raises is a `PortalError` of one kind.

The kind says what sort of refusal it is, not how a face shows it: the API maps kinds to
problem+json statuses in one table (`portal/api/errors.py`), the UI's `attempt` to a message
style, the CLI's one handler to an exit code. So a new exception needs no change in any face,
and the three cannot disagree about what a failure means.

The message is for people and must say what was wrong and how to fix it (dbt's error messages
are the model); `problems` carries the fields or SQL positions at fault, where there are some.
This module imports nothing of the portal: every layer, `catalog_db` included, may raise these.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, ClassVar


class Kind(StrEnum):
    NOT_FOUND = "not_found"  # no such product, node, run, token, event
    INVALID = "invalid"  # the caller's input is wrong: fix it and ask again
    CONFLICT = "conflict"  # valid, but not in the object's current state (taken, failed, building)
    FORBIDDEN = "forbidden"  # known caller, not allowed
    UNAUTHENTICATED = "unauthenticated"  # no identity, or a bad credential
    BUSY = "busy"  # another build holds the project: try again shortly
    TIMEOUT = "timeout"  # the work took longer than its limit allows
    UNAVAILABLE = "unavailable"  # a part the portal needs is down or misconfigured
    UPSTREAM = "upstream"  # the warehouse or dbt refused what the portal asked of it


class PortalError(Exception):
    """The root of every error the portal raises on purpose."""

    kind: ClassVar[Kind] = Kind.INVALID
    # A few subclasses name the part that failed ("The warehouse is not available."), so a face
    # can lead with it in bold; most messages say it all themselves.
    headline: ClassVar[str] = ""

    def __init__(self, message: str, *, problems: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    def __str__(self) -> str:
        return self.message


class NotFound(PortalError):
    """No object by that name or id; the message suggests what exists."""

    kind = Kind.NOT_FOUND


class InvalidInput(PortalError):
    kind = Kind.INVALID


class Conflict(PortalError):
    kind = Kind.CONFLICT


class Forbidden(PortalError):
    kind = Kind.FORBIDDEN


class Unauthenticated(PortalError):
    kind = Kind.UNAUTHENTICATED


class Busy(PortalError):
    kind = Kind.BUSY


class TimedOut(PortalError):
    kind = Kind.TIMEOUT


class Unavailable(PortalError):
    kind = Kind.UNAVAILABLE


class UpstreamError(PortalError):
    kind = Kind.UPSTREAM
