"""One product's page: its entry and health, its columns, its tests' newest results and the
owner of its dbt group.

Columns are the declared ones, then those only the warehouse has. Their types are the warehouse's
names for them (dbt's catalog.json, else the warehouse's own description of the relation, for a
product built since the catalog was written); the YAML's data_type is kept where it says something
else. A column without a description of its own borrows the description of the upstream column it
passes through unchanged (column lineage: selected as is or renamed), and says where from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot.errors import SqlglotError

from portal.lineage.columns import EXTERNAL, ColumnRef
from portal.lineage.errors import LineageError
from portal.observability.health import ProductHealth, health_of
from portal.project.artifacts import Manifest, Node
from portal.service import CatalogEntry, PortalService
from portal.warehouse import WarehouseError

# A description travels this many unchanged hops at most (staging -> intermediate -> mart is 3).
MAX_INHERITANCE_HOPS = 12


@dataclass(frozen=True)
class ColumnDetail:
    name: str
    type: str | None  # as the warehouse names it; the declared data_type when the warehouse is silent
    description: str  # its own, or inherited (then `description_from` says from where)
    tests: tuple[str, ...]
    description_from: str | None = None  # "stg_customers.customer_id": whose description this is
    declared_type: str | None = None  # the YAML's data_type, only where it differs from `type`

    @property
    def inherited(self) -> bool:
        return self.description_from is not None


@dataclass(frozen=True)
class TestResult:
    unique_id: str
    name: str
    column_name: str | None
    status: str | None
    failures: int | None
    message: str | None
    executed_at: datetime | None


@dataclass(frozen=True)
class ProductDetail:
    health: ProductHealth
    node: Node
    columns: list[ColumnDetail]
    tests: list[TestResult]
    group_owner: str | None

    @property
    def entry(self) -> CatalogEntry:
        return self.health.entry

    @property
    def raw_sql(self) -> str:
        return self.node.raw_code

    @property
    def compiled_sql(self) -> str | None:
        return self.node.compiled_code


def product_detail(service: PortalService, key: str, *, now: datetime | None = None) -> ProductDetail:
    """A model's page by unique id or name; NotFound (with close names) if there is none."""
    entry = service.entry(key)
    artifacts = service.artifacts()
    node = artifacts.manifest.get(entry.unique_id)
    assert node is not None  # entries are built from this manifest
    own_tests = artifacts.manifest.tests_of(node.unique_id)
    latest = service.latest_results([node.unique_id, *(t.unique_id for t in own_tests)])
    tests = []
    for test in own_tests:
        result = latest.get(test.unique_id)
        assert test.test is not None
        tests.append(
            TestResult(
                unique_id=test.unique_id,
                name=test.test.name,
                column_name=test.test.column_name,
                status=result.status if result else None,
                failures=result.failures if result else None,
                message=result.message if result else None,
                executed_at=result.completed_at if result else None,
            )
        )
    return ProductDetail(
        health=health_of(service, [entry], now=now, latest=latest)[entry.unique_id],
        node=node,
        columns=_columns(service, node, tests),
        tests=tests,
        group_owner=_group_owner(artifacts.manifest, node),
    )


def _columns(service: PortalService, node: Node, tests: list[TestResult]) -> list[ColumnDetail]:
    typed = _warehouse_types(service, node)
    by_lower = {name.lower(): name for name in node.columns}
    names = list(node.columns) + [c for c in typed if c not in node.columns and c.lower() not in by_lower]
    inherited = service.per_build(
        ("inherited_descriptions", node.unique_id), lambda: _inherited_descriptions(service, node, names)
    )
    columns = []
    for name in names:
        declared = node.columns.get(name)
        own_type = declared.data_type if declared else None
        warehouse_type = typed.get(name) or typed.get(name.lower()) or typed.get(name.upper())
        text, origin = (
            (declared.description, None)
            if declared and declared.description
            else inherited.get(name, ("", None))
        )
        columns.append(
            ColumnDetail(
                name=name,
                type=warehouse_type or own_type,
                description=text,
                tests=tuple(t.name for t in tests if t.column_name and t.column_name.lower() == name.lower()),
                description_from=origin,
                declared_type=own_type
                if warehouse_type and own_type and not _same_type(own_type, warehouse_type)
                else None,
            )
        )
    return columns


def _warehouse_types(service: PortalService, node: Node) -> dict[str, str]:
    """Column name -> the warehouse's type name: from catalog.json, else (a product built after the
    catalog was written) from the warehouse itself, asked once per build; {} if neither knows it."""
    artifacts = service.artifacts()
    table = artifacts.catalog.get(node.unique_id) if artifacts.catalog else None
    if table is not None:
        return {c.name: c.type for c in table.columns.values() if c.type}

    def describe() -> dict[str, str]:
        try:
            return {c.name: c.type for c in service.warehouse().columns(service.relation(node)) if c.type}
        except WarehouseError:  # not built (yet), or the warehouse is down: the declared types stand
            return {}

    return service.per_build(("warehouse_types", node.unique_id), describe)


def _same_type(declared: str, warehouse: str) -> bool:
    """`decimal(18,2)` is the warehouse's `DECIMAL(18, 2)`; `string` is not its `VARCHAR` (that is
    worth saying: the YAML and the warehouse disagree on the name)."""
    return "".join(declared.lower().split()) == "".join(warehouse.lower().split())


def _inherited_descriptions(
    service: PortalService, node: Node, names: list[str]
) -> dict[str, tuple[str, str]]:
    """Column -> (description, "model.column" it comes from) for the columns without a description
    of their own that pass an upstream column through unchanged. Only those columns are traced."""
    manifest = service.artifacts().manifest
    tracer = service.column_tracer()
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        declared = node.columns.get(name)
        if declared is not None and declared.description:
            continue
        ref = ColumnRef(node.unique_id, name)
        try:
            for _ in range(MAX_INHERITANCE_HOPS):
                upstream = tracer.passes_through(ref)
                if upstream is None:
                    break
                text = _description_of(manifest, upstream)
                if text:
                    found[name] = (text, _label(manifest, upstream))
                    break
                ref = upstream
        except (LineageError, SqlglotError):  # an untraceable column simply inherits nothing
            continue
    return found


def _description_of(manifest: Manifest, ref: ColumnRef) -> str:
    upstream = manifest.get(ref.unique_id)
    if upstream is None:
        return ""
    column = upstream.columns.get(ref.column) or next(
        (c for name, c in upstream.columns.items() if name.lower() == ref.column.lower()), None
    )
    return column.description if column else ""


def _label(manifest: Manifest, ref: ColumnRef) -> str:
    """How people name an upstream column: `stg_customers.customer_id`, `silver.customers.id`."""
    if ref.unique_id.startswith(EXTERNAL):
        return f"{ref.unique_id.removeprefix(EXTERNAL)}.{ref.column}"
    upstream = manifest.get(ref.unique_id)
    return f"{upstream.label if upstream else ref.unique_id}.{ref.column}"


def _group_owner(manifest: Manifest, node: Node) -> str | None:
    """The owner of the node's dbt group (groups name an owner by name or email)."""
    if not node.group:
        return None
    group = (manifest.raw.get("groups") or {}).get(f"group.{node.package_name}.{node.group}")
    if not group:
        return None
    owner = group.get("owner") or {}
    return owner.get("name") or owner.get("email")


__all__ = ["ColumnDetail", "ProductDetail", "TestResult", "product_detail"]
