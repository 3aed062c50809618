"""Column-level lineage: the upstream columns a model column is computed from, down to the sources.

Each model is traced on its own with sqlglot's lineage over its compiled SQL, knowing the columns of
the tables it reads from `catalog.json` (what the warehouse really has) or, where the catalog lacks a
table, from the columns declared in the project's YAML. Tracing then recurses into every upstream
model until it reaches sources, seeds or tables dbt does not manage.

When a column cannot be traced the result says why and what to do (compile the project, generate the
catalog, declare the columns) rather than guessing: a wrong lineage is worse than none.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node as SqlNode
from sqlglot.lineage import lineage as sqlglot_lineage
from sqlglot.optimizer import build_scope, qualify
from sqlglot.optimizer.scope import Scope
from sqlglot.schema import MappingSchema

from portal.lineage.errors import UnknownNodeError

if TYPE_CHECKING:
    from portal.project.artifacts import CatalogArtifact, Manifest, Node

# Resources whose columns are where lineage ends: they are loaded, not computed from SQL.
_ORIGINS = frozenset({"source", "seed"})
# Prefix of ColumnRef.unique_id for a table the SQL reads that no manifest node describes.
EXTERNAL = "relation:"
_UNKNOWN_COLUMNS_FIX = (
    " (catalog.json lacks them and their YAML declarations are missing or incomplete). Run "
    "`dbt docs generate` to write the catalog, or declare all their columns."
)


@dataclass(frozen=True, slots=True, order=True)
class ColumnRef:
    """A column of a node: `unique_id` is a manifest id, or EXTERNAL + the table name."""

    unique_id: str
    column: str

    def __str__(self) -> str:
        return f"{self.unique_id}.{self.column}"


@dataclass(frozen=True, slots=True)
class Untraceable:
    column: ColumnRef
    reason: str


@dataclass(frozen=True)
class ColumnLineage:
    """The upstream columns of `target`, as edges from each column to the columns it derives from."""

    target: ColumnRef
    edges: tuple[tuple[ColumnRef, ColumnRef], ...]  # (column, a column it is computed from)
    untraceable: tuple[Untraceable, ...] = ()

    @property
    def traced(self) -> bool:
        """True when every column on the way was traced to its origins."""
        return not self.untraceable

    @property
    def columns(self) -> list[ColumnRef]:
        """Every upstream column, nearest first."""
        return list(dict.fromkeys(upstream for _, upstream in self.edges))

    def upstream_of(self, column: ColumnRef) -> list[ColumnRef]:
        return [upstream for downstream, upstream in self.edges if downstream == column]

    @property
    def origins(self) -> list[ColumnRef]:
        """Upstream columns nothing further feeds: source, seed and external columns."""
        derived = {downstream for downstream, _ in self.edges}
        blocked = {u.column for u in self.untraceable}
        return [c for c in self.columns if c not in derived and c not in blocked]


def dialect_of(adapter_type: str | None) -> str | None:
    """The sqlglot dialect for a dbt adapter (duckdb, trino, snowflake, bigquery, ...), None if unknown."""
    if not adapter_type:
        return None
    try:
        Dialect.get_or_raise(adapter_type)
    except ValueError:
        return None
    return adapter_type


def _key(*parts: str | None) -> tuple[str, ...]:
    """Compare relation names the way most warehouses resolve unquoted names: case-insensitively."""
    return tuple((p or "").strip('"`[]').lower() for p in parts)


@dataclass
class _Prepared:
    """A model's compiled SQL, qualified against the known columns of what it reads."""

    expression: exp.Expr
    scope: Scope
    schema: MappingSchema
    unknown_tables: list[str] = field(default_factory=list)  # read, but their columns are unknown
    declared_tables: list[str] = field(default_factory=list)  # columns known from YAML only: maybe partial


class ColumnTracer:
    """Traces model columns through one manifest; keeps each model's parsed SQL for repeated questions."""

    def __init__(self, manifest: Manifest, catalog: CatalogArtifact | None = None) -> None:
        self.manifest = manifest
        self.catalog = catalog
        self.dialect = dialect_of(manifest.adapter_type)
        self._prepared: dict[str, _Prepared | str] = {}
        self._passes: dict[ColumnRef, ColumnRef | None] = {}
        # (database, schema, name) -> unique id, and (schema, name) for SQL that omits the database.
        self._relations: dict[tuple[str, ...], str] = {}
        for node in [*manifest.nodes.values(), *manifest.sources.values()]:
            if node.resource_type in {"model", "seed", "snapshot", "source"} and node.alias:
                self._relations.setdefault(_key(node.database, node.schema, node.alias), node.unique_id)
                self._relations.setdefault(_key(node.schema, node.alias), node.unique_id)

    # ---- what the warehouse knows about a node's columns ----

    def known_columns(self, unique_id: str) -> dict[str, str]:
        """Column name -> type from the catalog, else the YAML-declared columns (type UNKNOWN if unset)."""
        table = self.catalog.get(unique_id) if self.catalog else None
        if table is not None and table.columns:
            return {c.name: c.type or "UNKNOWN" for c in table.columns.values()}
        node = self.manifest.get(unique_id)
        if node is None:
            return {}
        return {c.name: c.data_type or "UNKNOWN" for c in node.columns.values()}

    # ---- tracing ----

    def trace(self, unique_id: str, column: str, *, max_depth: int | None = None) -> ColumnLineage:
        """The upstream columns of `unique_id`.`column`, recursively to sources (or `max_depth` models)."""
        node = self._node(unique_id)
        target = ColumnRef(node.unique_id, column)
        edges: list[tuple[ColumnRef, ColumnRef]] = []
        untraceable: list[Untraceable] = []
        seen = {target}
        queue = deque([(target, 0)])
        while queue:
            current, depth = queue.popleft()
            if max_depth is not None and depth >= max_depth:
                continue
            step = self.direct_upstream(current)
            if isinstance(step, Untraceable):
                untraceable.append(step)
                continue
            for upstream in step:
                edges.append((current, upstream))
                if upstream not in seen:
                    seen.add(upstream)
                    queue.append((upstream, depth + 1))
        return ColumnLineage(target=target, edges=tuple(edges), untraceable=tuple(untraceable))

    def direct_upstream(self, ref: ColumnRef) -> list[ColumnRef] | Untraceable:
        """The columns of the node's parents that `ref` is computed from, or why that is unknown."""
        step = self._lineage_root(ref)
        if step is None:
            return []
        if isinstance(step, Untraceable):
            return step
        node, root = step
        upstream: list[ColumnRef] = []
        for leaf, above in _leaves(root):
            found = self._leaf_column(leaf, above, node)
            if isinstance(found, str):
                return Untraceable(ref, f"{node.name}.{ref.column}: {found}")
            upstream.append(found)
        return list(dict.fromkeys(upstream))

    def passes_through(self, ref: ColumnRef) -> ColumnRef | None:
        """The one parent column that `ref` is, unchanged: selected as it is or renamed, through any
        CTEs and subqueries. None when `ref` is derived (any function, cast, arithmetic, CASE or
        aggregate on the way), combines columns or branches (a join key picked by COALESCE, a
        UNION), is a constant, is a source's or seed's own column, or cannot be traced. Only an
        unchanged column may lend its description: a wrong "inherited" meaning is worse than none.
        Remembered per tracer, i.e. per build."""
        if ref in self._passes:
            return self._passes[ref]
        found: ColumnRef | None = None
        step = self._lineage_root(ref)
        if isinstance(step, tuple):
            node, current = step
            above = current
            while len(current.downstream) == 1 and _is_plain_column(current.expression):
                above, current = current, current.downstream[0]
            if not current.downstream and isinstance(current.expression, exp.Table | exp.Placeholder):
                leaf = self._leaf_column(current, above, node)
                found = leaf if isinstance(leaf, ColumnRef) else None
        self._passes[ref] = found
        return found

    def _lineage_root(self, ref: ColumnRef) -> tuple[Node, SqlNode] | Untraceable | None:
        """sqlglot's lineage of one column of a model; None for columns nothing upstream feeds
        (sources, seeds, tables dbt does not manage)."""
        if ref.unique_id.startswith(EXTERNAL):
            return None
        node = self._node(ref.unique_id)
        if node.resource_type in _ORIGINS:
            return None
        prepared = self._prepare(node)
        if isinstance(prepared, str):
            return Untraceable(ref, prepared)
        try:
            root = sqlglot_lineage(
                ref.column, prepared.expression, prepared.schema, dialect=self.dialect,
                scope=prepared.scope, copy=False,
            )  # fmt: skip
        except SqlglotError as exc:
            return Untraceable(ref, self._missing_column_reason(node, ref.column, prepared, exc))
        return node, root

    def _node(self, unique_id: str) -> Node:
        node = self.manifest.get(unique_id)
        if node is None:
            names = [n.unique_id for n in self.manifest.nodes.values() if n.name == unique_id]
            if len(names) == 1:  # a bare model name is fine when it is unambiguous
                return self._node(names[0])
            raise UnknownNodeError(unique_id, names or self._close_names(unique_id))
        return node

    def _close_names(self, text: str) -> list[str]:
        pool = [n.unique_id for n in self.manifest.nodes.values() if n.resource_type in {"model", "snapshot"}]
        return difflib.get_close_matches(text, pool, n=5, cutoff=0.6)

    def _prepare(self, node: Node) -> _Prepared | str:
        """Parse and qualify a model's compiled SQL once; a string says why that is impossible."""
        cached = self._prepared.get(node.unique_id)
        if cached is not None:
            return cached
        prepared: _Prepared | str
        if not node.compiled_code:
            prepared = (
                f"{node.resource_type} {node.name} has no compiled SQL in the manifest: run `dbt compile` "
                "(or `dbt build`) so that target/manifest.json holds it, then reload."
            )
        else:
            prepared = self._qualify(node, node.compiled_code)
        self._prepared[node.unique_id] = prepared
        return prepared

    def _qualify(self, node: Node, sql: str) -> _Prepared | str:
        try:
            expression = sqlglot.parse_one(sql, dialect=self.dialect)
        except SqlglotError as exc:
            first_line = str(exc).splitlines()[0]
            return f"the compiled SQL of {node.name} could not be parsed as {self.dialect or 'generic'} SQL ({first_line})."
        tables = {uid: t for t in expression.find_all(exp.Table) if (uid := self._relation_id(t, node))}
        # YAML often declares only some of a model's columns, and qualifying against a partial list
        # fails on the others: fall back to the catalog's columns only, then to no columns at all.
        attempts = [self.known_columns, self._catalog_columns, lambda uid: {}]
        error: SqlglotError | None = None
        for columns_of in attempts:
            known = {uid: columns_of(uid) for uid in tables}
            try:
                return self._qualified(expression.copy(), tables, known)
            except SqlglotError as exc:
                error = exc
        return f"the SQL of {node.name} could not be resolved against its inputs' columns ({error})."

    def _catalog_columns(self, unique_id: str) -> dict[str, str]:
        table = self.catalog.get(unique_id) if self.catalog else None
        return {c.name: c.type or "UNKNOWN" for c in table.columns.values()} if table else {}

    def _qualified(
        self, expression: exp.Expr, tables: dict[str, exp.Table], known: dict[str, dict[str, str]]
    ) -> _Prepared:
        mapping: dict[str, Any] = {}
        for uid, table in tables.items():
            if not known[uid]:
                continue
            level = mapping
            for part in [table.catalog, table.db][: 2 if table.catalog else 1 if table.db else 0]:
                level = level.setdefault(part, {})
            level[table.name] = known[uid]
        schema = MappingSchema(mapping, dialect=self.dialect)
        qualified = qualify.qualify(
            expression, dialect=self.dialect, schema=schema, validate_qualify_columns=False, identify=False
        )
        scope = build_scope(qualified)
        if scope is None or not isinstance(scope.expression, exp.Selectable):
            raise SqlglotError("the compiled SQL is not a SELECT query")

        def names(uids: Iterable[str]) -> list[str]:
            return sorted({tables[uid].sql(dialect=self.dialect) for uid in uids})

        return _Prepared(
            expression=qualified,
            scope=scope,
            schema=schema,
            unknown_tables=names(uid for uid in tables if not known[uid]),
            declared_tables=names(uid for uid in tables if known[uid] and not self._catalog_columns(uid)),
        )

    def _missing_column_reason(self, node: Node, column: str, prepared: _Prepared, exc: SqlglotError) -> str:
        has_star = any(True for _ in prepared.expression.find_all(exp.Star))
        if has_star and prepared.unknown_tables:
            return (
                f"{node.name} selects `*` from {', '.join(prepared.unknown_tables)}, whose columns are "
                f"unknown{_UNKNOWN_COLUMNS_FIX}"
            )
        selects = getattr(prepared.scope.expression, "selects", [])
        outputs = [s.alias_or_name for s in selects if s.alias_or_name]
        if prepared.declared_tables:
            # `*` was expanded from YAML declarations, which often list only some columns.
            return (
                f"{column!r} is not among the columns of {node.name} known from YAML declarations of "
                f"{', '.join(prepared.declared_tables)} (catalog.json lacks them, and YAML may list only some "
                "columns). Run `dbt docs generate` to write the catalog."
            )
        if outputs:
            return f"{node.name} has no column {column!r}; its columns are {', '.join(outputs)}."
        return f"{column!r} could not be found in {node.name} ({exc})."

    def _relation_id(self, table: exp.Table, reader: Node) -> str | None:
        """The node a table in `reader`'s SQL stands for; its own parents first, since one relation can
        be both a seed and the source that reads it."""
        key = _key(table.catalog, table.db, table.name) if table.catalog else _key(table.db, table.name)
        for parent in reader.depends_on:
            node = self.manifest.get(parent)
            if node is not None and key in (
                _key(node.database, node.schema, node.alias),
                _key(node.schema, node.alias),
            ):
                return parent
        return self._relations.get(key)

    def _leaf_column(self, leaf: SqlNode, above: SqlNode, reader: Node) -> ColumnRef | str:
        """The parent column a lineage leaf stands for, or why it cannot be told."""
        column = leaf.name.rsplit(".", 1)[-1]
        table = leaf.expression
        if isinstance(table, exp.Placeholder):
            # sqlglot could not tell which table an unqualified column belongs to (unknown schemas).
            # With exactly one table in that SELECT there is no doubt; with more, say so.
            select = above.source if isinstance(above.source, exp.Select) else above.source.find(exp.Select)
            # sqlglot 30 names the FROM clause `from_`; older versions `from`.
            first = (select.args.get("from_") or select.args.get("from")) if select else None
            inputs = [first, *(select.args.get("joins") or [])] if select else []
            sources = [i.this for i in inputs if i is not None]
            # A lone physical table settles it; a lone CTE (a Table too, in sqlglot) does not.
            tables = [t for t in sources if isinstance(t, exp.Table) and self._relation_id(t, reader)]
            if len(sources) != 1 or len(tables) != 1:
                names = ", ".join(s.alias_or_name for s in sources) or "its inputs"
                where = f" in `{select.sql(dialect=self.dialect)[:200]}`" if select else ""
                return (
                    f"column {column!r}{where} is not qualified with a table and the columns of {names} are "
                    "unknown, so which table it comes from cannot be told. Generate the catalog "
                    "(`dbt docs generate`) or qualify the column in the SQL."
                )
            table = tables[0]
        if not isinstance(table, exp.Table):
            return f"sqlglot returned an unexpected lineage step ({type(table).__name__})."
        if column == "*":
            return (
                f"it comes through `SELECT *` from {table.sql(dialect=self.dialect).split(' AS ')[0]}, whose "
                f"columns are unknown{_UNKNOWN_COLUMNS_FIX}"
            )
        uid = self._relation_id(table, reader)
        if uid is None:
            return ColumnRef(EXTERNAL + table.sql(dialect=self.dialect).split(" AS ")[0], column)
        known = self.known_columns(uid)
        by_lower = {name.lower(): name for name in known}
        return ColumnRef(uid, by_lower.get(column.lower(), column))


def _is_plain_column(expression: exp.Expr) -> bool:
    """A projection that only names a column, perhaps under another name: `t.a`, `t.a AS b`, `(t.a)`."""
    if isinstance(expression, exp.Alias):
        expression = expression.this
    while isinstance(expression, exp.Paren):
        expression = expression.this
    return isinstance(expression, exp.Column) and not isinstance(expression.this, exp.Star)


def _leaves(root: SqlNode) -> Iterator[tuple[SqlNode, SqlNode]]:
    """Lineage steps that read a table (or a column sqlglot could not place), with the step above."""
    for node in root.walk():
        for step in node.downstream:
            if not step.downstream and isinstance(step.expression, exp.Table | exp.Placeholder):
                yield step, node


def column_lineage(
    manifest: Manifest,
    unique_id: str,
    column: str,
    catalog: CatalogArtifact | None = None,
    *,
    max_depth: int | None = None,
) -> ColumnLineage:
    """The upstream columns of one model column; see ColumnTracer to ask many questions of one manifest."""
    return ColumnTracer(manifest, catalog).trace(unique_id, column, max_depth=max_depth)
