"""The health overview: every data product's freshness, last run, failing tests and open drift,
worst first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from catalog_db.models import DriftEvent, NodeResult, Run
from portal.observability.freshness import Freshness, freshness_for
from portal.observability.history import latest_profiles
from portal.observability.profile import PROFILE_STATUS_TEXT

if TYPE_CHECKING:
    from portal.service import PortalService


HEALTH_LEVELS = ("failing", "stale", "warning", "unknown", "healthy")


@dataclass(frozen=True)
class ProductHealth:
    name: str
    owner: str | None
    update_frequency: str | None
    freshness: Freshness
    build_status: str | None
    last_run_at: datetime | None
    last_run_id: int | None
    last_run_elapsed_s: float | None
    tests_failed: int
    tests_warned: int
    open_drift: int
    profile_status: str | None
    duplicate_keys: int | None
    row_count: int | None

    @property
    def problems(self) -> list[str]:
        """What is wrong, worst first, in words."""
        found = []
        if self.build_status in {"error", "fail", "runtime error"}:
            found.append(f"last build {self.build_status}")
        if self.tests_failed:
            found.append(f"{self.tests_failed} failing test{'s' * (self.tests_failed != 1)}")
        if self.profile_status in {"missing", "unavailable", "error"}:
            found.append(f"profile: {PROFILE_STATUS_TEXT[self.profile_status]}")
        if self.freshness.state in {"stale", "late"}:
            found.append(self.freshness.state)
        if self.duplicate_keys:
            found.append(f"{self.duplicate_keys:,} duplicate primary keys")
        if self.open_drift:
            found.append(f"{self.open_drift} open drift event{'s' * (self.open_drift != 1)}")
        if self.tests_warned:
            found.append(f"{self.tests_warned} warning test{'s' * (self.tests_warned != 1)}")
        if self.profile_status == "empty":
            found.append("empty")
        return found

    @property
    def level(self) -> str:
        if (
            self.build_status in {"error", "fail", "runtime error"}
            or self.tests_failed
            or self.profile_status in {"missing", "unavailable", "error"}
        ):
            return "failing"
        if self.freshness.state == "stale":
            return "stale"
        if (
            self.freshness.state == "late"
            or self.open_drift
            or self.tests_warned
            or self.duplicate_keys
            or self.profile_status == "empty"
        ):
            return "warning"
        if self.freshness.state == "unknown":
            return "unknown"
        return "healthy"

    @property
    def rank(self) -> tuple[int, int, str]:
        """Worst first: by level, then by how many things are wrong, then by name."""
        return (HEALTH_LEVELS.index(self.level), -len(self.problems), self.name)


def open_drift_counts(service: PortalService) -> dict[str, int]:
    with service.sessions() as session:
        rows = session.execute(
            sa.select(DriftEvent.product, sa.func.count())
            .where(DriftEvent.acknowledged.is_(False))
            .group_by(DriftEvent.product)
        )
        return {product: int(count) for product, count in rows}


def _last_runs(
    service: PortalService, unique_ids: Sequence[str]
) -> dict[str, tuple[int, datetime, float | None]]:
    """Per model, the newest run that included it: (run id, started at, run duration)."""
    newest = (
        sa.select(NodeResult.unique_id, sa.func.max(NodeResult.run_id).label("run_id"))
        .where(NodeResult.unique_id.in_(unique_ids))
        .group_by(NodeResult.unique_id)
        .subquery()
    )
    with service.sessions() as session:
        rows = session.execute(
            sa.select(newest.c.unique_id, Run.id, Run.started_at, Run.elapsed_s).join(
                Run, Run.id == newest.c.run_id
            )
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows.tuples()}


def health_overview(service: PortalService, *, now: datetime | None = None) -> list[ProductHealth]:
    """Every data product's freshness, last run, failing tests and open drift, worst first."""
    entries = service.catalog()
    fresh = freshness_for(service, [(e.name, e.unique_id, e.update_frequency) for e in entries], now=now)
    latest = latest_profiles(service, [e.name for e in entries])
    runs = _last_runs(service, [e.unique_id for e in entries])
    drift = open_drift_counts(service)
    overview = []
    for entry in entries:
        run = runs.get(entry.unique_id)
        profile = latest.get(entry.name)
        overview.append(
            ProductHealth(
                name=entry.name,
                owner=entry.owner,
                update_frequency=entry.update_frequency,
                freshness=fresh[entry.name],
                build_status=entry.health.build_status,
                last_run_at=run[1] if run else None,
                last_run_id=run[0] if run else None,
                last_run_elapsed_s=run[2] if run else None,
                tests_failed=entry.health.tests_failed,
                tests_warned=entry.health.tests_warned,
                open_drift=drift.get(entry.name, 0),
                profile_status=profile.status if profile else None,
                duplicate_keys=profile.duplicate_keys if profile else None,
                row_count=entry.health.row_count,
            )
        )
    return sorted(overview, key=lambda h: h.rank)
