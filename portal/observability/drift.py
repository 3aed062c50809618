"""Schema and distribution drift between successive profiles: the detection, which takes plain
values so tests feed it known numbers, and the stored drift events (listing and acknowledging them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from catalog_db.models import DriftEvent
from portal import audit
from portal.errors import NotFound
from portal.observability.profile import ColumnProfile, Profile
from portal.settings import Settings

if TYPE_CHECKING:
    from portal.auth.identity import Identity
    from portal.service import PortalService


# --- detecting drift -----------------------------------------------------------------------


@dataclass(frozen=True)
class DriftThresholds:
    null_rate_delta: float = 0.1
    distinct_change: float = 0.5
    mean_shift: float = 0.5
    psi: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        return cls(
            null_rate_delta=settings.drift_null_rate_delta,
            distinct_change=settings.drift_distinct_change,
            mean_shift=settings.drift_mean_shift,
            psi=settings.drift_psi,
        )


@dataclass(frozen=True)
class Drift:
    kind: str  # schema or distribution
    change: str  # added, removed, retyped, null_rate, distinct_count, mean, psi
    column: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return describe_drift(self.change, self.column, self.detail)


def describe_drift(change: str, column: str | None, detail: Mapping[str, Any]) -> str:
    """One sentence for a drift event, the same on every face."""
    before, after = detail.get("from"), detail.get("to")
    if change == "added":
        return f"Column {column} was added ({after})."
    if change == "removed":
        return f"Column {column} was removed (was {before})."
    if change == "retyped":
        return f"Column {column} changed type from {before} to {after}."
    if change == "null_rate":
        return f"Null rate of {column} moved from {_pct(before)} to {_pct(after)}."
    if change == "distinct_count":
        return (
            f"Distinct values of {column} went from {before:,} to {after:,} ({detail.get('change', 0):+.0%})."
        )
    if change == "mean":
        shift = detail.get("shift_sd")
        spread = "it was constant" if shift is None else f"{shift:.2f} standard deviations"
        return f"Mean of {column} moved from {before:.4g} to {after:.4g} ({spread})."
    if change == "psi":
        return (
            f"Value distribution of {column} shifted (population stability index {detail.get('psi', 0):.3f})."
        )
    return f"{change} on {column}"


def _pct(value: Any) -> str:
    return "unknown" if value is None else f"{value:.1%}"


def population_stability_index(
    expected: Mapping[Any, int], actual: Mapping[Any, int], *, floor: float = 1e-4
) -> float:
    """PSI = sum over categories of (a - e) * ln(a / e), with shares floored so that a category
    present on one side only counts as a large (finite) shift instead of an infinite one."""
    expected_total, actual_total = sum(expected.values()), sum(actual.values())
    if expected_total <= 0 or actual_total <= 0:
        return 0.0
    psi = 0.0
    for category in set(expected) | set(actual):
        e = max(expected.get(category, 0) / expected_total, floor)
        a = max(actual.get(category, 0) / actual_total, floor)
        psi += (a - e) * math.log(a / e)
    return psi


def _normal_type(type_name: str) -> str:
    return re.sub(r"\s+", "", type_name).upper()


def detect_drift(previous: Profile, current: Profile, thresholds: DriftThresholds) -> list[Drift]:
    """Schema changes and threshold crossings between two successive measured profiles."""
    if not (previous.measured and current.measured):
        return []
    before = {c.name: c for c in previous.columns}
    after = {c.name: c for c in current.columns}
    drifts = [
        Drift("schema", "added", name, {"to": after[name].type}) for name in after if name not in before
    ]
    drifts += [
        Drift("schema", "removed", name, {"from": before[name].type}) for name in before if name not in after
    ]
    for name in after:
        if name in before and _normal_type(before[name].type) != _normal_type(after[name].type):
            drifts.append(
                Drift("schema", "retyped", name, {"from": before[name].type, "to": after[name].type})
            )
    if previous.status != "ok" or current.status != "ok":
        return drifts  # an empty table has no distribution to compare
    for name, now in after.items():
        then = before.get(name)
        if then is None or _normal_type(then.type) != _normal_type(now.type):
            continue
        drifts += _column_drift(then, now, thresholds)
    return drifts


def _column_drift(then: ColumnProfile, now: ColumnProfile, t: DriftThresholds) -> list[Drift]:
    found = []
    name = now.name
    # A tiny tolerance so that a change exactly at the threshold counts despite float rounding.
    eps = 1e-9
    if then.null_rate is not None and now.null_rate is not None:
        delta = now.null_rate - then.null_rate
        if abs(delta) >= t.null_rate_delta - eps:
            found.append(
                Drift(
                    "distribution",
                    "null_rate",
                    name,
                    {
                        "from": then.null_rate,
                        "to": now.null_rate,
                        "delta": delta,
                        "threshold": t.null_rate_delta,
                    },
                )
            )
    if then.distinct and now.distinct is not None:
        change = (now.distinct - then.distinct) / then.distinct
        if abs(change) >= t.distinct_change - eps:
            found.append(
                Drift(
                    "distribution",
                    "distinct_count",
                    name,
                    {
                        "from": then.distinct,
                        "to": now.distinct,
                        "change": change,
                        "threshold": t.distinct_change,
                    },
                )
            )
    if then.mean is not None and now.mean is not None:
        spread = then.stddev or 0.0
        moved = abs(now.mean - then.mean)
        if spread > 0:
            shift = moved / spread
            crossed = shift >= t.mean_shift - eps
        else:  # a constant column: any move of its value is a shift
            shift = math.inf if not math.isclose(moved, 0.0, abs_tol=1e-12) else 0.0
            crossed = shift > 0
        if crossed:
            found.append(
                Drift(
                    "distribution",
                    "mean",
                    name,
                    {
                        "from": then.mean,
                        "to": now.mean,
                        "shift_sd": shift if math.isfinite(shift) else None,
                        "threshold": t.mean_shift,
                    },
                )
            )
    if then.values is not None and now.values is not None:
        # Nulls are left out: the null rate has its own check, and counting them here too would
        # report one change twice.
        psi = population_stability_index(
            {v: n for v, n in then.values if v is not None}, {v: n for v, n in now.values if v is not None}
        )
        if psi >= t.psi - eps:
            found.append(Drift("distribution", "psi", name, {"psi": psi, "threshold": t.psi}))
    return found


# --- stored drift events: the service functions --------------------------------------------


@dataclass(frozen=True)
class DriftRecord:
    id: int
    product: str
    kind: str
    change: str
    column: str | None
    detail: dict[str, Any]
    detected_at: datetime
    acknowledged: bool
    acknowledged_by: str | None

    @property
    def description(self) -> str:
        return describe_drift(self.change, self.column, self.detail)


def _drift_record(row: DriftEvent) -> DriftRecord:
    return DriftRecord(
        id=row.id,
        product=row.product,
        kind=row.kind,
        change=row.change,
        column=row.column,
        detail=dict(row.detail or {}),
        detected_at=row.detected_at,
        acknowledged=row.acknowledged,
        acknowledged_by=row.acknowledged_by,
    )


def drift_events(
    service: PortalService, key: str | None = None, *, open_only: bool = False, limit: int = 200
) -> list[DriftRecord]:
    """Drift events, newest first; of one product when `key` is given."""
    query = sa.select(DriftEvent).order_by(DriftEvent.detected_at.desc(), DriftEvent.id.desc()).limit(limit)
    if key is not None:
        query = query.where(DriftEvent.product == service.resolve(key).name)
    if open_only:
        query = query.where(DriftEvent.acknowledged.is_(False))
    with service.sessions() as session:
        return [_drift_record(row) for row in session.scalars(query)]


def acknowledge_drift(service: PortalService, event_id: int, identity: Identity) -> DriftRecord:
    """Mark a drift event as seen (it stops counting as open), with who and when."""
    with service.sessions.begin() as session:
        row = session.get(DriftEvent, event_id)
        if row is None:
            raise NotFound(f"There is no drift event {event_id}; list them with drift_events().")
        if not row.acknowledged:
            row.acknowledged = True
            row.acknowledged_by = identity.user
            row.acknowledged_at = datetime.now(UTC)
        record = _drift_record(row)
    audit.record_event(
        service,
        identity.user,
        "drift.acknowledged",
        "drift_event",
        str(event_id),
        {"product": record.product},
    )
    return record
