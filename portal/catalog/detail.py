"""One product's page: its entry and health, its columns (declared in dbt, typed from dbt's
catalog.json, which also adds the columns nobody documented), its tests' newest results and
the owner of its dbt group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.observability.health import ProductHealth, health_of
from portal.project.artifacts import Manifest, Node
from portal.service import CatalogEntry, PortalService


@dataclass(frozen=True)
class ColumnDetail:
    name: str
    type: str | None
    description: str
    tests: tuple[str, ...]


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
    latest = service.latest_results()
    tests = []
    for test in artifacts.manifest.tests_of(node.unique_id):
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
    catalog_table = artifacts.catalog.get(node.unique_id) if artifacts.catalog else None
    names = list(node.columns)
    if catalog_table is not None:
        names += [c for c in catalog_table.columns if c not in node.columns and c.lower() not in node.columns]
    columns = []
    for name in names:
        declared = node.columns.get(name)
        columns.append(
            ColumnDetail(
                name=name,
                type=(catalog_table.column_type(name) if catalog_table else None)
                or (declared.data_type if declared else None),
                description=declared.description if declared else "",
                tests=tuple(t.name for t in tests if t.column_name and t.column_name.lower() == name.lower()),
            )
        )
    return ProductDetail(
        health=health_of(service, [entry], now=now, latest=latest)[entry.unique_id],
        node=node,
        columns=columns,
        tests=tests,
        group_owner=_group_owner(artifacts.manifest, node),
    )


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
