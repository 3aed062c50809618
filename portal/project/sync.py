"""dbt artifacts -> catalog database, idempotently.

dbt files are the source of truth for what a product is, so sync rewrites the descriptive
columns of each product from the manifest; the database keeps what dbt does not know (status,
origin, who registered it, runs and results over time). Running it again on the same artifacts
changes nothing: no row, no timestamp, no audit event. The caller owns the transaction: sync
flushes, the caller commits (or rolls everything back).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from catalog_db.models import DataProduct, NodeResult, Run
from portal import audit
from portal.project.artifacts import Artifacts, CatalogArtifact, Manifest, Node, RunResultEntry, RunResults
from portal.project.statuses import BUILD_FAILED, BUILD_OK, TEST_WARNED
from portal.project.versions import latest_of, model_versions

DEFAULT_PRODUCT_TYPE = "CUSTOM"

# For a whole run a warning test is no failure, and a partially successful node is one.
_OK = BUILD_OK | {TEST_WARNED}
_FAILED = BUILD_FAILED | {"partial success"}
# Commands that only compile (`docs generate` is "generate"): their "success" means "compiled",
# not "ran and passed", and recording them would hide the results of the last real build.
_COMPILE_ONLY = frozenset({"compile", "generate", "show"})


@dataclass(frozen=True)
class SyncReport:
    products_added: int = 0
    products_updated: int = 0
    products_removed: int = 0
    runs_added: int = 0
    node_results_added: int = 0


def is_data_product(node: Node, data_products_path: str = "models/data_products") -> bool:
    """A model under `data_products_path` (relative to the dbt project) or with meta.data_product_type.

    The path may also name one model file (`models/customers.sql`), which is handy for projects
    that have no data products folder.
    """
    if node.resource_type != "model":
        return False
    if node.meta.get("data_product_type"):
        return True
    folder = data_products_path.replace("\\", "/").strip("/")
    path = node.original_file_path.replace("\\", "/")  # manifests written on Windows
    return path == folder or path.startswith(folder + "/")


def run_status(node_statuses: Iterable[str]) -> str:
    """A run's status from its nodes': success (nothing failed), error (nothing ok) or partial."""
    ok = failed = 0
    for status in node_statuses:
        ok += status in _OK
        failed += status in _FAILED
    if not failed:
        return "success"
    return "partial" if ok else "error"


def sync(
    session: Session,
    artifacts: Artifacts,
    *,
    data_products_path: str = "models/data_products",
    actor: str = "dbt-sync",
    explained: Collection[str] = (),
) -> SyncReport:
    """Bring the catalog database in line with `artifacts`; returns what changed.

    `explained` names products whose change the caller records in an event of its own (the
    portal's creation or edit, in the same transaction): their rows are updated without a
    `product.updated` event repeating what that event says.
    """
    now = datetime.now(UTC)  # one timestamp for everything this sync changes
    added, updated, removed = _sync_products(
        session, artifacts, data_products_path, actor, now, frozenset(explained)
    )
    runs_added, results_added = _sync_run(session, artifacts, actor)
    session.flush()
    return SyncReport(added, updated, removed, runs_added, results_added)


# --- data products -------------------------------------------------------------------------


def _sync_products(
    session: Session,
    artifacts: Artifacts,
    data_products_path: str,
    actor: str,
    now: datetime,
    explained: frozenset[str],
) -> tuple[int, int, int]:
    manifest = artifacts.manifest
    group_owners = _group_owners(manifest)
    nodes = _one_node_per_name(
        manifest, [n for n in manifest.models() if is_data_product(n, data_products_path)]
    )
    existing = {p.name: p for p in session.scalars(select(DataProduct))}
    added = updated = removed = 0

    for name in sorted(nodes):  # sorted: ids are assigned in the same order on every database
        node = nodes[name]
        facts = _facts(node, group_owners)
        deprecated = _flag(node.meta.get("deprecated"))
        product = existing.get(name)
        if product is None:
            product = DataProduct(
                name=name,
                **facts,
                status="deprecated" if deprecated else "published",
                origin="dbt",
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(product)
            detail = {"unique_id": node.unique_id, "status": product.status}
            _audit(session, now, actor, "product.registered", name, detail)
            added += 1
        elif _update(session, product, facts, deprecated, actor, now, audited=name not in explained):
            updated += 1
        _record_row_count(product, node.unique_id, artifacts.catalog)

    for product in existing.values():
        if product.origin == "dbt" and product.name not in nodes and product.status != "removed":
            _audit(session, now, actor, "product.removed", product.name, {"from_status": product.status})
            product.status = "removed"
            product.updated_at = now
            removed += 1
    return added, updated, removed


def _update(
    session: Session,
    product: DataProduct,
    facts: dict[str, Any],
    deprecated: bool,
    actor: str,
    now: datetime,
    *,
    audited: bool = True,
) -> bool:
    """Apply what dbt says to an existing product; True when anything changed."""
    changes = {
        column: {"from": getattr(product, column), "to": value}
        for column, value in facts.items()
        if getattr(product, column) != value
    }
    status = _next_status(product.status, deprecated)
    if not changes and status == product.status:
        return False
    if changes and audited:
        _audit(session, now, actor, "product.updated", product.name, changes)
    for column, change in changes.items():
        setattr(product, column, change["to"])
    if status != product.status:
        action = "product.deprecated" if status == "deprecated" else "product.restored"
        if audited:
            _audit(session, now, actor, action, product.name, {"from_status": product.status})
        product.status = status
    product.updated_at = now
    return True


def _next_status(current: str, deprecated: bool) -> str:
    if deprecated or current == "deprecated":
        return "deprecated"  # deprecation is never undone by sync: that is a person's decision
    if current == "removed":
        return "published"  # back in the manifest
    # draft, building, failed: the builder moves portal products on; published stays published.
    return current


def _facts(node: Node, group_owners: dict[str, str]) -> dict[str, Any]:
    """The DataProduct columns dbt is the source of truth for."""
    meta = node.meta
    return {
        "unique_id": node.unique_id,
        "data_product_type": _text(meta.get("data_product_type")) or DEFAULT_PRODUCT_TYPE,
        "description": node.description,
        "owner": _owner(meta.get("owner")) or group_owners.get(node.group or ""),
        "consumers": _texts(meta.get("consumers")),
        "update_frequency": _text(meta.get("update_frequency")),
        "tags": _texts(meta.get("tags")),
        "group_name": node.group,
        "access": node.access,
        "materialization": node.materialized,
        "relation_name": node.relation_name,
    }


def _one_node_per_name(manifest: Manifest, nodes: list[Node]) -> dict[str, Node]:
    """Products are keyed by model name; versioned models share one, so keep the latest version
    (the catalog's rule, project/versions.py: dbt's `latest_version`, else the highest)."""
    latest = {
        uid for uid, versions in model_versions(manifest).items() if latest_of(versions).unique_id == uid
    }
    by_name: dict[str, Node] = {}
    for node in sorted(nodes, key=lambda n: (n.unique_id in latest, n.unique_id)):
        by_name[node.name] = node  # the last one wins: the latest version
    return by_name


def _group_owners(manifest: Manifest) -> dict[str, str]:
    owners = {}
    for group in (manifest.raw.get("groups") or {}).values():
        owner = _owner(group.get("owner"))
        if owner and group.get("name"):
            owners[group["name"]] = owner
    return owners


def _record_row_count(product: DataProduct, unique_id: str, catalog: CatalogArtifact | None) -> None:
    """Take the catalog's row count unless a newer measurement is already stored."""
    table = catalog.get(unique_id) if catalog else None
    measured_at = _utc(catalog.generated_at) if catalog else None
    if table is None or table.row_count is None or measured_at is None:
        return
    if product.row_count_measured_at is None or measured_at > product.row_count_measured_at:
        product.row_count = table.row_count
        product.row_count_measured_at = measured_at


def _audit(
    session: Session, at: datetime, actor: str, action: str, name: str, detail: dict[str, Any]
) -> None:
    audit.add_event(session, actor, action, "data_product", name, detail, at=at)


# --- runs ----------------------------------------------------------------------------------


def _sync_run(session: Session, artifacts: Artifacts, actor: str) -> tuple[int, int]:
    """Record the run of run_results.json once, and whichever of its node results are missing."""
    results = artifacts.run_results
    if results is None or results.command in _COMPILE_ONLY:
        return 0, 0
    if not results.invocation_id:
        return 0, 0  # without an invocation id a run cannot be recognised next time
    run = session.scalar(select(Run).where(Run.invocation_id == results.invocation_id))
    runs_added = 0
    if run is None:
        run = _new_run(results, actor)
        session.add(run)
        session.flush()  # assigns run.id
        runs_added = 1
    # A run started by the portal's builder exists before its results are known: fill it in.
    have = set(session.scalars(select(NodeResult.unique_id).where(NodeResult.run_id == run.id)))
    unit_tests = artifacts.manifest.raw.get("unit_tests") or {}
    rows = {
        r.unique_id: _node_result_row(run.id, r, artifacts.manifest, unit_tests)
        for r in results.results
        if r.unique_id not in have
    }
    if rows:
        # One bulk INSERT: thousands of results in milliseconds. Objects this session already
        # loaded (run.node_results) do not see these rows until they are refreshed.
        session.execute(insert(NodeResult), list(rows.values()))
    return runs_added, len(rows)


def _new_run(results: RunResults, actor: str) -> Run:
    # generated_at is written when the invocation ends; elapsed_time is its whole duration.
    finished_at = _utc(results.generated_at) or datetime.now(UTC)
    return Run(
        invocation_id=results.invocation_id,
        command=results.command or "unknown",
        selector=results.selector,
        target=results.target,
        status=run_status(r.status for r in results.results),
        triggered_by=actor,
        started_at=finished_at - timedelta(seconds=results.elapsed_time),
        finished_at=finished_at,
        elapsed_s=results.elapsed_time,
    )


def _node_result_row(
    run_id: int, result: RunResultEntry, manifest: Manifest, unit_tests: dict[str, Any]
) -> dict[str, Any]:
    node = manifest.get(result.unique_id)
    test = node.test if node else None
    if test is not None:
        attached, test_name, column_name = test.attached_node, test.name, test.column_name
    else:
        # Unit tests live outside manifest.nodes; they test the one model they depend on.
        depends = ((unit_tests.get(result.unique_id) or {}).get("depends_on") or {}).get("nodes") or []
        attached, test_name, column_name = (depends[0] if len(depends) == 1 else None), None, None
    return {
        "run_id": run_id,
        "unique_id": result.unique_id,
        "resource_type": node.resource_type if node else result.unique_id.split(".", 1)[0],
        "status": result.status,
        "execution_time": result.execution_time,
        "failures": result.failures,
        "message": result.message,
        "started_at": _utc(result.started_at),
        "completed_at": _utc(result.completed_at),
        "attached_node": attached,
        "test_name": test_name,
        "column_name": column_name,
    }


# --- meta values: YAML lets people write them in several shapes ---------------------------


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _owner(value: Any) -> str | None:
    """meta.owner / a group's owner: a name, or a mapping with name and/or email."""
    if isinstance(value, dict):
        return _text(value.get("name")) or _text(value.get("email"))
    return _text(value)


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in {"true", "yes", "1"}


def _utc(text: str | None) -> datetime | None:
    """dbt's ISO timestamps ('...Z', or naive in old artifacts, which are UTC too)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
