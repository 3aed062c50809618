"""What a profile holds: column kinds, each column's statistics, the ages of the upstream sources,
and what the dbt project declares about a model (its primary key, the sources it reads and their
freshness promises).

portal.observability.profiler measures profiles, portal.observability.history stores them and
portal.observability.drift compares them. Everything here takes plain values, so tests feed it
known numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from portal.project.artifacts import Manifest, Node
from portal.project.statuses import PROFILE_STATUS_TEXT

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


# --- plain values --------------------------------------------------------------------------


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
