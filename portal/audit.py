"""The portal's two trails: who changed what (audit events) and who read what (usage events).

Both are append-only rows in the catalog database. A change is recorded in the caller's
transaction where it has one, so the event and the change commit together or not at all; a
read is recorded on its own and must never break the read it describes, so a failure to record
it is logged and swallowed. The usage *analytics* over these rows are observability's
(`portal/observability/usage.py`).

This is the one module that constructs `AuditEvent` and `UsageEvent` rows
(tests/unit/test_architecture.py checks it), so every event gets its timestamp, its empty detail
and its fields the same way, and a change to what an event holds is made in one place. To be
callable from everything that changes the catalog (the project sync, token management, the
creation lifecycle, the faces), it sits low: just above `catalog_db`, below `project` and `auth`.
It therefore imports neither `portal.service` nor `portal.auth`: an actor is a user name or an
identity, and what it needs of the portal service or of an identity it states as the small
protocols below, which `PortalService` and `Identity` meet as they are. An identity's teams (a
signed-in user's groups) are recorded with every change it makes (`detail["teams"]`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog_db.models import USAGE_FACES, AuditEvent, UsageEvent
from portal.errors import InvalidInput

log = logging.getLogger(__name__)


class HasSessions(Protocol):
    """What the trails need of the portal service: its catalog database sessions."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...


class Reader(Protocol):
    """Who read: a `portal.auth.identity.Identity` (or a `Principal`) has these."""

    @property
    def user(self) -> str: ...

    @property
    def kind(self) -> str: ...


class Actor(Protocol):
    """Who changed something, as an identity (`portal.auth.identity.Identity` has these)."""

    @property
    def user(self) -> str: ...

    @property
    def groups(self) -> tuple[str, ...]: ...


def add_event(
    session: Session,
    actor: str | Actor,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Record a change by `actor` (a user name, or an identity: then with its teams) in the caller's
    transaction, at `at` (default: now)."""
    recorded = dict(detail or {})
    if not isinstance(actor, str):
        if actor.groups:
            recorded.setdefault("teams", list(actor.groups))
        actor = actor.user
    session.add(
        AuditEvent(
            at=at or datetime.now(UTC),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=recorded,
        )
    )


def record_event(
    service: HasSessions,
    actor: str | Actor,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in a transaction of its own (a request, not a row change)."""
    with service.sessions.begin() as session:
        add_event(session, actor, action, object_type, object_id, detail)


def record_read(
    service: HasSessions,
    identity: Reader,
    product: str,
    *,
    face: str,
    rows: int | None,
    duration_ms: float | None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> bool:
    """Record one read of `product`'s data; False (and a log line) if it could not be recorded."""
    if face not in USAGE_FACES:
        raise InvalidInput(f"Unknown face {face!r}; usage is recorded for {', '.join(USAGE_FACES)}.")
    event = UsageEvent(
        at=at or datetime.now(UTC),
        user=identity.user,
        product=product,
        face=face,
        rows=rows,
        duration_ms=duration_ms,
        detail={"identity_kind": identity.kind, **(detail or {})},
    )
    try:
        with service.sessions.begin() as session:
            session.add(event)
    except SQLAlchemyError:
        log.exception("could not record usage of %s by %s", product, identity.user)
        return False
    return True


@dataclass(frozen=True)
class Change:
    """One recorded change of a data product, for its History."""

    at: datetime
    actor: str
    teams: tuple[str, ...]
    action: str
    detail: dict[str, Any]


def product_history(service: HasSessions, name: str, *, limit: int = 200) -> list[Change]:
    """The changes recorded for data product `name`, newest first."""
    with service.sessions() as session:
        rows = session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.object_type == "data_product", AuditEvent.object_id == name)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        ).all()
    return [
        Change(
            at=row.at,
            actor=row.actor,
            teams=tuple(str(t) for t in (row.detail or {}).get("teams", [])),
            action=row.action,
            detail={k: v for k, v in (row.detail or {}).items() if k != "teams"},
        )
        for row in rows
    ]
