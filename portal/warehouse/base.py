"""The warehouse interface: read-only, bounded access to built relations.

Both engines share this class's SQL building. Queries are assembled as sqlglot expression
trees, never by pasting strings: column names are checked against the relation's real
columns first, and filter values become literals, so nothing a user types is ever parsed
as SQL.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlglot
import sqlglot.errors
from sqlglot import exp

from portal.errors import Kind, UpstreamError

# Statement kinds that change something; refused anywhere inside a query handed to `query()`.
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command)


class WarehouseError(UpstreamError):
    """A warehouse problem the user can act on; the message says what to do."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse is not built, not reachable or busy."""

    kind = Kind.UNAVAILABLE
    headline = "The warehouse is not available."


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


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: Any = None


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

    @property
    def truncated(self) -> bool:
        return self.total_rows > len(self.rows)


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
    ) -> Preview:
        """A bounded read of a relation, with the total number of matching rows."""
        if limit < 1:
            raise BadRequest(f"limit must be at least 1 (got {limit}).")
        if limit > self.max_rows:
            raise BadRequest(
                f"limit {limit} is over the maximum of {self.max_rows} rows; ask for at most {self.max_rows}."
            )
        with self.session():
            return self._preview(relation, columns, filters, limit, order_by, descending)

    def _preview(
        self,
        relation: Relation,
        columns: Sequence[str] | None,
        filters: Sequence[Filter],
        limit: int,
        order_by: str | None,
        descending: bool,
    ) -> Preview:
        described = self.columns(relation)
        known = [c.name for c in described]
        chosen = list(columns) if columns else known
        self._check_columns(chosen, known, relation)
        where = [self._condition(f, described, relation) for f in filters]

        select = exp.select(*(exp.column(c, quoted=True) for c in chosen)).from_(self.table(relation))
        count = exp.select(exp.Count(this=exp.Star())).from_(self.table(relation))
        for condition in where:
            select = select.where(condition)
            count = count.where(condition)
        if order_by:
            self._check_columns([order_by], known, relation)
            select = select.order_by(exp.Ordered(this=exp.column(order_by, quoted=True), desc=descending))
        select = select.limit(limit)

        started = time.perf_counter()
        sql = select.sql(dialect=self.dialect)
        names, rows = self._fetch(sql)
        _, total = self._fetch(count.sql(dialect=self.dialect))
        return Preview(
            relation=relation,
            columns=names,
            rows=pd.DataFrame.from_records(rows, columns=names),
            total_rows=int(total[0][0]),
            limit=limit,
            elapsed_s=time.perf_counter() - started,
            sql=sql,
        )

    def count(self, relation: Relation) -> int:
        sql = exp.select(exp.Count(this=exp.Star())).from_(self.table(relation)).sql(dialect=self.dialect)
        return int(self._fetch(sql)[1][0][0])

    @staticmethod
    def _check_columns(chosen: Sequence[str], known: Sequence[str], relation: Relation) -> None:
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise BadRequest(
                f"{relation} has no column {', '.join(map(repr, unknown))}; its columns are {', '.join(known)}."
            )

    def _condition(self, flt: Filter, known: Sequence[ColumnInfo], relation: Relation) -> exp.Expression:
        types = {c.name: c.type for c in known}
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
        comparisons: dict[str, Any] = {
            "=": exp.EQ,
            "!=": exp.NEQ,
            "<": exp.LT,
            "<=": exp.LTE,
            ">": exp.GT,
            ">=": exp.GTE,
        }
        if flt.op not in comparisons:
            raise BadRequest(f"Unknown filter operator {flt.op!r}; use one of {', '.join(FILTER_OPS)}.")
        return comparisons[flt.op](this=column, expression=self._typed_literal(flt, types[flt.column]))

    def _typed_literal(self, flt: Filter, column_type: str) -> exp.Expression:
        """The filter value as a literal of the column's type, checked here for a clear message.

        A cast of a string literal works on both engines (Trino refuses `date = varchar`).
        """
        text = str(flt.value)
        kind = column_type.lower()
        if any(word in kind for word in ("char", "string", "text", "uuid")):
            return exp.Literal.string(text)
        if any(word in kind for word in ("int", "decimal", "numeric", "double", "float", "real")):
            try:
                float(text)
            except ValueError:
                raise BadRequest(
                    f"{flt.column!r} is numeric ({column_type}); {text!r} is not a number."
                ) from None
        return exp.cast(exp.Literal.string(text), column_type)

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold no connection
        """Release held resources (connections are per query by default)."""
