"""Stored profiles and test results over time: measure a product, store its profile with the drift
since the previous one, and read the time series back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from catalog_db.models import DataProduct, DriftEvent, NodeResult, ProductProfile, Run
from portal.errors import PortalError
from portal.observability.drift import Drift, DriftThresholds, detect_drift
from portal.observability.profile import (
    MEASURED,
    ColumnProfile,
    Profile,
    SourceAge,
    primary_key,
    source_promise,
    upstream_sources,
)
from portal.observability.profiler import measure
from portal.warehouse import WarehouseError

if TYPE_CHECKING:
    from portal.service import PortalService


# --- stored profiles: the service functions ------------------------------------------------


@dataclass(frozen=True)
class ProfileOutcome:
    profile: Profile
    drift: tuple[Drift, ...]
    compared_with: int | None  # the id of the previous profile, if there was one to compare


def _profile_row(profile: Profile) -> ProductProfile:
    return ProductProfile(
        product=profile.product,
        unique_id=profile.unique_id,
        run_id=profile.run_id,
        measured_at=profile.measured_at,
        status=profile.status,
        message=profile.message,
        row_count=profile.row_count,
        primary_key=list(profile.primary_key),
        duplicate_keys=profile.duplicate_keys,
        newest_update=profile.newest_update,
        columns=[c.to_json() for c in profile.columns],
        sources=[s.to_json() for s in profile.sources],
        elapsed_s=profile.elapsed_s,
    )


def _from_row(row: ProductProfile) -> Profile:
    return Profile(
        id=row.id,
        product=row.product,
        unique_id=row.unique_id,
        run_id=row.run_id,
        status=row.status,
        measured_at=row.measured_at,
        row_count=row.row_count,
        columns=tuple(ColumnProfile.from_json(c) for c in row.columns or []),
        primary_key=tuple(row.primary_key or ()),
        duplicate_keys=row.duplicate_keys,
        newest_update=row.newest_update,
        sources=tuple(SourceAge.from_json(s) for s in row.sources or []),
        message=row.message,
        elapsed_s=row.elapsed_s,
    )


def _last_build_run(service: PortalService, unique_id: str) -> int | None:
    """The run that last built the model successfully: the build a profile describes."""
    with service.sessions() as session:
        return session.scalar(
            sa.select(sa.func.max(NodeResult.run_id)).where(
                NodeResult.unique_id == unique_id, NodeResult.status == "success"
            )
        )


def measure_product(service: PortalService, key: str, *, now: datetime | None = None) -> Profile:
    """Profile one model in the warehouse without storing anything."""
    node = service.resolve(key)
    manifest = service.artifacts().manifest
    settings = service.settings
    sources = []
    for source in upstream_sources(manifest, node):
        promise = source_promise(manifest, source)
        if promise is not None:
            sources.append((service.relation(source), promise))
    try:
        warehouse = service.warehouse()
    except WarehouseError as exc:  # e.g. a Trino engine that cannot even be configured
        return Profile(node.name, "unavailable", now or datetime.now(UTC), node.unique_id, message=str(exc))
    return measure(
        warehouse,
        service.relation(node),
        product=node.name,
        unique_id=node.unique_id,
        primary_key=primary_key(manifest, node),
        freshness_column=settings.freshness_column,
        sources=sources,
        max_categories=settings.profile_max_categories,
        approximate_distinct=settings.profile_approximate_distinct,
        now=now,
    )


def profile_product(
    service: PortalService,
    key: str,
    *,
    run_id: int | None = None,
    now: datetime | None = None,
) -> ProfileOutcome:
    """Measure a product, store the profile, and record drift against its previous measured profile.

    `run_id` links the profile to the build it describes; by default, the last run that built
    the model successfully.
    """
    profile = measure_product(service, key, now=now)
    if run_id is None and profile.unique_id:
        run_id = _last_build_run(service, profile.unique_id)
    profile = replace(profile, run_id=run_id)
    thresholds = DriftThresholds.from_settings(service.settings)
    with service.sessions.begin() as session:
        previous_row = session.scalars(
            sa.select(ProductProfile)
            .where(ProductProfile.product == profile.product, ProductProfile.status.in_(MEASURED))
            .order_by(ProductProfile.measured_at.desc(), ProductProfile.id.desc())
            .limit(1)
        ).first()
        previous = _from_row(previous_row) if previous_row else None
        row = _profile_row(profile)
        session.add(row)
        session.flush()
        drifts = detect_drift(previous, profile, thresholds) if previous else []
        for drift in drifts:
            session.add(
                DriftEvent(
                    product=profile.product,
                    kind=drift.kind,
                    column=drift.column,
                    change=drift.change,
                    detail={**drift.detail, "previous_profile_id": previous.id if previous else None},
                    detected_at=profile.measured_at,
                    profile_id=row.id,
                )
            )
        if profile.row_count is not None:
            # The catalog's row count is the newest measurement, whichever path took it.
            registered = session.scalars(
                sa.select(DataProduct).where(DataProduct.name == profile.product)
            ).first()
            if registered is not None:
                registered.row_count = profile.row_count
                registered.row_count_measured_at = profile.measured_at
        stored = replace(profile, id=row.id)
    return ProfileOutcome(stored, tuple(drifts), previous.id if previous else None)


def profile_published(service: PortalService, name: str, *, run_id: int | None = None) -> str:
    """Profile a product just published (its Quality tab and drift then start from its first
    build) and say how it went; a profile that fails is only reported: the product is published
    all the same, and the next refresh profiles it again."""
    try:
        outcome = profile_product(service, name, run_id=run_id)
    except PortalError as exc:
        return f"Published, but profiling it failed: {exc}"
    return f"Profiled {name}: {outcome.profile.summary}."


def data_product_names(service: PortalService) -> list[str]:
    return [entry.name for entry in service.entries()]


def profile_products(
    service: PortalService,
    names: Iterable[str] | None = None,
    *,
    run_id: int | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, ProfileOutcome]:
    """Profile several products (all data products by default); one failing never stops the rest."""
    chosen = list(names) if names is not None else data_product_names(service)
    outcomes = {}
    for done, name in enumerate(chosen):
        if on_progress:
            on_progress(done, len(chosen), name)
        outcomes[name] = profile_product(service, name, run_id=run_id)
    if on_progress:
        on_progress(len(chosen), len(chosen), "")
    service.reload()  # row counts are part of the catalog's cached entries
    return outcomes


def profile_history(service: PortalService, key: str, *, limit: int = 200) -> list[Profile]:
    """A product's profiles, oldest first (the newest `limit`)."""
    name = service.resolve(key).name
    with service.sessions() as session:
        rows = session.scalars(
            sa.select(ProductProfile)
            .where(ProductProfile.product == name)
            .order_by(ProductProfile.measured_at.desc(), ProductProfile.id.desc())
            .limit(limit)
        ).all()
        return [_from_row(r) for r in reversed(rows)]


def latest_profiles(
    service: PortalService, names: Sequence[str] | None = None, *, measured_only: bool = False
) -> dict[str, Profile]:
    """The newest profile of each product (or of `names`), in one query; ids grow with time.

    `measured_only` skips profiles that found nothing to measure (missing table, warehouse down),
    for questions about the data itself, such as its freshness.
    """
    newest = sa.select(sa.func.max(ProductProfile.id)).group_by(ProductProfile.product)
    if names is not None:
        newest = newest.where(ProductProfile.product.in_(names))
    if measured_only:
        newest = newest.where(ProductProfile.status.in_(MEASURED))
    with service.sessions() as session:
        rows = session.scalars(
            sa.select(ProductProfile).where(ProductProfile.id.in_(newest.scalar_subquery()))
        )
        return {row.product: _from_row(row) for row in rows}


def latest_profile(service: PortalService, key: str) -> Profile | None:
    name = service.resolve(key).name
    return latest_profiles(service, [name]).get(name)


# --- test results over time ----------------------------------------------------------------


@dataclass(frozen=True)
class TestRun:
    run_id: int
    at: datetime
    passed: int
    failed: int
    warned: int
    errored: int
    skipped: int
    failures: int  # failing rows, summed over the run's tests


def test_history(service: PortalService, key: str, *, runs: int = 50) -> list[TestRun]:
    """Per run, how the product's tests ended (from run_results.json, via sync), oldest first."""
    unique_id = service.resolve(key).unique_id
    with service.sessions() as session:
        rows = session.execute(
            sa.select(
                Run.id,
                Run.started_at,
                NodeResult.status,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(NodeResult.failures), 0),
            )
            .join(NodeResult, NodeResult.run_id == Run.id)
            .where(NodeResult.attached_node == unique_id, NodeResult.resource_type.in_(("test", "unit_test")))
            .group_by(Run.id, Run.started_at, NodeResult.status)
            .order_by(Run.id.desc())
        ).all()
    by_run: dict[int, dict[str, Any]] = {}
    for run_id, started, status, count, failures in rows:
        entry = by_run.setdefault(run_id, {"at": started, "failures": 0})
        entry[status] = entry.get(status, 0) + count
        if status in {"fail", "error", "warn"}:
            entry["failures"] += int(failures or 0)
    chosen = sorted(by_run)[-runs:]
    return [
        TestRun(
            run_id=run_id,
            at=by_run[run_id]["at"],
            passed=by_run[run_id].get("pass", 0),
            failed=by_run[run_id].get("fail", 0),
            warned=by_run[run_id].get("warn", 0),
            errored=by_run[run_id].get("error", 0) + by_run[run_id].get("runtime error", 0),
            skipped=by_run[run_id].get("skipped", 0),
            failures=by_run[run_id]["failures"],
        )
        for run_id in chosen
    ]
