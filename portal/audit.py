"""The portal's two trails: who changed what (audit events) and who read what (usage events).

Both are append-only rows in the catalog database. A change is recorded in the caller's
transaction where it has one, so the event and the change commit together or not at all; a
read is recorded on its own and must never break the read it describes, so a failure to record
it is logged and swallowed. The usage *analytics* over these rows are observability's
(`portal/observability/usage.py`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog_db.models import USAGE_FACES, AuditEvent, UsageEvent
from portal.auth.identity import Identity
from portal.errors import InvalidInput
from portal.service import PortalService

log = logging.getLogger(__name__)


def add_event(
    session: Session,
    identity: Identity,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction."""
    session.add(
        AuditEvent(
            at=datetime.now(UTC),
            actor=identity.user,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail or {},
        )
    )


def record_event(
    service: PortalService,
    identity: Identity,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a change in a transaction of its own (a request, not a row change)."""
    with service.sessions.begin() as session:
        add_event(session, identity, action, object_type, object_id, detail)


def record_read(
    service: PortalService,
    identity: Identity,
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
