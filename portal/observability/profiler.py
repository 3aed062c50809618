"""The profiler: measures one relation in the warehouse into a Profile.

A profile is measured with a few statements per product, whatever its width: one aggregate over
every column (row count, nulls, distinct counts, numeric and time ranges, primary key
duplicates), one GROUPING SETS scan for the value counts of low-cardinality columns, and one
UNION ALL over the upstream sources' `loaded_at_field`. The statements are sqlglot expression
trees over column names read from the warehouse itself, so they run unchanged on DuckDB and
Trino and nothing is pasted into SQL.

Everything that can go wrong in the warehouse (not reachable, table missing, empty table, a
column type the profiler does not know) becomes a profile with a status and a message rather
than an exception: the history then shows when a product broke, and a refresh loop carries on.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlglot
from sqlglot import exp

from portal.observability.profile import (
    BOOLEAN,
    NUMERIC,
    OTHER,
    STRING,
    TEMPORAL,
    ColumnProfile,
    Profile,
    SourceAge,
    as_utc,
    column_kind,
)
from portal.warehouse import (
    ColumnInfo,
    Relation,
    RelationMissing,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)

log = logging.getLogger(__name__)


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
