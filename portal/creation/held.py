"""What a proposal in review holds, and letting it go.

A proposal whose build and tests passed while review is required (PORTAL_REVIEW) waits with its
data where it was audited: the audit schema on DuckDB, its Nessie branch on Trino; its run's
details["wap"] say where. Rejecting, expiring, superseding (the product was edited again) or
discarding the product all end the wait the same way: the held data goes, the proposal takes its
new state. The caller holds the project's dbt lock, since the audit schema is the builds'.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_db.models import Proposal, Run
from portal.creation.commits import OPEN_REVIEW
from portal.creation.publish.registry import publisher_for
from portal.errors import PortalError
from portal.service import PortalService

log = logging.getLogger(__name__)


def record_of(session: Session, proposal: Proposal) -> dict[str, Any]:
    """The held build's run record (details["wap"]): where its data is."""
    run = session.get(Run, proposal.run_id) if proposal.run_id is not None else None
    wap = (run.details or {}).get("wap") if run is not None else None
    return dict(wap) if isinstance(wap, dict) else {}


def release(
    service: PortalService,
    product: str,
    state: str,
    *,
    only: Sequence[int] | None = None,
    decided_by: str | None = None,
    comment: str | None = None,
) -> list[int]:
    """End the wait of `product`'s proposals in review (those in `only`, when given): drop their
    held data and give them `state`; returns their ids. Data that cannot be dropped is logged and
    the state changes all the same: nothing reads a closed proposal's data, and a Nessie branch
    left behind is named after its run (wap-r<run>-...), so it can be found and removed."""
    publisher = publisher_for(service.settings)
    released = []
    with service.sessions.begin() as session:
        query = select(Proposal).where(Proposal.product == product, Proposal.state.in_(OPEN_REVIEW))
        if only is not None:
            query = query.where(Proposal.id.in_(only))
        for row in session.scalars(query):
            record = record_of(session, row)
            try:
                publisher.drop_audit(product, record)
            except PortalError as exc:
                log.warning("Proposal %s of %s: its held data could not be removed: %s", row.id, product, exc)
            row.state, row.decided_at = state, datetime.now(UTC)
            if decided_by is not None:
                row.decided_by = decided_by
            if comment is not None:
                row.comment = comment
            released.append(row.id)
    return released
