"""Quality: profiles measured in the warehouse, freshness against the promised update frequency,
schema and distribution drift between successive profiles, and the health overview.

A profile is measured with a few statements per product, whatever its width: one aggregate over
every column (row count, nulls, distinct counts, numeric and time ranges, primary key
duplicates), one GROUPING SETS scan for the value counts of low-cardinality columns, and one
UNION ALL over the upstream sources' `loaded_at_field`. The statements are sqlglot expression
trees over column names read from the warehouse itself, so they run unchanged on DuckDB and
Trino and nothing is pasted into SQL.

Everything that can go wrong in the warehouse (not reachable, table missing, empty table, a
column type the profiler does not know) becomes a profile with a status and a message rather
than an exception: the history then shows when a product broke, and a refresh loop carries on.

The pure parts (`measure` aside, which needs a warehouse) take plain values, so tests feed them
known numbers; the service functions at the end store and read the time series.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from catalog_db.models import DataProduct, DriftEvent, NodeResult, ProductProfile, Run
from portal.errors import NotFound
from portal.project.artifacts import Manifest, Node
from portal.settings import Settings
from portal.warehouse import (
    ColumnInfo,
    Relation,
    RelationMissing,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)

if TYPE_CHECKING:  # products.py may import this module for its health badges
    from portal.service import Identity, PortalService

log = logging.getLogger(__name__)

# --- column kinds --------------------------------------------------------------------------

NUMERIC, TEMPORAL, BOOLEAN, STRING, OTHER = "numeric", "temporal", "boolean", "string", "other"
# First word of the type name, lower case, as DuckDB and Trino spell it.
_KIND_OF_WORD = {
    **dict.fromkeys(
        ("tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
         "ubigint", "uhugeint", "decimal", "numeric", "real", "float", "double", "int2", "int4", "int8",
         "float4", "float8"),
        NUMERIC,
    ),
    **dict.fromkeys(
        ("date", "timestamp", "timestamptz", "timestamp_s", "timestamp_ms", "timestamp_ns", "datetime",
         "time", "timetz"),
        TEMPORAL,
    ),
    **dict.fromkeys(("boolean", "bool"), BOOLEAN),
    **dict.fromkeys(("varchar", "char", "character", "text", "string", "uuid", "bpchar"), STRING),
}  # fmt: skip


def column_kind(type_name: str) -> str:
    """numeric, temporal, boolean, string, or other (lists, structs, maps, blobs, intervals ...).

    Columns of kind `other` get only a null count: distinct counts and ranges are not defined
    for every such type on every engine, and a profile must never fail on an odd column.
    """
    text = type_name.strip().lower()
    if not text or text.endswith("]"):  # DuckDB lists: INTEGER[]
        return OTHER
    word = re.split(r"[\s(]", text, maxsplit=1)[0]
    return _KIND_OF_WORD.get(word, OTHER)


# --- what a profile holds ------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    type: str
    kind: str
    nulls: int | None = None
    null_rate: float | None = None  # None for an empty table: no rows, no rate
    distinct: int | None = None
    minimum: Any = None  # JSON-ready: a number or an ISO date/time
    maximum: Any = None
    mean: float | None = None
    stddev: float | None = None
    # Value counts of a low-cardinality column, most frequent first; values cast to text.
    values: tuple[tuple[str | None, int], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "nulls": self.nulls,
            "null_rate": self.null_rate,
            "distinct": self.distinct,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "stddev": self.stddev,
        }
        if self.values is not None:
            data["values"] = [[value, count] for value, count in self.values]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnProfile:
        values = data.get("values")
        return cls(
            name=data["name"],
            type=data.get("type", ""),
            kind=data.get("kind", OTHER),
            nulls=data.get("nulls"),
            null_rate=data.get("null_rate"),
            distinct=data.get("distinct"),
            minimum=data.get("min"),
            maximum=data.get("max"),
            mean=data.get("mean"),
            stddev=data.get("stddev"),
            values=None if values is None else tuple((v, int(n)) for v, n in values),
        )


@dataclass(frozen=True)
class SourceAge:
    """An upstream source with a freshness promise, and the newest `loaded_at_field` seen in it."""

    unique_id: str
    label: str
    loaded_at_field: str
    warn_after: timedelta | None
    error_after: timedelta | None
    newest: datetime | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "unique_id": self.unique_id,
            "label": self.label,
            "loaded_at_field": self.loaded_at_field,
            "warn_after_s": _seconds(self.warn_after),
            "error_after_s": _seconds(self.error_after),
            "newest": self.newest.isoformat() if self.newest else None,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceAge:
        return cls(
            unique_id=data["unique_id"],
            label=data.get("label", data["unique_id"]),
            loaded_at_field=data.get("loaded_at_field", ""),
            warn_after=_delta(data.get("warn_after_s")),
            error_after=_delta(data.get("error_after_s")),
            newest=as_utc(data.get("newest")),
            error=data.get("error"),
        )


MEASURED = ("ok", "empty")  # profile statuses that looked at a table
PROFILE_STATUS_TEXT = {
    "ok": "measured",
    "empty": "the table is empty",
    "missing": "the table does not exist in the warehouse",
    "unavailable": "the warehouse could not be reached",
    "error": "the warehouse refused the profile query",
}


@dataclass(frozen=True)
class Profile:
    product: str
    status: str  # ok, empty, missing, unavailable, error (catalog_db.models.PROFILE_STATUSES)
    measured_at: datetime
    unique_id: str | None = None
    row_count: int | None = None
    columns: tuple[ColumnProfile, ...] = ()
    primary_key: tuple[str, ...] = ()
    duplicate_keys: int | None = None
    newest_update: datetime | None = None
    sources: tuple[SourceAge, ...] = ()
    message: str | None = None
    elapsed_s: float | None = None
    id: int | None = None
    run_id: int | None = None

    @property
    def measured(self) -> bool:
        """There was a table to look at (possibly empty)."""
        return self.status in MEASURED

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def summary(self) -> str:
        if self.status == "ok":
            return f"{self.row_count:,} rows, {len(self.columns)} columns"
        return self.message or PROFILE_STATUS_TEXT.get(self.status, self.status)


# --- measuring -----------------------------------------------------------------------------


def _count(expression: exp.Expr | None = None, *, distinct: bool = False) -> exp.Expr:
    if expression is None:
        return exp.Count(this=exp.Star())
    return exp.Count(this=exp.Distinct(expressions=[expression]) if distinct else expression)


def _as_double(column: exp.Expr) -> exp.Expr:
    # Averages of DECIMAL columns would come back as DECIMAL (and overflow on big sums).
    return exp.cast(column, "double")


def measure(
    warehouse: Warehouse,
    relation: Relation,
    *,
    product: str,
    unique_id: str | None = None,
    primary_key: Sequence[str] = (),
    freshness_column: str | None = None,
    sources: Sequence[tuple[Relation, SourceAge]] = (),
    max_categories: int = 20,
    approximate_distinct: bool = False,
    now: datetime | None = None,
) -> Profile:
    """Profile one relation. Warehouse failures come back as a Profile with a status, never raised."""
    measured_at = now or datetime.now(UTC)
    started = time.perf_counter()
    base = Profile(product=product, unique_id=unique_id, status="ok", measured_at=measured_at)
    try:
        with warehouse.session():
            described = warehouse.columns(relation)
            profile = _aggregate(
                warehouse, relation, described, base, primary_key, freshness_column, approximate_distinct
            )
            if profile.row_count:
                profile = _value_counts(warehouse, relation, profile, max_categories)
            else:
                profile = replace(profile, status="empty", message=f"{relation} has no rows.")
    except RelationMissing as exc:
        profile = replace(base, status="missing", message=str(exc))
    except WarehouseUnavailable as exc:
        profile = replace(base, status="unavailable", message=str(exc))
    except WarehouseError as exc:
        profile = replace(base, status="error", message=str(exc))
    except Exception as exc:  # a profiler bug must not stop a refresh loop or break a page
        log.exception("profiling %s failed", relation)
        message = (
            f"The profiler failed on {relation} ({type(exc).__name__}: {exc}); the portal's log has details."
        )
        profile = replace(base, status="error", message=message)
    if sources and profile.status != "unavailable":
        profile = replace(profile, sources=_source_ages(warehouse, sources))
    return replace(profile, elapsed_s=time.perf_counter() - started)


def _aggregate(
    warehouse: Warehouse,
    relation: Relation,
    described: Sequence[ColumnInfo],
    base: Profile,
    primary_key: Sequence[str],
    freshness_column: str | None,
    approximate_distinct: bool = False,
) -> Profile:
    """Row count and every column's statistics in one statement."""
    table = warehouse.table(relation)
    selected: list[exp.Expr] = [_count()]
    slots: list[dict[str, int]] = []  # per column: statistic -> position in the result row

    def add(expression: exp.Expr) -> int:
        selected.append(expression)
        return len(selected) - 1

    for info in described:
        column = exp.column(info.name, quoted=True)
        kind = column_kind(info.type)
        slot = {"nonnull": add(_count(column))}
        if kind != OTHER:
            distinct = exp.ApproxDistinct(this=column.copy()) if approximate_distinct else None
            slot["distinct"] = add(distinct or _count(column, distinct=True))
        if kind in {NUMERIC, TEMPORAL}:
            slot["min"] = add(exp.Min(this=column.copy()))
            slot["max"] = add(exp.Max(this=column.copy()))
        if kind == NUMERIC:
            slot["mean"] = add(exp.Avg(this=_as_double(column.copy())))
            slot["stddev"] = add(exp.StddevSamp(this=_as_double(column.copy())))
        slots.append(slot)

    names = {c.name for c in described}
    key = tuple(primary_key)
    missing_key = [c for c in key if c not in names]
    key_slot = None
    if key and not missing_key:
        # Distinct keys by GROUP BY rather than count(DISTINCT ...): it takes several columns on
        # both engines, and counts a null key as a key (a null primary key is a duplicate risk too).
        groups = (
            exp.select(exp.Literal.number(1))
            .from_(table.copy())
            .group_by(*(exp.column(c, quoted=True) for c in key))
        )
        key_slot = add(exp.select(_count()).from_(groups.subquery()).subquery())

    statement = exp.select(*selected).from_(table)
    row = _first_row(warehouse, statement)
    row_count = int(row[0])
    columns = []
    newest_update = None
    for info, slot in zip(described, slots, strict=True):
        nonnull = int(row[slot["nonnull"]])
        nulls = row_count - nonnull
        stats = {name: _plain(row[position]) for name, position in slot.items() if name != "nonnull"}
        columns.append(
            ColumnProfile(
                name=info.name,
                type=info.type,
                kind=column_kind(info.type),
                nulls=nulls,
                null_rate=nulls / row_count if row_count else None,
                distinct=None if stats.get("distinct") is None else int(stats["distinct"]),
                minimum=stats.get("min"),
                maximum=stats.get("max"),
                mean=stats.get("mean"),
                stddev=stats.get("stddev"),
            )
        )
        if freshness_column and info.name.lower() == freshness_column.lower() and "max" in slot:
            newest_update = as_utc(row[slot["max"]])
    message = None
    if missing_key:
        message = (
            f"The primary key column(s) {', '.join(missing_key)} are not in {relation}; fix the model's "
            "`meta.primary_key` or its unique test to count duplicate keys."
        )
    return replace(
        base,
        row_count=row_count,
        columns=tuple(columns),
        primary_key=key,
        duplicate_keys=None if key_slot is None else row_count - int(row[key_slot]),
        newest_update=newest_update,
        message=message,
    )


def _value_counts(warehouse: Warehouse, relation: Relation, profile: Profile, max_categories: int) -> Profile:
    """Value counts of every low-cardinality column in one GROUPING SETS scan."""
    chosen = [
        c
        for c in profile.columns
        if c.kind in {STRING, BOOLEAN, NUMERIC} and c.distinct is not None and c.distinct <= max_categories
    ]
    if not chosen:
        return profile
    columns = [exp.column(c.name, quoted=True) for c in chosen]
    flags = [exp.Grouping(expressions=[c.copy()]) for c in columns]
    values = [exp.cast(c.copy(), "varchar") for c in columns]
    statement = (
        exp.select(*flags, *values, _count())
        .from_(warehouse.table(relation))
        .group_by(exp.GroupingSets(expressions=[exp.Tuple(expressions=[c.copy()]) for c in columns]))
    )
    counts: dict[str, list[tuple[str | None, int]]] = {c.name: [] for c in chosen}
    width = len(chosen)
    for row in _rows(warehouse, statement):
        # In the grouping set of column i, GROUPING(column i) is 0 and every other flag 1.
        index = next(i for i in range(width) if int(row[i]) == 0)
        value = _plain(row[width + index])
        counts[chosen[index].name].append((None if value is None else str(value), int(row[-1])))
    updated = tuple(
        replace(c, values=tuple(sorted(counts[c.name], key=_by_frequency))) if c.name in counts else c
        for c in profile.columns
    )
    return replace(profile, columns=updated)


def _by_frequency(value_count: tuple[str | None, int]) -> tuple[int, bool, str]:
    """Most frequent first; ties by value, null last."""
    value, count = value_count
    return (-count, value is None, value or "")


def _source_ages(
    warehouse: Warehouse, sources: Sequence[tuple[Relation, SourceAge]]
) -> tuple[SourceAge, ...]:
    """The newest loaded_at_field of every upstream source, in one UNION ALL.

    A source that cannot be read marks every source of this profile with the error (one
    statement, one answer); the product's own profile is unaffected.
    """
    parts = []
    try:
        for index, (relation, source) in enumerate(sources):
            loaded_at = _loaded_at_expression(source.loaded_at_field, warehouse.dialect)
            # Each branch says which source it is: UNION ALL promises no order of its rows.
            parts.append(
                exp.select(exp.Literal.number(index), exp.Max(this=loaded_at)).from_(
                    warehouse.table(relation)
                )
            )
        statement: exp.Query = parts[0]
        for part in parts[1:]:
            statement = exp.union(statement, part, distinct=False)
        newest = {int(index): value for index, value in _rows(warehouse, statement)}
    except WarehouseError as exc:
        return tuple(replace(source, error=str(exc)) for _, source in sources)
    except sqlglot.errors.ParseError as exc:
        message = f"A source's loaded_at_field is not an SQL expression the portal can read ({exc})."
        return tuple(replace(source, error=message) for _, source in sources)
    return tuple(replace(source, newest=as_utc(newest.get(i))) for i, (_, source) in enumerate(sources))


def _loaded_at_expression(field_sql: str, dialect: str) -> exp.Expr:
    """dbt's loaded_at_field: a column name, or an SQL expression written by the project's authors."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field_sql):
        return exp.column(field_sql, quoted=True)
    return sqlglot.parse_one(field_sql, read=dialect)


def _rows(warehouse: Warehouse, statement: exp.Expr) -> list[tuple[Any, ...]]:
    frame = warehouse.query(statement.sql(dialect=warehouse.dialect))
    return list(frame.itertuples(index=False, name=None))


def _first_row(warehouse: Warehouse, statement: exp.Expr) -> tuple[Any, ...]:
    return _rows(warehouse, statement)[0]


def _plain(value: Any) -> Any:
    """A result cell as a JSON-ready value: numbers stay numbers, times become ISO text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, datetime):
        moment = as_utc(value)
        return moment.isoformat() if moment else None
    if hasattr(value, "isoformat"):  # date, time
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar
        return _plain(value.item())
    return str(value)


def as_utc(value: Any) -> datetime | None:
    """A datetime in UTC. Naive values are UTC (dbt writes UTC without a zone); dates are midnight."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


# --- what the dbt project says about a model -----------------------------------------------


def primary_key(manifest: Manifest, node: Node) -> tuple[str, ...]:
    """The model's primary key, from what its authors declared, most explicit first.

    `meta.primary_key`, then a primary_key constraint (model or column level, dbt contracts),
    then a unique_combination_of_columns test, then the first column (in the model's order)
    with a unique test, preferring one that is also tested not_null.
    """
    declared = node.meta.get("primary_key")
    if declared:
        return (declared,) if isinstance(declared, str) else tuple(str(c) for c in declared)
    raw = manifest.raw.get("nodes", {}).get(node.unique_id, {})
    for constraint in raw.get("constraints") or []:
        if constraint.get("type") == "primary_key" and constraint.get("columns"):
            return tuple(constraint["columns"])
    for name, column in (raw.get("columns") or {}).items():
        if any(c.get("type") == "primary_key" for c in column.get("constraints") or []):
            return (column.get("name") or name,)
    tests = [t.test for t in manifest.tests_of(node.unique_id) if t.test is not None]
    for test in tests:
        if test.name.endswith("unique_combination_of_columns"):
            combination = test.kwargs.get("combination_of_columns")
            if combination:
                return tuple(str(c) for c in combination)
    unique = {t.column_name for t in tests if t.name == "unique" and t.column_name}
    not_null = {t.column_name for t in tests if t.name == "not_null" and t.column_name}
    order = list(node.columns)
    candidates = sorted(
        unique, key=lambda c: (c not in not_null, order.index(c) if c in order else len(order))
    )
    return (candidates[0],) if candidates else ()


def upstream_sources(manifest: Manifest, node: Node) -> list[Node]:
    """Every source the model reads, directly or through other models."""
    seen: set[str] = set()
    found: list[Node] = []
    stack = list(node.depends_on)
    while stack:
        unique_id = stack.pop()
        if unique_id in seen:
            continue
        seen.add(unique_id)
        upstream = manifest.get(unique_id)
        if upstream is None:
            continue
        if upstream.resource_type == "source":
            found.append(upstream)
        stack.extend(upstream.depends_on)
    return sorted(found, key=lambda n: n.unique_id)


_DBT_PERIODS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _dbt_period(spec: Any) -> timedelta | None:
    """dbt's {count: 48, period: hour}."""
    if not isinstance(spec, Mapping) or not spec.get("count") or spec.get("period") not in _DBT_PERIODS:
        return None
    return int(spec["count"]) * _DBT_PERIODS[spec["period"]]


def source_promise(manifest: Manifest, source: Node) -> SourceAge | None:
    """The source's loaded_at_field and freshness thresholds, if it promises freshness at all."""
    raw = manifest.raw.get("sources", {}).get(source.unique_id, {})
    config = raw.get("config") or {}
    loaded_at = config.get("loaded_at_field") or raw.get("loaded_at_field")
    freshness = config.get("freshness") or raw.get("freshness") or {}
    warn, error = _dbt_period(freshness.get("warn_after")), _dbt_period(freshness.get("error_after"))
    if not loaded_at or (warn is None and error is None):
        return None
    return SourceAge(source.unique_id, source.label, str(loaded_at), warn, error)


# --- freshness -----------------------------------------------------------------------------

FRESHNESS_STATES = ("fresh", "late", "stale", "unknown")
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


# --- drift ---------------------------------------------------------------------------------


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


# --- stored profiles and drift: the service functions --------------------------------------


@dataclass(frozen=True)
class ProfileOutcome:
    profile: Profile
    drift: tuple[Drift, ...]
    compared_with: int | None  # the id of the previous profile, if there was one to compare


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


def data_product_names(service: PortalService) -> list[str]:
    return [entry.name for entry in service.catalog()]


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


def _latest_profiles(
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
    return _latest_profiles(service, [name]).get(name)


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
    service.record_audit(
        identity, "drift.acknowledged", "drift_event", str(event_id), {"product": record.product}
    )
    return record


def _last_successes(service: PortalService, unique_ids: Sequence[str]) -> dict[str, datetime]:
    with service.sessions() as session:
        rows = session.execute(
            sa.select(NodeResult.unique_id, sa.func.max(NodeResult.completed_at))
            .where(NodeResult.unique_id.in_(unique_ids), NodeResult.status == "success")
            .group_by(NodeResult.unique_id)
        )
        return {uid: moment for uid, moment in rows if moment is not None}


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
    entry = service.product(key).entry
    return freshness_for(service, [(entry.name, entry.unique_id, entry.update_frequency)], now=now)[
        entry.name
    ]


def freshness_all(service: PortalService, *, now: datetime | None = None) -> dict[str, Freshness]:
    """Freshness of every data product, by name."""
    entries = [(e.name, e.unique_id, e.update_frequency) for e in service.catalog()]
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
    profiles = _latest_profiles(service, [name for name, _, _ in products], measured_only=True)
    successes = _last_successes(service, [uid for _, uid, _ in products])
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
    detail = service.product(key)
    period = frequency_period(detail.entry.update_frequency)
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


# --- the health overview -------------------------------------------------------------------

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
    latest = _latest_profiles(service, [e.name for e in entries])
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
