"""What the portal knows about a product, as a contract states it: the facts of `odcs`.

Gathered from the product page's detail (columns typed as the warehouse names them, their
descriptions, own or inherited), the manifest (primary key, generic tests and their `where`,
the group's owner) and the settings (the warehouse's server, the freshness column).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.catalog.detail import ProductDetail, product_detail
from portal.contracts.quality import Rule, rule_of_test, rules_sorted
from portal.observability.profile import primary_key
from portal.service import PortalService


@dataclass(frozen=True)
class ContractColumn:
    name: str
    type: str | None  # the warehouse's name for it
    description: str
    rules: tuple[Rule, ...] = ()
    description_from: str | None = None  # "stg_customers.customer_id": borrowed through lineage


@dataclass(frozen=True)
class ContractServer:
    """Where the product's table is: a DuckDB file and schema, or a Trino catalog and schema."""

    type: str  # "duckdb" or "trino"
    schema: str | None
    database: str | None = None  # DuckDB: the file's path
    host: str | None = None  # Trino
    port: int | None = None
    catalog: str | None = None


@dataclass(frozen=True)
class ContractFacts:
    name: str
    description: str
    data_product_type: str | None
    owner: str | None
    consumers: tuple[str, ...]
    update_frequency: str | None
    labels: tuple[str, ...]  # meta.tags: the spec's tags
    primary_key: tuple[str, ...]
    materialization: str | None
    lifecycle: str
    columns: tuple[ContractColumn, ...]
    rules: tuple[Rule, ...] = ()  # the model-level ones (unique_combination_of_columns)
    group: str | None = None
    group_owner: str | None = None
    version: str | None = None
    physical_name: str | None = None
    server: ContractServer | None = None
    freshness_column: str | None = None  # set when the product has the portal's freshness column
    unique_id: str | None = field(default=None)


def facts_of(service: PortalService, key: str, detail: ProductDetail | None = None) -> ContractFacts:
    """A product's contract facts by name or unique id (from its `detail`, when the caller has it
    already: the product page); NotFound if there is none."""
    detail = detail or product_detail(service, key)
    entry, node = detail.entry, detail.node
    manifest = service.artifacts().manifest
    by_column: dict[str | None, list[Rule]] = {}
    for test in manifest.tests_of(node.unique_id):
        assert test.test is not None
        rule = rule_of_test(test.test.name, test.test.column_name, test.test.kwargs, test.config)
        if rule is None:
            continue
        if rule.test == "relationships":
            target = next((manifest.get(u) for u in test.depends_on if u != node.unique_id), None)
            relation = f"{target.schema}.{target.alias or target.name}" if target and target.schema else None
            rule = Rule(rule.test, rule.column, rule.arguments, rule.where, relation)
        by_column.setdefault(_matching(rule.column, [c.name for c in detail.columns]), []).append(rule)
    settings = service.settings
    columns = tuple(
        ContractColumn(
            name=c.name,
            type=c.type,
            description=c.description,
            rules=rules_sorted(by_column.get(c.name, [])),
            description_from=c.description_from,
        )
        for c in detail.columns
    )
    return ContractFacts(
        name=entry.name,
        description=entry.description,
        data_product_type=entry.data_product_type,
        owner=entry.owner,
        consumers=entry.consumers,
        update_frequency=entry.update_frequency,
        labels=entry.labels,
        primary_key=primary_key(manifest, node),
        materialization=entry.materialization,
        lifecycle=entry.lifecycle,
        columns=columns,
        rules=rules_sorted(by_column.get(None, [])),
        group=node.group,
        group_owner=detail.group_owner,
        version=entry.version,
        physical_name=node.alias or node.name,
        server=_server(service, node.database, node.schema),
        freshness_column=settings.freshness_column
        if any(c.name == settings.freshness_column for c in columns)
        else None,
        unique_id=node.unique_id,
    )


def _matching(column: str | None, names: list[str]) -> str | None:
    """The column's name as the product spells it (dbt's test may use another case)."""
    if column is None:
        return None
    return next((n for n in names if n.lower() == column.lower()), column)


def _server(service: PortalService, database: str | None, schema: str | None) -> ContractServer:
    settings = service.settings
    if not settings.embedded:  # Trino
        return ContractServer(
            type="trino", schema=schema, host=settings.trino_host, port=settings.trino_port, catalog=database
        )
    return ContractServer(type="duckdb", schema=schema, database=str(settings.duckdb_path))
