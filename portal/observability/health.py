"""Every product's health, judged by the one rule in `project/statuses.py` on facts gathered
here in a handful of queries: its newest build and test results, freshness, newest profile and
open drift. The catalog's badges, the Health page, the product page and the API all ask this
module, so they show the same word for the same product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from catalog_db.models import DriftEvent, NodeResult, Run
from portal.observability.freshness import Freshness, frequency_period, freshness_for
from portal.observability.history import latest_profiles
from portal.project.statuses import BUILD_FAILED, BUILD_OK, TEST_WARNED, Health

if TYPE_CHECKING:
    from portal.service import CatalogEntry, PortalService


@dataclass(frozen=True)
class ProductHealth:
    """A catalog entry with its health now, and what the health was judged on."""

    entry: CatalogEntry
    health: Health
    freshness: Freshness
    last_refreshed: datetime | None  # when its model last built where consumers read it
    last_run_id: int | None  # the newest run that included it, published or not
    last_run_at: datetime | None
    last_run_elapsed_s: float | None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def level(self) -> str:
        return self.health.level

    @property
    def problems(self) -> list[str]:
        return self.health.problems

    @property
    def rank(self) -> tuple[int, int, str]:
        """Worst first: by level, then by how many things are wrong, then by name."""
        return (*self.health.rank, self.name)


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


def health_of(
    service: PortalService,
    entries: Sequence[CatalogEntry],
    *,
    now: datetime | None = None,
    latest: Mapping[str, NodeResult] | None = None,
) -> dict[str, ProductHealth]:
    """The health of each entry now, by unique id: six queries, none of them to the warehouse,
    so a page of any size stays quick and works while a build runs. `latest` is
    `service.latest_results()`, for a caller that has read it already."""
    now = now or datetime.now(UTC)
    latest = latest if latest is not None else service.latest_results()
    fresh = freshness_for(service, [(e.name, e.unique_id, e.update_frequency) for e in entries], now=now)
    products = [e.name for e in entries if e.is_data_product]  # only products are profiled
    profiles = latest_profiles(service, products)
    drift = open_drift_counts(service)
    runs = _last_runs(service, [e.unique_id for e in entries])
    judged = {}
    for entry in entries:
        own = latest.get(entry.unique_id)
        tests = [latest[t].status for t in entry.test_ids if t in latest]
        profile = profiles.get(entry.name) if entry.is_data_product else None
        run = runs.get(entry.unique_id)
        health = Health(
            lifecycle=entry.lifecycle,
            build_status=own.status if own is not None else None,
            tests_passed=sum(status == "pass" for status in tests),
            tests_failed=sum(status in BUILD_FAILED for status in tests),
            tests_warned=sum(status == TEST_WARNED for status in tests),
            freshness=fresh[entry.name].state,
            promised=frequency_period(entry.update_frequency) is not None,
            profile_status=profile.status if profile else None,
            duplicate_keys=profile.duplicate_keys if profile else None,
            open_drift=drift.get(entry.name, 0) if entry.is_data_product else 0,
        )
        judged[entry.unique_id] = ProductHealth(
            entry=entry,
            health=health,
            freshness=fresh[entry.name],
            last_refreshed=own.completed_at if own is not None and own.status in BUILD_OK else None,
            last_run_id=run[0] if run else None,
            last_run_at=run[1] if run else None,
            last_run_elapsed_s=run[2] if run else None,
        )
    return judged


def health_overview(service: PortalService, *, now: datetime | None = None) -> list[ProductHealth]:
    """Every data product's health, worst first."""
    judged = health_of(service, service.entries(), now=now)
    return sorted(judged.values(), key=lambda h: h.rank)
