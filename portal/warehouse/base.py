"""The warehouse interface: read-only, bounded access to built relations.

Both engines share this class's SQL building. Queries are assembled as sqlglot expression
trees, never by pasting strings: column names are checked against the relation's real
columns first, and filter values become literals, so nothing a user types is ever parsed
as SQL. A preview is bounded before anything is built (`check_request`: how many filters and
columns, how long a value), each value is read as its column's type here, so the engine is
never the one to refuse it, and an engine's refusal never quotes the statement built.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlglot
import sqlglot.errors
from sqlglot import exp

from portal.errors import Kind, UpstreamError
from portal.warehouse.export import EXPORT_FORMATS, Export, encoded, unwritable_columns

# Statement kinds that change something; refused anywhere inside a query handed to `query()`.
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command)


class WarehouseError(UpstreamError):
    """A warehouse problem the user can act on; the message says what to do."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse is not built, not reachable or busy."""

    kind = Kind.UNAVAILABLE
    headline = "The warehouse is not available."


class AccessDenied(WarehouseError):
    """The warehouse's own access control refused the user the query ran as (HTTP 403)."""

    kind = Kind.FORBIDDEN


class RelationMissing(WarehouseError):
    """The relation a product points at does not exist in the warehouse (registered, not built yet)."""

    kind = Kind.CONFLICT


class QueryTimeout(WarehouseError):
    """A query ran longer than the configured timeout and was interrupted."""

    kind = Kind.TIMEOUT


class BadRequest(WarehouseError):
    """The request itself is wrong (unknown column, bad filter, limit over the maximum)."""

    kind = Kind.INVALID


@dataclass(frozen=True)
class Relation:
    """Where a built model lives. `database` is the DuckDB catalog or the Trino catalog."""

    database: str | None
    schema: str | None
    name: str

    def __str__(self) -> str:
        return ".".join(part for part in (self.database, self.schema, self.name) if part)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str


FILTER_OPS = ("=", "!=", "<", "<=", ">", ">=", "contains", "is null", "is not null")

# What one preview may ask for. Each filter is a condition in two statements and each chosen
# column an item of the select list, so without a bound a request's cost (and the depth of the
# trees sqlglot walks) grows with whatever a caller sends; a value's length bounds the SQL's.
MAX_FILTERS = 50
MAX_COLUMNS = 500
MAX_VALUE_CHARS = 1000
_SHOWN_CHARS = 60  # how much of a name or value a message quotes

_T = exp.DataType.Type
# Integer types by their bits, signed and unsigned; a value outside a type's range never reaches
# the engine (which would refuse it with the statement, or wrap it).
_SIGNED_BITS = {_T.TINYINT: 8, _T.SMALLINT: 16, _T.INT: 32, _T.BIGINT: 64, _T.INT128: 128}
_UNSIGNED_BITS = {_T.UTINYINT: 8, _T.USMALLINT: 16, _T.UINT: 32, _T.UBIGINT: 64, _T.UINT128: 128}
_FLOATS = {_T.FLOAT: 3.4028234663852886e38, _T.DOUBLE: 1.7976931348623157e308}  # REAL, DOUBLE
_TEXTS = {*exp.DataType.TEXT_TYPES, _T.ENUM}  # compared as text, no cast
_NAIVE_TIMESTAMPS = {
    _T.TIMESTAMP,
    _T.DATETIME,
    _T.TIMESTAMP_S,
    _T.TIMESTAMP_MS,
    _T.TIMESTAMP_NS,
    _T.TIMESTAMPNTZ,
}
_NESTED = {_T.ARRAY, _T.LIST, _T.STRUCT, _T.MAP, _T.OBJECT, _T.NESTED, _T.UNION}
_UNCOMPARABLE = {*_NESTED, _T.JSON, _T.JSONB}  # no min, max or DISTINCT on every engine
_COMPARISONS: dict[str, Any] = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}
# DuckDB appends the statement around an error ("LINE 1: SELECT ...", then a caret line).
_ECHOED_SQL = re.compile(r"\s*LINE \d+:[^\n]*(?:\n[ \t]*\^+)?")


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class ColumnSummary:
    """One column of a filtered result, as the warehouse aggregated it over every matching row.
    `distinct`, `min` and `max` are None for a column of a nested or JSON type (not comparable)."""

    column: str
    type: str
    nulls: int
    distinct: int | None
    min: Any
    max: Any


@dataclass
class Preview:
    relation: Relation
    columns: list[str]
    rows: pd.DataFrame
    total_rows: int
    limit: int
    elapsed_s: float
    sql: str
    extra: dict[str, Any] = field(default_factory=dict)
    summary: list[ColumnSummary] | None = None  # when asked for: each column over all matching rows

    @property
    def truncated(self) -> bool:
        return self.total_rows > len(self.rows)


def _shown(text: str) -> str:
    """A name or value as a message quotes it: repr (so NULs and surrogates are escapes), cut short."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…")


def check_request(columns: Sequence[str] | None, filters: Sequence[Filter]) -> None:
    """Refuse a preview that asks for too much, before any SQL is built or sent: more columns or
    filters than the caps, a value longer than the cap, or one that is not text every engine can
    take (a NUL, a lone surrogate)."""
    if columns is not None and len(columns) > MAX_COLUMNS:
        raise BadRequest(
            f"Ask for at most {MAX_COLUMNS} columns (got {len(columns):,}); leave the columns out to get "
            "every column."
        )
    if len(filters) > MAX_FILTERS:
        raise BadRequest(
            f"Send at most {MAX_FILTERS} filters (got {len(filters):,}); every filter must hold, so a few "
            "narrow ones say the same."
        )
    for flt in filters:
        if flt.value is None:
            continue
        text, named = str(flt.value), f"The value of the filter on {_shown(flt.column)}"
        if len(text) > MAX_VALUE_CHARS:
            raise BadRequest(f"{named} is {len(text):,} characters long; send at most {MAX_VALUE_CHARS:,}.")
        if "\x00" in text:
            raise BadRequest(f"{named} contains a NUL character (\\x00), which no value may hold; remove it.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(
                f"{named} is not valid Unicode text: it holds a lone surrogate; send UTF-8 text."
            ) from None


def all_of(conditions: Sequence[exp.Expression]) -> exp.Expression | None:
    """Every condition, as a balanced tree of ANDs, in order.

    The tree's depth grows with the logarithm of the number of conditions, not with the number:
    sqlglot walks and copies trees recursively, and one `where()` per filter nested one level each
    (200 filters overflowed the stack; `exp.and_` is a left-deep chain as deep as the count).
    Each condition is one comparison, which binds tighter than AND, so no parentheses are needed.
    """
    level = list(conditions)
    while len(level) > 1:
        paired: list[exp.Expression] = [
            exp.And(this=level[i], expression=level[i + 1]) for i in range(0, len(level) - 1, 2)
        ]
        level = paired + level[len(paired) * 2 :]
    return level[0] if level else None


class Warehouse(ABC):
    """Read-only access to one warehouse. Implementations provide `_fetch`, `columns` and `describe`."""

    dialect: str = ""
    engine_name: str = ""

    def __init__(self, *, timeout_s: float, max_rows: int) -> None:
        self.timeout_s = timeout_s
        self.max_rows = max_rows

    # -- what implementations provide -------------------------------------------------------
    @abstractmethod
    def columns(self, relation: Relation) -> list[ColumnInfo]:
        """The relation's columns in order; RelationMissing if it does not exist."""

    @abstractmethod
    def describe(self, sql: str) -> list[ColumnInfo] | None:
        """The columns a query returns, in order, with the engine's names for their types; None
        when the engine can only tell the types from a returned row and the query returns none.
        Runs read-only (like `query`); the query's own errors are the engine's WarehouseError."""

    @abstractmethod
    def _fetch(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement within the timeout; return column names and rows."""

    @abstractmethod
    def _record_batches(self, sql: str) -> pa.RecordBatchReader:
        """Run one read-only statement and return its rows as the engine streams them, batch by
        batch. The statement runs (and an engine's refusal is raised) before this returns; the
        reader holds its own connection until it is read to the end or closed, and the engine's
        time reading it stays within the timeout."""

    @abstractmethod
    def status(self) -> str:
        """A short human description of what this warehouse is connected to."""

    # -- shared behaviour -------------------------------------------------------------------
    def session(self) -> AbstractContextManager[None]:
        """Statements inside share one connection where an engine can (DuckDB: opening the file
        costs more than a small query); elsewhere each statement has its own."""
        return nullcontext()

    def table(self, relation: Relation) -> exp.Table:
        return exp.table_(relation.name, db=relation.schema, catalog=relation.database, quoted=True)

    def query(self, sql: str) -> pd.DataFrame:
        """Run one read-only statement (SELECT, set operation, DESCRIBE, SHOW, EXPLAIN)."""
        self.ensure_read_only(sql)
        names, rows = self._fetch(sql)
        return pd.DataFrame.from_records(rows, columns=names)

    def explain(self, sql: str) -> str:
        self.ensure_read_only(sql)
        _, rows = self._fetch(f"EXPLAIN {sql}")
        return "\n".join(str(cell) for row in rows for cell in row[1:] or row)

    def ensure_read_only(self, sql: str) -> None:
        """Refuse anything but one reading statement.

        DuckDB is opened read-only anyway, but a Trino user who may write (dbt's own user, say)
        could otherwise write through a preview connection, so the statement itself is checked.
        """
        try:
            statements = [s for s in sqlglot.parse(sql, read=self.dialect) if s is not None]
        except sqlglot.errors.SqlglotError as exc:
            raise BadRequest(f"The query does not parse as {self.engine_name} SQL: {exc}") from None
        if len(statements) != 1:
            raise BadRequest(f"Send exactly one statement (got {len(statements)}).")
        statement = statements[0]
        if isinstance(statement, exp.Command):
            keyword = str(statement.this).upper()
            rest = statement.expression.name if isinstance(statement.expression, exp.Expression) else ""
            if keyword == "SHOW":
                return
            if keyword == "EXPLAIN" and not rest.lstrip().upper().startswith("ANALYZE"):
                self.ensure_read_only(rest)  # EXPLAIN ANALYZE runs its statement: refused
                return
        elif isinstance(statement, exp.Show | exp.Query | exp.Describe) and not any(
            isinstance(node, _WRITES) for node in statement.walk()
        ):
            return
        raise BadRequest(
            f"Only reading statements may run here (SELECT, DESCRIBE, SHOW, EXPLAIN); "
            f"{type(statement).__name__.upper()} was refused."
        )

    def preview(
        self,
        relation: Relation,
        *,
        columns: Sequence[str] | None = None,
        filters: Sequence[Filter] = (),
        limit: int = 100,
        order_by: str | None = None,
        descending: bool = False,
        summarize: bool = False,
    ) -> Preview:
        """A bounded read of a relation, with the total number of matching rows; with `summarize`,
        each chosen column's nulls, distinct values, minimum and maximum over every matching row."""
        if limit < 1:
            raise BadRequest(f"limit must be at least 1 (got {limit}).")
        if limit > self.max_rows:
            raise BadRequest(
                f"limit {limit} is over the maximum of {self.max_rows} rows; ask for at most {self.max_rows}."
            )
        check_request(columns, filters)
        with self.session():
            result = self._preview(relation, columns, filters, limit, order_by, descending)
            if summarize:
                result.summary = self._summary(relation, columns, filters)
        return result

    def _preview(
        self,
        relation: Relation,
        columns: Sequence[str] | None,
        filters: Sequence[Filter],
        limit: int,
        order_by: str | None,
        descending: bool,
    ) -> Preview:
        select, count = self.preview_statements(
            relation,
            self.columns(relation),
            columns=columns,
            filters=filters,
            limit=limit,
            order_by=order_by,
            descending=descending,
        )
        started = time.perf_counter()
        sql = select.sql(dialect=self.dialect)
        names, rows = self._fetch_generated(sql)
        _, total = self._fetch_generated(count.sql(dialect=self.dialect))
        return Preview(
            relation=relation,
            columns=names,
            rows=pd.DataFrame.from_records(rows, columns=names),
            total_rows=int(total[0][0]),
            limit=limit,
            elapsed_s=time.perf_counter() - started,
            sql=sql,
        )

    def preview_statements(
        self,
        relation: Relation,
        described: Sequence[ColumnInfo],
        *,
        columns: Sequence[str] | None = None,
        filters: Sequence[Filter] = (),
        limit: int = 100,
        order_by: str | None = None,
        descending: bool = False,
    ) -> tuple[exp.Select, exp.Select]:
        """The rows and the count statements of a preview of `relation`, whose columns are
        `described`, without running them. Every name is checked against the columns and every
        value read as its column's type first."""
        chosen, where = self._chosen_where(relation, described, columns, filters)
        select = exp.select(*(exp.column(c, quoted=True) for c in chosen)).from_(self.table(relation))
        count = exp.select(exp.Count(this=exp.Star())).from_(self.table(relation))
        if where is not None:
            select.set("where", exp.Where(this=where))
            count.set("where", exp.Where(this=where.copy()))
        if order_by:
            self._check_columns([order_by], [c.name for c in described], relation)
            select = select.order_by(exp.Ordered(this=exp.column(order_by, quoted=True), desc=descending))
        return select.limit(limit), count

    def summary_statement(
        self,
        relation: Relation,
        described: Sequence[ColumnInfo],
        *,
        columns: Sequence[str] | None = None,
        filters: Sequence[Filter] = (),
    ) -> tuple[exp.Select, list[ColumnInfo]]:
        """One aggregate over every row the filters keep: per chosen column its nulls, distinct
        values, minimum and maximum, four items a column (the column cap bounds the statement).
        Nested and JSON columns get only their nulls: engines cannot compare their values (Trino
        refuses min, max and DISTINCT on a map or JSON)."""
        chosen, where = self._chosen_where(relation, described, columns, filters)
        types = {c.name: c.type for c in described}
        items: list[exp.Expr] = []
        for i, name in enumerate(chosen):
            column = exp.column(name, quoted=True)
            comparable = self._column_type(types[name]).this not in _UNCOMPARABLE
            nulls = exp.Sub(this=exp.Count(this=exp.Star()), expression=exp.Count(this=column.copy()))
            distinct = exp.Count(this=exp.Distinct(expressions=[column.copy()]))
            lowest, highest = exp.Min(this=column.copy()), exp.Max(this=column.copy())
            items += [
                exp.alias_(nulls, f"nulls_{i}"),
                exp.alias_(distinct if comparable else exp.Null(), f"distinct_{i}"),
                exp.alias_(lowest if comparable else exp.Null(), f"min_{i}"),
                exp.alias_(highest if comparable else exp.Null(), f"max_{i}"),
            ]
        select = exp.select(*items).from_(self.table(relation))
        if where is not None:
            select.set("where", exp.Where(this=where))
        return select, [ColumnInfo(name, types[name]) for name in chosen]

    def _chosen_where(
        self,
        relation: Relation,
        described: Sequence[ColumnInfo],
        columns: Sequence[str] | None,
        filters: Sequence[Filter],
    ) -> tuple[list[str], exp.Expression | None]:
        """The columns asked for (checked, each once) and the filters' condition (each value read
        as its column's type), which every statement over a filtered result shares."""
        check_request(columns, filters)
        known = [c.name for c in described]
        chosen = list(dict.fromkeys(columns)) if columns else known  # a column asked twice, once
        self._check_columns(chosen, known, relation)
        types = {c.name: c.type for c in described}
        return chosen, all_of([self._condition(f, types, relation) for f in filters])

    def _summary(
        self, relation: Relation, columns: Sequence[str] | None, filters: Sequence[Filter]
    ) -> list[ColumnSummary]:
        select, chosen = self.summary_statement(
            relation, self.columns(relation), columns=columns, filters=filters
        )
        _, rows = self._fetch_generated(select.sql(dialect=self.dialect))
        values = rows[0]
        return [
            ColumnSummary(
                column=c.name,
                type=c.type,
                nulls=int(values[4 * i]),
                distinct=None if values[4 * i + 1] is None else int(values[4 * i + 1]),
                min=values[4 * i + 2],
                max=values[4 * i + 3],
            )
            for i, c in enumerate(chosen)
        ]

    def summary(
        self, relation: Relation, *, columns: Sequence[str] | None = None, filters: Sequence[Filter] = ()
    ) -> list[ColumnSummary]:
        """Each chosen column's nulls, distinct values, minimum and maximum over every row the
        filters keep, in one aggregate statement."""
        check_request(columns, filters)
        with self.session():
            return self._summary(relation, columns, filters)

    def export(
        self,
        relation: Relation,
        *,
        format: str,
        columns: Sequence[str] | None = None,
        filters: Sequence[Filter] = (),
        order_by: str | None = None,
        descending: bool = False,
    ) -> Export:
        """The whole filtered, sorted result, up to the maximum rows, as CSV or Parquet bytes
        streamed chunk by chunk as the engine returns record batches (never the whole file held).

        The matching rows are counted first, so the caller knows before the first byte whether the
        export is cut at the bound; the statement runs and the first chunk is written before this
        returns, so an engine's refusal is an error here, not a broken download.
        """
        if format not in EXPORT_FORMATS:
            raise BadRequest(
                f"Unknown export format {_shown(format)}; use one of {', '.join(EXPORT_FORMATS)}."
            )
        check_request(columns, filters)
        started = time.perf_counter()
        with self.session():
            select, count = self.preview_statements(
                relation,
                self.columns(relation),
                columns=columns,
                filters=filters,
                limit=self.max_rows,
                order_by=order_by,
                descending=descending,
            )
            _, total = self._fetch_generated(count.sql(dialect=self.dialect))
        sql = select.sql(dialect=self.dialect)
        try:
            reader = self._record_batches(sql)
        except WarehouseError as exc:
            raise self._without_sql(exc, sql) from exc
        unwritable = unwritable_columns(format, reader.schema)
        if unwritable:
            reader.close()
            raise BadRequest(
                f"CSV cannot hold nested values (lists, structs, maps) such as those of "
                f"{', '.join(_shown(c) for c in unwritable[:5])}; export as Parquet, or leave those columns out."
            )
        chunks = encoded(format, reader)
        try:
            first = next(
                chunks, b""
            )  # the header and the first batch: a refusal while reading is raised here
        except WarehouseError as exc:
            raise self._without_sql(exc, sql) from exc
        total_rows = int(total[0][0])
        return Export(
            format=format,
            columns=list(reader.schema.names),
            rows=min(total_rows, self.max_rows),
            total_rows=total_rows,
            limit=self.max_rows,
            elapsed_s=time.perf_counter() - started,
            sql=sql,
            chunks=self._chained(first, chunks, sql),
        )

    def _chained(self, first: bytes, rest: Iterator[bytes], sql: str) -> Iterator[bytes]:
        """`first`, then the rest, with a later refusal (a timeout mid-stream) told without the SQL."""
        yield first
        try:
            yield from rest
        except WarehouseError as exc:
            raise self._without_sql(exc, sql) from exc

    @staticmethod
    def _without_sql(exc: WarehouseError, sql: str) -> WarehouseError:
        """An engine's refusal of a statement the portal built, without the statement (the caller
        sent names and values, not SQL, and gains nothing from ours)."""
        message = _ECHOED_SQL.sub("", exc.message).replace(sql, "the preview's statement").strip()
        return type(exc)(message)

    def _fetch_generated(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """`_fetch` for a statement the portal built: an engine's refusal is passed on without the
        statement (the caller sent names and values, not SQL, and gains nothing from ours)."""
        try:
            return self._fetch(sql)
        except WarehouseError as exc:
            raise self._without_sql(exc, sql) from exc

    def count(self, relation: Relation) -> int:
        sql = exp.select(exp.Count(this=exp.Star())).from_(self.table(relation)).sql(dialect=self.dialect)
        return int(self._fetch(sql)[1][0][0])

    @staticmethod
    def _check_columns(chosen: Sequence[str], known: Sequence[str], relation: Relation) -> None:
        names = set(known)
        unknown = [c for c in chosen if c not in names]
        if unknown:
            shown = ", ".join(_shown(c) for c in unknown[:5]) + (
                f" (and {len(unknown) - 5:,} more)" if len(unknown) > 5 else ""
            )
            raise BadRequest(f"{relation} has no column {shown}; its columns are {', '.join(known)}.")

    def _condition(self, flt: Filter, types: dict[str, str], relation: Relation) -> exp.Expression:
        if flt.op not in FILTER_OPS:
            raise BadRequest(f"Unknown filter operator {_shown(flt.op)}; use one of {', '.join(FILTER_OPS)}.")
        self._check_columns([flt.column], list(types), relation)
        column = exp.column(flt.column, quoted=True)
        if flt.op == "is null":
            return exp.Is(this=column, expression=exp.Null())
        if flt.op == "is not null":
            return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
        if flt.value is None or str(flt.value) == "":
            raise BadRequest(f"The filter on {flt.column!r} with {flt.op!r} needs a value.")
        if flt.op == "contains":
            # strpos rather than LIKE: no wildcard characters in the user's text to escape.
            haystack = exp.Lower(this=exp.cast(column, "varchar"))
            needle = exp.Literal.string(str(flt.value).lower())
            return exp.GT(
                this=exp.StrPosition(this=haystack, substr=needle), expression=exp.Literal.number(0)
            )
        return _COMPARISONS[flt.op](this=column, expression=self._typed_literal(flt, types[flt.column]))

    def _column_type(self, column_type: str) -> exp.DataType:
        """The engine's name of a column's type, parsed (a name sqlglot does not know stays as is)."""
        try:
            return exp.DataType.build(column_type, dialect=self.dialect)
        except sqlglot.errors.SqlglotError:
            return exp.DataType.build(column_type, dialect=self.dialect, udt=True)

    def _typed_literal(self, flt: Filter, column_type: str) -> exp.Expression:
        """The filter value as a literal of the column's type, read here first: a value the column
        cannot hold is the caller's to fix (a 400 naming it and what is accepted), not the engine's
        refusal (a 502 with the statement), an overflow or a silent rounding. Values are written
        back in one canonical form both engines read (a cast of a string literal: Trino refuses
        `date = varchar`), never as typed.
        """
        text = str(flt.value)
        dtype = self._column_type(column_type)
        if dtype.this in _TEXTS:
            return exp.Literal.string(text)
        if dtype.this in _NESTED:
            raise BadRequest(
                f"{flt.column!r} is {column_type}, which cannot be compared with {flt.op!r}; filter it with "
                "contains, is null or is not null."
            )
        reader = _READERS.get(dtype.this)
        if reader is None:  # intervals, blobs, bits, types sqlglot does not know: the engine reads them
            return exp.cast(exp.Literal.string(text), dtype)
        literal, what, accepted = reader(text.strip(), dtype)
        if literal is None:
            raise BadRequest(
                f"{flt.column!r} is {what} ({column_type}); {_shown(text)} is not accepted: {accepted}."
            )
        return literal

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold no connection
        """Release held resources (connections are per query by default)."""


# How a filter value is read for each type: (the literal or None, what the column is, what it accepts).
_Read = tuple[exp.Expression | None, str, str]
# YYYY-MM-DD, then a time after a space or a T: fromisoformat takes any character between the two
# (2024-01-01+02:00 would be two o'clock).
_TIMESTAMP_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ Tt]\d.*)?")


def _decimal(text: str) -> Decimal | None:
    """A finite number written in decimal (exponents allowed), or None."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _cast(text: str | None, dtype: exp.DataType) -> exp.Expression | None:
    return None if text is None else exp.cast(exp.Literal.string(text), dtype)


def _read_integer(text: str, dtype: exp.DataType) -> _Read:
    if dtype.this in _SIGNED_BITS:
        bits = _SIGNED_BITS[dtype.this]
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        bits = _UNSIGNED_BITS[dtype.this]
        low, high = 0, 2**bits - 1
    number = _decimal(text)  # 1e3 is a whole number; 1.5 is not (CAST('1.5' AS BIGINT) is 2)
    fits = number is not None and low <= number <= high and number == number.to_integral_value()
    literal = exp.Literal.number(str(int(number))) if fits and number is not None else None
    return literal, "numeric", f"give a whole number from {low} to {high} (a {bits}-bit integer)"


def _read_decimal(text: str, dtype: exp.DataType) -> _Read:
    """DECIMAL(p, s) holds the value exactly: at most p - s digits before the point and s after
    (a cast would round 0.001 to 0.00 and compare with that)."""
    params = [int(p.name) for p in dtype.expressions if p.name.isdigit()]
    precision, scale = (*params, 0)[:2] if params else (38, 0)  # the standard's DECIMAL is (p, 0)
    accepted = (
        f"give a finite number with at most {precision - scale} digits before the decimal point and "
        f"{scale} after it"
    )
    number = _decimal(text)
    if number is None:
        return None, "numeric", accepted
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    while len(digits) > 1 and digits[-1] == 0 and exponent < 0:  # 1.50 is 1.5
        digits, exponent = digits[:-1], exponent + 1
    before = max(0, len(digits) + exponent) if any(digits) else 0
    if before > precision - scale or -exponent > scale:
        return None, "numeric", accepted
    return _cast(format(Decimal((sign, digits, exponent)), "f"), dtype), "numeric", accepted


def _read_float(text: str, dtype: exp.DataType) -> _Read:
    largest = _FLOATS[dtype.this]
    try:
        number = float(text)  # 1e999 is inf
    except ValueError:
        number = math.nan
    fits = math.isfinite(number) and abs(number) <= largest
    accepted = f"give a finite number from {-largest:.2g} to {largest:.2g} (not nan or inf)"
    return _cast(repr(number) if fits else None, dtype), "numeric", accepted


def _read_boolean(text: str, dtype: exp.DataType) -> _Read:
    literal = exp.Boolean(this=text.lower() == "true") if text.lower() in ("true", "false") else None
    return literal, "boolean", "give true or false"


def _parsed(parse: Any, text: str) -> Any:
    """`parse(text)`, or None when it does not parse."""
    try:
        return parse(text)
    except (ValueError, TypeError):
        return None


def _read_date(text: str, dtype: exp.DataType) -> _Read:
    day = _parsed(dt.date.fromisoformat, text)
    return _cast(day.isoformat() if day is not None else None, dtype), "a date", "give a date like 2024-01-31"


def _moment(text: str) -> dt.datetime | None:
    return _parsed(dt.datetime.fromisoformat, text) if _TIMESTAMP_SHAPE.fullmatch(text) else None


def _read_timestamp(text: str, dtype: exp.DataType) -> _Read:
    moment = _moment(text)  # an offset is refused: DuckDB would drop it, not convert
    naive = moment.isoformat(sep=" ") if moment is not None and moment.tzinfo is None else None
    accepted = "give a date and time like 2024-01-31 13:45:00, or a date, without a UTC offset"
    return _cast(naive, dtype), "a timestamp without time zone", accepted


def _read_timestamptz(text: str, dtype: exp.DataType) -> _Read:
    moment = _moment(text)
    accepted = (
        "give a date and time like 2024-01-31 13:45:00+00:00, or a date (with no offset, the "
        "session's time zone applies)"
    )
    aware = moment.isoformat(sep=" ") if moment is not None else None
    return _cast(aware, dtype), "a timestamp with time zone", accepted


def _read_time(text: str, dtype: exp.DataType) -> _Read:
    moment = _parsed(dt.time.fromisoformat, text)
    return (
        _cast(moment.isoformat() if moment is not None else None, dtype),
        "a time",
        "give a time of day like 13:45:00",
    )


def _read_uuid(text: str, dtype: exp.DataType) -> _Read:
    found = _parsed(uuid.UUID, text)
    accepted = "give a UUID like 123e4567-e89b-12d3-a456-426614174000"
    return _cast(str(found) if found is not None else None, dtype), "a UUID", accepted


def _read_json(text: str, dtype: exp.DataType) -> _Read:
    try:
        json.loads(text)
    except (ValueError, RecursionError):  # [[[[...: as deep as the value is long
        return None, "JSON", 'give JSON text, like {"a": 1}'
    return _cast(text, dtype), "JSON", 'give JSON text, like {"a": 1}'


_READERS: dict[Any, Any] = {
    **dict.fromkeys([*_SIGNED_BITS, *_UNSIGNED_BITS], _read_integer),
    _T.DECIMAL: _read_decimal,
    **dict.fromkeys(_FLOATS, _read_float),
    _T.BOOLEAN: _read_boolean,
    **dict.fromkeys((_T.DATE, _T.DATE32), _read_date),
    **dict.fromkeys(_NAIVE_TIMESTAMPS, _read_timestamp),
    **dict.fromkeys((_T.TIMESTAMPTZ, _T.TIMESTAMPLTZ), _read_timestamptz),
    **dict.fromkeys((_T.TIME, _T.TIMETZ), _read_time),
    _T.UUID: _read_uuid,
    **dict.fromkeys((_T.JSON, _T.JSONB), _read_json),
}
