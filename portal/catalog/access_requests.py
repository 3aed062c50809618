"""Access requests: a consumer asks to read a product, its owning team approves or refuses, and
on Trino the decision becomes Trino's own access rules, so approval opens the table and the end of
the grant closes it.

A product is *restricted* when its dbt YAML says `meta: {restricted: true}`: on Trino, only the
portal's user, its owning team (a Trino group) and consumers with a live grant may read it (see
warehouse/trino_rules.py). A grant is live from its approval for the days asked, until its owners
revoke it or its requester withdraws it. Every request and decision is an audit event, visible to
both sides (`requests`). On DuckDB (one machine, one user) nothing is enforced: the requests and
decisions are kept and shown all the same, and say so.

The rules file is written after each decision, whenever `sync_rules` runs (a process's start,
cron's `refresh --due`, every listing) and when a grant ends: each long-running portal process
(the API, the UI) keeps one timer for the next end of a live grant, so an expiry closes the table
on time (plus the coordinator's refresh period) even when nobody acts. Several processes may
watch one file: they write the same rules, and an unchanged file is not rewritten.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog_db.models import AccessRequest, DataProduct
from portal import audit
from portal.auth.access import PermissionDenied, authorize, may, owns, role_of
from portal.auth.identity import Identity
from portal.errors import Conflict, InvalidInput, NotFound
from portal.service import PortalService
from portal.warehouse.trino_rules import RestrictedTable, read_base, render_rules, write_rules

log = logging.getLogger(__name__)

REASON_MIN, REASON_MAX = 10, 2000
# How long after a grant's end its timer writes the rules, so the grant reads as ended by then.
END_SLACK_S = 1.0


@dataclass(frozen=True)
class Access:
    """A request as both sides see it; `live` while the access it grants holds."""

    id: int
    product: str
    requester: str
    reason: str
    days: int
    state: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    expires_at: datetime | None
    live: bool

    @property
    def shown_state(self) -> str:
        """The state in words: an approved grant past its days reads as expired."""
        if self.state == "approved" and not self.live:
            return "expired"
        return self.state


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """A stored time in UTC (SQLite gives back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _access(row: AccessRequest, now: datetime) -> Access:
    expires = _utc(row.expires_at) if row.expires_at else None
    return Access(
        id=row.id,
        product=row.product,
        requester=row.requester,
        reason=row.reason,
        days=row.days,
        state=row.state,
        created_at=_utc(row.created_at or now),
        decided_by=row.decided_by,
        decided_at=_utc(row.decided_at) if row.decided_at else None,
        comment=row.comment,
        expires_at=expires,
        live=row.state == "approved" and expires is not None and expires > now,
    )


def is_restricted(service: PortalService, product: str) -> bool:
    return bool(service.resolve(product).meta.get("restricted"))


def _product_row(service: PortalService, name: str) -> DataProduct:
    with service.sessions() as session:
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == name))
    if row is None:
        raise NotFound(f"{name} is not a registered data product; access is requested to data products.")
    return row


def may_decide(service: PortalService, identity: Identity, product: str) -> bool:
    """Whether `identity` decides on `product`'s requests (its owning team, an admin)."""
    return may(identity, "grant", _product_row(service, service.entry(product).name))


def request_access(
    service: PortalService,
    identity: Identity,
    product: str,
    *,
    reason: str,
    days: int,
    now: datetime | None = None,
) -> Access:
    """Ask for `days` of read access to `product`, saying why; pending until its owners decide."""
    moment = _now(now)
    name = service.entry(product).name  # NotFound for an unknown product
    row = _product_row(service, name)
    reason = reason.strip()
    most = service.settings.access_max_days
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise InvalidInput(
            f"Say why you need {name} in {REASON_MIN} to {REASON_MAX} characters (you gave {len(reason)}): "
            "what you will use it for, so its owners can decide."
        )
    if not 1 <= days <= most:
        raise InvalidInput(
            f"Ask for 1 to {most} days of access (you asked for {days}); ask again when it ends "
            "(PORTAL_ACCESS_MAX_DAYS sets the most)."
        )
    if owns(identity, row):
        raise Conflict(f"{identity.user} is of the team owning {name} ({row.owner}): no request is needed.")
    with service.sessions.begin() as session:
        for open_request in session.scalars(
            sa.select(AccessRequest).where(
                AccessRequest.product == name,
                AccessRequest.requester == identity.user,
                AccessRequest.state.in_(("pending", "approved")),
            )
        ):
            current = _access(open_request, moment)
            if current.state == "pending" or current.live:
                what = "waits for a decision" if current.state == "pending" else "is granted"
                raise Conflict(
                    f"Your request {current.id} for {name} {what}; withdraw it before asking again."
                )
        created = AccessRequest(
            product=name, requester=identity.user, reason=reason, days=days, created_at=moment
        )
        session.add(created)
        session.flush()
        audit.add_event(
            session, identity, "access.requested", "data_product", name, {"request": created.id, "days": days}
        )
        return _access(created, moment)


def _pending(session: Session, request_id: int) -> AccessRequest:
    row = session.get(AccessRequest, request_id)
    if row is None:
        raise NotFound(f"There is no access request {request_id}.")
    return row


def decide(
    service: PortalService,
    identity: Identity,
    request_id: int,
    *,
    approve: bool,
    comment: str = "",
    now: datetime | None = None,
) -> Access:
    """Approve (for the days asked, from now) or refuse (with a comment) a pending request: its
    product's owning team or an admin; never the requester. Then the Trino rules follow."""
    moment = _now(now)
    comment = comment.strip()
    with service.sessions.begin() as session:
        row = _pending(session, request_id)
        authorize(identity, "grant", _product_row(service, row.product))
        if row.requester == identity.user and role_of(identity) != "admin":
            raise PermissionDenied(
                f"{identity.user} asked for this access; someone else of its owners decides."
            )
        if row.state != "pending":
            raise Conflict(
                f"Access request {request_id} is {row.state}, not pending: it was decided already."
            )
        if not approve and not comment:
            raise InvalidInput(
                "Say why the request is refused (a comment), so the requester knows what to do."
            )
        row.state = "approved" if approve else "refused"
        row.decided_by, row.decided_at, row.comment = identity.user, moment, comment or None
        if approve:
            row.expires_at = moment + timedelta(days=row.days)
        audit.add_event(
            session,
            identity,
            "access.approved" if approve else "access.refused",
            "data_product",
            row.product,
            {"request": row.id, "requester": row.requester, "expires_at": str(row.expires_at or "")},
        )
        decided = _access(row, moment)
    sync_rules(service, now=moment)
    return decided


def end(
    service: PortalService, identity: Identity, request_id: int, *, now: datetime | None = None
) -> Access:
    """Withdraw one's own request (pending or granted), or revoke a grant as its owners."""
    moment = _now(now)
    with service.sessions.begin() as session:
        row = _pending(session, request_id)
        if row.state not in ("pending", "approved"):
            raise Conflict(f"Access request {request_id} is {row.state}: there is nothing to end.")
        if row.requester == identity.user:
            row.state, action = "withdrawn", "access.withdrawn"
        else:
            authorize(identity, "grant", _product_row(service, row.product))
            row.state, action = "revoked", "access.revoked"
        row.decided_by, row.decided_at = identity.user, moment
        audit.add_event(session, identity, action, "data_product", row.product, {"request": row.id})
        ended = _access(row, moment)
    sync_rules(service, now=moment)
    return ended


def requests(
    service: PortalService,
    *,
    product: str | None = None,
    requester: str | None = None,
    now: datetime | None = None,
) -> list[Access]:
    """Requests, newest first: of a product (its owners' view) and/or of a requester (theirs)."""
    moment = _now(now)
    query = sa.select(AccessRequest).order_by(AccessRequest.id.desc())
    if product is not None:
        query = query.where(AccessRequest.product == service.entry(product).name)
    if requester is not None:
        query = query.where(AccessRequest.requester == requester)
    with service.sessions() as session:
        found = [_access(r, moment) for r in session.scalars(query)]
    sync_rules(service, now=moment)  # an expiry since the last write closes the table now
    return found


def live_readers(service: PortalService, *, now: datetime | None = None) -> dict[str, tuple[str, ...]]:
    moment = _now(now)
    readers: dict[str, list[str]] = {}
    with service.sessions() as session:
        for row in session.scalars(sa.select(AccessRequest).where(AccessRequest.state == "approved")):
            if _access(row, moment).live:
                readers.setdefault(row.product, []).append(row.requester)
    return {product: tuple(users) for product, users in readers.items()}


def sync_rules(service: PortalService, *, now: datetime | None = None) -> Path | None:
    """Write Trino's access rules for the restricted products and their live grants (when
    PORTAL_TRINO_ACCESS_RULES_FILE is set); the file, or None when there is none to write."""
    settings = service.settings
    if not settings.trino_access_rules_file:  # set where Trino enforces access (the setting says so)
        return None
    readers = live_readers(service, now=now)
    tables = []
    for entry in service.entries():
        node = service.resolve(entry.unique_id)
        if not node.meta.get("restricted"):
            continue
        relation = service.relation(node)
        tables.append(
            RestrictedTable(
                catalog=relation.database or settings.trino_catalog,
                schema=relation.schema or settings.gold_schema,
                table=relation.name,
                owner_group=entry.owner,
                readers=readers.get(entry.name, ()),
            )
        )
    target = Path(settings.trino_access_rules_file)
    rules = render_rules(
        read_base(settings.trino_access_rules_base), tables, service_user=settings.trino_user
    )
    write_rules(target, rules)
    _ends.watch(service, target, next_end(service))
    return target


def next_end(service: PortalService) -> datetime | None:
    """When the next live grant ends; None when none is live."""
    moment = _now(None)
    with service.sessions() as session:
        ends = session.scalars(
            sa.select(AccessRequest.expires_at).where(
                AccessRequest.state == "approved", AccessRequest.expires_at.is_not(None)
            )
        ).all()
    future = [_utc(end) for end in ends if end is not None and _utc(end) > moment]
    return min(future, default=None)


def resume(service: PortalService) -> None:
    """At a portal process's start: write the rules (grants may have ended while no portal ran)
    and watch the next end. A failure is logged, not raised: the process serves all the same."""
    try:
        sync_rules(service)
    except Exception:
        log.warning("could not write Trino's access rules at start", exc_info=True)


class _GrantEnds:
    """Per rules file, one timer that writes the rules again when the next live grant ends.

    Each write sets the timer afresh from the grants as they are then (a grant approved, revoked or
    withdrawn moves the next end), so there is never more than one timer per file in a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timers: dict[Path, tuple[datetime, threading.Timer]] = {}

    def watch(self, service: PortalService, target: Path, due: datetime | None) -> None:
        with self._lock:
            current = self._timers.get(target)
            if current is not None and current[0] == due:
                return
            if current is not None:
                current[1].cancel()
                del self._timers[target]
            if due is None:
                return
            delay = max(0.0, (due - datetime.now(UTC)).total_seconds()) + END_SLACK_S
            timer = threading.Timer(delay, self._wake, (service, target))
            timer.name, timer.daemon = "access-grant-end", True  # a process may exit while it waits
            self._timers[target] = (due, timer)
            timer.start()

    def due(self, target: Path) -> datetime | None:
        """When the rules at `target` are written next for a grant's end (None: no timer)."""
        with self._lock:
            current = self._timers.get(target)
        return current[0] if current is not None else None

    def forget(self, target: Path) -> None:
        with self._lock:
            current = self._timers.pop(target, None)
        if current is not None:
            current[1].cancel()

    def _wake(self, service: PortalService, target: Path) -> None:
        with self._lock:
            self._timers.pop(target, None)
        try:
            sync_rules(service)  # sets the timer for the end after this one
        except Exception:  # the next decision, listing or refresh --due writes them
            log.warning("could not write Trino's access rules at a grant's end", exc_info=True)


_ends = _GrantEnds()


def watched_until(target: Path) -> datetime | None:
    """When this process writes the rules at `target` next for a grant's end (None: it does not)."""
    return _ends.due(target)


def stop_watching(target: Path) -> None:
    """No more timed writes of the rules at `target` in this process (a test's file, put back)."""
    _ends.forget(target)


__all__ = [
    "Access",
    "decide",
    "end",
    "is_restricted",
    "live_readers",
    "next_end",
    "request_access",
    "requests",
    "resume",
    "stop_watching",
    "sync_rules",
    "watched_until",
]
