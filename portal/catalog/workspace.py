"""The SQL workspace: analysts run their own read-only queries over the project's products and
sources, see the rows, export them, find them again in their history, and promote one to a product.

A workspace query is held to what a product's query is held to, so that whatever runs here can be
promoted as it is: the creation guard (portal/creation/sqlguard.py: one SELECT, allowlisted
functions, only known and published relations, each column named once), then the rewritten query
on the read-only warehouse as the user (their Trino identity), within the warehouse's timeout and
never more than `preview_max_rows` rows. A refusal is a `Problem` pointing at the line and column
of what the user wrote, as Create's are. Every run is kept in the user's history (the newest
`HISTORY_KEPT`), and a run that read data is a usage event of each relation it read, so a
product's Usage counts what analysts query here too.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
import sqlglot
from sqlalchemy.exc import SQLAlchemyError
from sqlglot import exp

from catalog_db.models import WorkspaceQuery
from portal import audit
from portal.auth.access import authorize
from portal.auth.identity import Identity
from portal.creation.dry_run import dry_run_problem
from portal.creation.flow import known_relations
from portal.creation.spec import Problem
from portal.creation.sqlguard import validate_sql
from portal.errors import InvalidInput
from portal.service import PortalService
from portal.warehouse import QueryTimeout, Warehouse, WarehouseError, WarehouseUnavailable

log = logging.getLogger(__name__)

HISTORY_KEPT = 100  # queries kept per user: enough to find last week's, few enough to list at once


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    """What Create is opened with when a query is promoted to a product: the query as written,
    the names of what it reads and the columns (name, type) the run returned."""

    sql: str
    upstream: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]

    @property
    def note(self) -> str:
        """A first description to replace: what the query reads and returns, in markdown."""
        reads = ", ".join(f"`{name}`" for name in self.upstream) or "nothing of the project"
        columns = ", ".join(f"`{name}` ({kind})" for name, kind in self.columns) or "none known yet"
        return (
            "Promoted from the SQL workspace: say here what one row is and who it is for.\n\n"
            f"Reads {reads}.\n\nColumns: {columns}."
        )


@dataclass(frozen=True)
class QueryResult:
    """One workspace run. `status` is one of catalog_db.models.QUERY_STATUSES: `ok` (see rows),
    `refused` or `timeout` (see problems; nothing was returned)."""

    sql: str  # as the user wrote it
    status: str
    problems: list[Problem] = field(default_factory=list)
    rows: pd.DataFrame | None = None  # at most `limit`
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, warehouse type)
    upstream: list[str] = field(default_factory=list)  # unique ids read, in order of first appearance
    upstream_names: list[str] = field(default_factory=list)  # the same, as people name them
    limit: int = 0
    truncated: bool = False  # the query returns more than `limit` rows
    elapsed_s: float = 0.0
    history_id: int | None = None  # its row in the user's history (None: it could not be kept)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def promotion(self) -> Promotion | None:
        """Create's prefill for this query; None unless it ran."""
        if not self.ok:
            return None
        return Promotion(self.sql, tuple(self.upstream_names), tuple(self.columns))


@dataclass(frozen=True)
class HistoryEntry:
    """One query of a user's history."""

    id: int
    at: datetime
    sql: str
    status: str
    rows: int | None
    elapsed_ms: float | None
    message: str | None
    upstream: tuple[str, ...]


# --- running -------------------------------------------------------------------------------


def run_query(
    service: PortalService, sql: str, identity: Identity, *, limit: int | None = None, face: str = "ui"
) -> QueryResult:
    """Check `sql` with the creation guard, run it read-only as `identity` and keep it in their
    history; at most `limit` rows (default and maximum: PORTAL_PREVIEW_MAX_ROWS).

    The SQL's refusals (guard, warehouse, timeout) are the result's problems; a warehouse that is
    not there is raised (WarehouseUnavailable), as it is nothing the query can fix.
    """
    authorize(identity, "query")  # PermissionDenied: the core decides, whichever face asks
    maximum = service.settings.preview_max_rows
    rows_wanted = maximum if limit is None else limit
    if not 1 <= rows_wanted <= maximum:
        raise InvalidInput(
            f"Ask for 1 to {maximum:,} rows (got {rows_wanted:,}); PORTAL_PREVIEW_MAX_ROWS caps it."
        )
    manifest = service.artifacts().manifest
    guard = validate_sql(sql, dialect=service.settings.warehouse, known=known_relations(service))
    if not guard.ok:
        return _kept(service, identity, QueryResult(sql, "refused", guard.problems, limit=rows_wanted))
    assert guard.normalized_sql is not None  # ok guards always carry it
    names = [node.label if (node := manifest.get(uid)) else uid for uid in guard.upstream]
    read = QueryResult(sql, "refused", upstream=list(guard.upstream), upstream_names=names, limit=rows_wanted)
    warehouse = service.warehouse(identity)
    started = time.perf_counter()
    try:
        with warehouse.session():
            frame = warehouse.query(_bounded(guard.normalized_sql, warehouse.dialect, rows_wanted + 1))
            described = warehouse.describe(guard.normalized_sql)
    except WarehouseUnavailable:
        raise
    except QueryTimeout:
        return _kept(service, identity, replace(read, status="timeout", problems=[_timeout(warehouse)]))
    except WarehouseError as exc:
        return _kept(service, identity, replace(read, problems=[dry_run_problem(exc, sql)]))
    elapsed = time.perf_counter() - started
    # None: the engine could tell no types (Trino, no rows); the names are the frame's.
    columns = (
        [(name, "unknown") for name in frame.columns]
        if described is None
        else [(c.name, c.type) for c in described]
    )
    result = _kept(
        service,
        identity,
        replace(
            read,
            status="ok",
            rows=frame.head(rows_wanted).reset_index(drop=True),
            columns=columns,
            truncated=len(frame) > rows_wanted,
            elapsed_s=elapsed,
        ),
    )
    for uid in guard.upstream:  # a read of each relation, so each one's Usage counts it
        node = manifest.get(uid)
        audit.record_read(
            service,
            identity,
            node.name if node else uid,
            face=face,
            rows=len(result.rows) if result.rows is not None else None,
            duration_ms=elapsed * 1000,
            detail={"workspace_query": result.history_id, "reads": len(guard.upstream)},
        )
    return result


def _bounded(sql: str, dialect: str, rows: int) -> str:
    """`sql` returning at most `rows` rows, in its own order.

    The cap goes on the query's own LIMIT rather than around it: Trino drops an ORDER BY inside a
    subquery, so `SELECT * FROM (... ORDER BY x) LIMIT n` could show any n rows. A query with a
    LIMIT of its own that is not a plain number (an expression, FETCH FIRST) is wrapped instead:
    its ORDER BY then sits beside its own limit, which every engine keeps.
    """
    tree = sqlglot.parse_one(sql, read=dialect)  # the guard's own output: one query, it parses
    assert isinstance(tree, exp.Query)
    own = tree.args.get("limit")
    if own is None:
        return tree.limit(rows).sql(dialect=dialect)
    if isinstance(own, exp.Limit) and isinstance(own.expression, exp.Literal) and own.expression.is_int:
        return tree.limit(min(rows, int(own.expression.name))).sql(dialect=dialect)
    return exp.select("*").from_(tree.subquery("workspace")).limit(rows).sql(dialect=dialect)


def _timeout(warehouse: Warehouse) -> Problem:
    return Problem(
        "sql",
        f"The query ran longer than {warehouse.timeout_s:g} s, the most a query may run here, and was "
        "stopped. Narrow it (filter early, join on keys, aggregate before joining), or ask an admin to "
        "raise PORTAL_QUERY_TIMEOUT_S.",
    )


# --- history -------------------------------------------------------------------------------


def _kept(service: PortalService, identity: Identity, result: QueryResult) -> QueryResult:
    """`result` with its row in the user's history, the oldest beyond HISTORY_KEPT dropped.

    Like a usage event, the history records a read and must never break it: a catalog database that
    refuses the row is logged, and the result comes back without a history id.
    """
    message = " ".join(_located(problem) for problem in result.problems) or None
    row = WorkspaceQuery(
        user=identity.user,
        sql=result.sql,
        status=result.status,
        rows=len(result.rows) if result.rows is not None else None,
        elapsed_ms=result.elapsed_s * 1000 if result.ok else None,
        message=message,
        upstream=list(result.upstream),
    )
    try:
        with service.sessions.begin() as session:
            session.add(row)
            session.flush()
            newest = (
                sa.select(WorkspaceQuery.id)
                .where(WorkspaceQuery.user == identity.user)
                .order_by(WorkspaceQuery.at.desc(), WorkspaceQuery.id.desc())
                .limit(HISTORY_KEPT)
            )
            session.execute(
                sa.delete(WorkspaceQuery).where(
                    WorkspaceQuery.user == identity.user, WorkspaceQuery.id.not_in(newest.scalar_subquery())
                )
            )
            kept_id = row.id
    except SQLAlchemyError:
        log.exception("could not keep %s's workspace query in their history", identity.user)
        return result
    return replace(result, history_id=kept_id)


def _located(problem: Problem) -> str:
    if problem.position is None:
        return problem.message
    line, column = problem.position
    return f"Line {line}, column {column}: {problem.message}"


def history(service: PortalService, identity: Identity, *, limit: int = HISTORY_KEPT) -> list[HistoryEntry]:
    """`identity`'s own workspace queries, newest first; nobody sees another user's."""
    authorize(identity, "query")
    with service.sessions() as session:
        rows = session.scalars(
            sa.select(WorkspaceQuery)
            .where(WorkspaceQuery.user == identity.user)
            .order_by(WorkspaceQuery.at.desc(), WorkspaceQuery.id.desc())
            .limit(limit)
        )
        return [
            HistoryEntry(
                row.id,
                row.at,
                row.sql,
                row.status,
                row.rows,
                row.elapsed_ms,
                row.message,
                tuple(row.upstream),
            )
            for row in rows
        ]


# --- export --------------------------------------------------------------------------------


def export_csv(result: QueryResult) -> bytes:
    """The result's rows as UTF-8 CSV with a header line."""
    return _rows(result).to_csv(index=False).encode()


def export_parquet(result: QueryResult) -> bytes:
    """The result's rows as a Parquet file, typed as the warehouse returned them."""
    buffer = io.BytesIO()
    _rows(result).to_parquet(buffer, index=False)
    return buffer.getvalue()


def _rows(result: QueryResult) -> pd.DataFrame:
    if result.rows is None:
        raise InvalidInput("This query returned no rows to export: fix it and run it first.")
    return result.rows


__all__ = [
    "HISTORY_KEPT",
    "HistoryEntry",
    "Promotion",
    "QueryResult",
    "export_csv",
    "export_parquet",
    "history",
    "run_query",
]
