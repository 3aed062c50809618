"""Usage analytics: every read of a product's data through the portal, and what it adds up to.

Each preview in the UI, query through the API or export from the CLI is recorded (by
`portal.audit.record_read`) with who asked, for which product, how many rows came back and how
long it took; this module adds those events up. Aggregation runs
in the catalog database (SQLite or PostgreSQL), so the pages stay quick with millions of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from catalog_db.models import UsageEvent

if TYPE_CHECKING:
    from portal.service import PortalService


def _since(days: int, now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=days)


def _scope(query: Any, product: str | None, since: datetime) -> Any:
    query = query.where(UsageEvent.at >= since)
    return query.where(UsageEvent.product == product) if product else query


@dataclass(frozen=True)
class UsageDay:
    day: date
    face: str
    queries: int
    rows: int


def usage_by_day(
    service: PortalService, product: str | None = None, *, days: int = 30, now: datetime | None = None
) -> list[UsageDay]:
    """Queries and rows per day and face (UTC days), oldest first; of one product when given."""
    # date() exists on SQLite (text 'YYYY-MM-DD') and PostgreSQL (a date); both are read back below.
    day = sa.func.date(UsageEvent.at)
    query = _scope(
        sa.select(day, UsageEvent.face, sa.func.count(), sa.func.coalesce(sa.func.sum(UsageEvent.rows), 0)),
        product,
        _since(days, now),
    ).group_by(day, UsageEvent.face)
    with service.sessions() as session:
        rows: Sequence[Any] = session.execute(query).all()  # aggregate columns are untyped
    found = [
        UsageDay(date.fromisoformat(str(d)[:10]), face, int(count), int(total))
        for d, face, count, total in rows
    ]
    return sorted(found, key=lambda u: (u.day, u.face))


@dataclass(frozen=True)
class Consumer:
    user: str
    queries: int
    rows: int
    products: int
    last_at: datetime


def top_consumers(
    service: PortalService,
    product: str | None = None,
    *,
    days: int = 30,
    limit: int = 10,
    now: datetime | None = None,
) -> list[Consumer]:
    """Who reads the most (by number of queries), of one product or of all."""
    count = sa.func.count().label("queries")
    query = (
        _scope(
            sa.select(
                UsageEvent.user,
                count,
                sa.func.coalesce(sa.func.sum(UsageEvent.rows), 0),
                sa.func.count(sa.distinct(UsageEvent.product)),
                sa.func.max(UsageEvent.at),
            ),
            product,
            _since(days, now),
        )
        .group_by(UsageEvent.user)
        .order_by(count.desc(), UsageEvent.user)
        .limit(limit)
    )
    with service.sessions() as session:
        rows: Sequence[Any] = session.execute(query).all()  # aggregate columns are untyped
    return [
        Consumer(user, int(n), int(total), int(products), _aware(last))
        for user, n, total, products, last in rows
    ]


@dataclass(frozen=True)
class ProductUsage:
    product: str
    queries: int
    users: int
    rows: int
    mean_duration_ms: float | None
    last_at: datetime


def leaderboard(
    service: PortalService, *, days: int = 30, limit: int = 10, now: datetime | None = None
) -> list[ProductUsage]:
    """The most used products (by number of queries) over the last `days`."""
    count = sa.func.count().label("queries")
    query = (
        _scope(
            sa.select(
                UsageEvent.product,
                count,
                sa.func.count(sa.distinct(UsageEvent.user)),
                sa.func.coalesce(sa.func.sum(UsageEvent.rows), 0),
                sa.func.avg(UsageEvent.duration_ms),
                sa.func.max(UsageEvent.at),
            ),
            None,
            _since(days, now),
        )
        .group_by(UsageEvent.product)
        .order_by(count.desc(), UsageEvent.product)
        .limit(limit)
    )
    with service.sessions() as session:
        rows: Sequence[Any] = session.execute(query).all()  # aggregate columns are untyped
    return [
        ProductUsage(
            name, int(n), int(users), int(total), None if mean is None else float(mean), _aware(last)
        )
        for name, n, users, total, mean, last in rows
    ]


def _aware(moment: Any) -> datetime:
    """Aggregates (max) bypass the column type, so SQLite hands back naive text or datetimes."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
