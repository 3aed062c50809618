"""Freshness against the promised update frequency: the rules, which take plain values so tests
feed them known numbers, and the service functions that apply them to the stored profiles and
run results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.observability.history import latest_profiles, profile_history
from portal.observability.profile import Profile, SourceAge, as_utc
from portal.service import PortalService, last_successes

# --- the freshness rules -------------------------------------------------------------------

# The promised update frequencies (meta.update_frequency). A month is 31 days so that a product
# built on the first of every month is never late in a short month.
FREQUENCY_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
}


def frequency_period(update_frequency: str | None) -> timedelta | None:
    return FREQUENCY_PERIODS.get((update_frequency or "").strip().lower())


def freshness_state(age: timedelta | None, period: timedelta | None, stale_factor: float) -> str:
    """fresh while the data is at most one period old, late up to `stale_factor` periods, then stale."""
    if age is None or period is None:
        return "unknown"
    if age <= period:
        return "fresh"
    if age <= period * stale_factor:
        return "late"
    return "stale"


def source_state(age: timedelta | None, warn_after: timedelta | None, error_after: timedelta | None) -> str:
    """dbt's own source freshness rule: late (warn) past warn_after, stale (error) past error_after."""
    if age is None:
        return "unknown"
    if error_after is not None and age > error_after:
        return "stale"
    if warn_after is not None and age > warn_after:
        return "late"
    return "fresh"


@dataclass(frozen=True)
class SourceFreshness:
    label: str
    state: str
    newest: datetime | None
    age: timedelta | None
    warn_after: timedelta | None
    error_after: timedelta | None
    error: str | None = None


@dataclass(frozen=True)
class Freshness:
    state: str
    update_frequency: str | None
    newest: datetime | None
    age: timedelta | None
    basis: str  # what the age was measured on
    reason: str  # one sentence for people
    sources: tuple[SourceFreshness, ...] = ()

    @property
    def rank(self) -> int:
        return {"stale": 0, "late": 1, "unknown": 2, "fresh": 3}[self.state]


def describe_age(age: timedelta | None) -> str:
    if age is None:
        return "unknown"
    seconds = max(0.0, age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def assess_freshness(
    *,
    update_frequency: str | None,
    newest_update: datetime | None,
    profiled_at: datetime | None,
    last_success: datetime | None,
    freshness_column: str,
    stale_factor: float,
    now: datetime,
    sources: Sequence[SourceAge] = (),
) -> Freshness:
    """How fresh a product is now, from its newest freshness-column value or its last good build.

    The profile's newest `freshness_column` value is the measure the issue promises; when the
    product was built again after that profile (by plain dbt, say), the later build is the
    better evidence, so the newer of the two counts.
    """
    period = frequency_period(update_frequency)
    basis, newest = f"newest {freshness_column}", newest_update
    rebuilt_since = last_success is not None and (
        newest is None or (profiled_at is not None and last_success > profiled_at and last_success > newest)
    )
    if rebuilt_since:
        basis, newest = "last successful build", last_success
    age = max(now - newest, timedelta(0)) if newest is not None else None
    state = freshness_state(age, period, stale_factor)
    if newest is None:
        reason = f"Never built successfully, and no {freshness_column} measured yet: refresh the product."
    elif update_frequency is None:
        reason = (
            f"{describe_age(age)} old ({basis}); no update frequency is promised (meta.update_frequency)."
        )
    elif period is None:
        known = ", ".join(FREQUENCY_PERIODS)
        reason = (
            f"{describe_age(age)} old; the update frequency {update_frequency!r} is not one of {known}, "
            "so it cannot be checked."
        )
    else:
        limit = {"fresh": "within", "late": "past", "stale": "far past"}[state]
        reason = f"{describe_age(age)} old ({basis}), {limit} its {update_frequency} promise."
    return Freshness(
        state=state,
        update_frequency=update_frequency,
        newest=newest,
        age=age,
        basis=basis,
        reason=reason,
        sources=tuple(_source_freshness(s, now) for s in sources),
    )


def _source_freshness(source: SourceAge, now: datetime) -> SourceFreshness:
    age = max(now - source.newest, timedelta(0)) if source.newest else None
    return SourceFreshness(
        label=source.label,
        state=source_state(age, source.warn_after, source.error_after) if not source.error else "unknown",
        newest=source.newest,
        age=age,
        warn_after=source.warn_after,
        error_after=source.error_after,
        error=source.error,
    )


# --- freshness of stored profiles: the service functions -----------------------------------


def _freshness_of(
    service: PortalService,
    update_frequency: str | None,
    profile: Profile | None,
    last_success: datetime | None,
    now: datetime,
) -> Freshness:
    settings = service.settings
    return assess_freshness(
        update_frequency=update_frequency,
        newest_update=profile.newest_update if profile else None,
        profiled_at=profile.measured_at if profile else None,
        last_success=as_utc(last_success),
        freshness_column=settings.freshness_column,
        stale_factor=settings.freshness_stale_factor,
        now=now,
        sources=profile.sources if profile else (),
    )


def freshness(service: PortalService, key: str, *, now: datetime | None = None) -> Freshness:
    """How fresh one product is now, against its promised update frequency."""
    entry = service.entry(key)
    return freshness_for(service, [(entry.name, entry.unique_id, entry.update_frequency)], now=now)[
        entry.name
    ]


def freshness_all(service: PortalService, *, now: datetime | None = None) -> dict[str, Freshness]:
    """Freshness of every data product, by name."""
    entries = [(e.name, e.unique_id, e.update_frequency) for e in service.entries()]
    return freshness_for(service, entries, now=now)


def freshness_for(
    service: PortalService,
    products: Sequence[tuple[str, str, str | None]],
    *,
    now: datetime | None = None,
) -> dict[str, Freshness]:
    """Freshness of (name, unique_id, update_frequency) products, from stored profiles and run
    results in two queries: no warehouse query, so pages stay quick and work while a build runs.

    It reads neither the manifest nor the catalog, so the service may call it while it builds its
    catalog entries (for the catalog's health badges).
    """
    now = now or datetime.now(UTC)
    profiles = latest_profiles(service, [name for name, _, _ in products], measured_only=True)
    with service.sessions() as session:
        successes = last_successes(session, [uid for _, uid, _ in products])
    return {
        name: _freshness_of(service, frequency, profiles.get(name), successes.get(uid), now)
        for name, uid, frequency in products
    }


@dataclass(frozen=True)
class FreshnessPoint:
    at: datetime
    age_hours: float | None
    state: str


def freshness_history(
    service: PortalService, key: str, *, now: datetime | None = None
) -> list[FreshnessPoint]:
    """The data's age at each profile, then now: a saw-tooth that drops at every refresh."""
    now = now or datetime.now(UTC)
    period = frequency_period(service.entry(key).update_frequency)
    factor = service.settings.freshness_stale_factor
    points = []
    latest: datetime | None = None
    for profile in profile_history(service, key):
        if profile.newest_update is not None:
            latest = profile.newest_update
        age = profile.measured_at - latest if latest else None
        points.append(FreshnessPoint(profile.measured_at, _hours(age), freshness_state(age, period, factor)))
    current = freshness(service, key, now=now)
    points.append(FreshnessPoint(now, _hours(current.age), current.state))
    return points


def _hours(age: timedelta | None) -> float | None:
    return None if age is None else max(age.total_seconds(), 0.0) / 3600
