"""The service facade every feature starts from: settings, catalog database sessions, dbt's
artifacts (synced), the catalog's entries, resolving a name, lineage, the warehouse.

What a product *is* comes from dbt's artifacts (the manifest is re-read when it changes on
disk and synced into the catalog database); what dbt does not hold (lifecycle, run history,
row counts, audit) comes from the catalog database. It imports no feature: browsing the
catalog is `catalog/`, health is `observability/health.py`, creating is `creation/`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from catalog_db.models import DataProduct, NodeResult, Run
from catalog_db.session import open_catalog
from portal.auth.identity import Identity
from portal.errors import NotFound
from portal.lineage.columns import ColumnLineage, ColumnTracer
from portal.lineage.graph import Lineage
from portal.project.artifacts import ArtifactError, Artifacts, Node, find_artifact, load_artifacts
from portal.project.statuses import BUILT_IN
from portal.project.sync import SyncReport, is_data_product, sync
from portal.project.versions import ModelVersion, model_versions
from portal.settings import Settings
from portal.warehouse import Relation, Warehouse, WarehouseError, open_warehouse

T = TypeVar("T")


class SearchField(NamedTuple):
    """One text a catalog search looks in, and what to call it when it matches."""

    field: str  # name, description, column, column description, dbt tag, label, owner, type
    text: str
    of: str | None = None  # the column a column description describes

    @property
    def folded(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class CatalogEntry:
    """A model as the catalog lists it: the manifest's node and, for a data product, its
    registration in the catalog database. Static between builds, so it is cached; health,
    which changes with the clock, is judged per request (`observability/health.py`)."""

    unique_id: str
    name: str
    resource_type: str
    is_data_product: bool
    data_product_type: str | None
    description: str
    owner: str | None
    consumers: tuple[str, ...]
    update_frequency: str | None
    tags: tuple[str, ...]  # dbt's tags (config.tags): what `tag:` selects
    labels: tuple[str, ...]  # meta.tags: the portal's labels, which no dbt selector sees
    lifecycle: str  # project/statuses.py: LIFECYCLE_STATES, or BUILT_IN for a plain model
    materialization: str | None
    relation_name: str | None
    column_names: tuple[str, ...]
    row_count: int | None
    test_ids: tuple[str, ...] = field(repr=False, default=())
    search_text: str = field(repr=False, default="")  # every search field, lower case, for a quick test
    search_fields: tuple[SearchField, ...] = field(repr=False, default=())
    # A versioned model: this entry's version and all of the model's, oldest first (see
    # project/versions.py); the catalog lists the model once, as its latest version.
    version: str | None = None
    versions: tuple[ModelVersion, ...] = ()


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


class PortalService:
    """One per process. Thread-safe: Streamlit sessions and API workers share it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions: sessionmaker[Session] = open_catalog(settings.resolved_catalog_db_url)
        self._lock = threading.RLock()
        self._stamp: tuple[Any, ...] | None = None
        self._artifacts: Artifacts | None = None
        self._entries: list[CatalogEntry] = []
        self._older_versions: dict[str, CatalogEntry] = {}  # by unique id: not listed, still opened
        self._lineage: Lineage | None = None
        self._tracer: ColumnTracer | None = None
        self._per_build: dict[Hashable, Any] = {}
        self.last_sync: SyncReport | None = None

    # -- artifacts ---------------------------------------------------------------------------
    def _artifact_stamp(self) -> tuple[Any, ...]:
        stamp = []
        for name in ("manifest", "run_results", "catalog"):
            path = find_artifact(self.settings.target_dir, name)
            stat = path.stat() if path else None
            stamp.append((str(path), stat.st_mtime_ns, stat.st_size) if stat else None)
        return tuple(stamp)

    def artifacts(self) -> Artifacts:
        """The current artifacts, re-read and synced only when a file changed on disk."""
        with self._lock:
            stamp = self._artifact_stamp()
            if self._artifacts is None or stamp != self._stamp:
                artifacts = load_artifacts(self.settings.target_dir)
                self.last_sync = self._sync(artifacts)
                self._artifacts, self._stamp = artifacts, stamp
                self._entries, self._older_versions = self._build_entries(artifacts)
                self._lineage = self._tracer = None  # rebuilt lazily: most pages never draw lineage
                self._per_build = {}
            return self._artifacts

    def _sync(self, artifacts: Artifacts) -> SyncReport:
        """Sync, once more if another process (the API, cron) inserted the same rows meanwhile:
        the second pass sees them and is a no-op where they agree."""
        for attempt in range(2):
            try:
                with self.sessions.begin() as session:
                    return sync(session, artifacts, data_products_path=self.settings.data_products_path)
            except sa.exc.IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def reload(self) -> Artifacts:
        """Forget cached artifacts and health (after a build wrote new ones)."""
        with self._lock:
            self._stamp = None
        return self.artifacts()

    # -- the catalog's entries ---------------------------------------------------------------
    def latest_results(self, unique_ids: Collection[str] | None = None) -> dict[str, NodeResult]:
        """The newest result of every node (or of `unique_ids` only: one product's page reads its
        own few, not the project's thousands) where consumers read it, in one query (runs' ids
        grow with time). Tests' results always count; models' only from published runs."""
        with self.sessions() as session:
            newest_of = sa.select(NodeResult.unique_id, sa.func.max(NodeResult.run_id).label("run_id"))
            if unique_ids is not None:
                newest_of = newest_of.where(NodeResult.unique_id.in_(sorted(set(unique_ids))))
            newest = newest_of.where(_counts_as_build(session)).group_by(NodeResult.unique_id).subquery()
            rows = session.scalars(
                sa.select(NodeResult).join(
                    newest,
                    sa.and_(NodeResult.unique_id == newest.c.unique_id, NodeResult.run_id == newest.c.run_id),
                )
            )
            return {row.unique_id: row for row in rows}

    def _build_entries(self, artifacts: Artifacts) -> tuple[list[CatalogEntry], dict[str, CatalogEntry]]:
        """The listed entries (a versioned model once, as its latest version) and the entries
        of the other versions, by unique id: lineage and links still open those."""
        manifest = artifacts.manifest
        with self.sessions() as session:
            rows = {p.name: p for p in session.scalars(sa.select(DataProduct))}
        versions = model_versions(manifest)
        entries, older = [], {}
        for node in manifest.nodes.values():
            if node.resource_type not in {"model", "seed", "snapshot"}:
                continue
            product = is_data_product(node, self.settings.data_products_path)
            row = rows.get(node.name) if product else None
            tests = tuple(t.unique_id for t in manifest.tests_of(node.unique_id))
            entry = self._entry(node, product, row, tests, versions.get(node.unique_id, ()))
            if entry.versions and not any(v.latest and v.unique_id == node.unique_id for v in entry.versions):
                older[node.unique_id] = entry
            else:
                entries.append(entry)
        return sorted(entries, key=lambda e: (e.name, e.unique_id)), older

    @staticmethod
    def _entry(
        node: Node,
        product: bool,
        row: DataProduct | None,
        tests: tuple[str, ...],
        versions: tuple[ModelVersion, ...],
    ) -> CatalogEntry:
        """A catalog row: the database's registration where there is one, else the manifest's meta."""
        meta = node.meta
        owner = row.owner if row else meta.get("owner")
        product_type = row.data_product_type if row else meta.get("data_product_type")
        tags, labels = tuple(node.tags), _as_list(meta.get("tags"))
        searchable = [  # the model's own texts first: a search's reasons are shown in this order
            SearchField("name", node.name),
            SearchField("description", node.description),
            *(SearchField("dbt tag", tag) for tag in tags),
            *(SearchField("label", label) for label in labels),
            SearchField("owner", owner or ""),
            SearchField("type", product_type or ""),
            *(SearchField("column", name) for name in node.columns),
            *(
                SearchField("column description", column.description, of=name)
                for name, column in node.columns.items()
                if column.description
            ),
        ]
        searchable = [f for f in searchable if f.text]
        return CatalogEntry(
            unique_id=node.unique_id,
            name=node.name,
            resource_type=node.resource_type,
            is_data_product=product,
            data_product_type=product_type,
            description=node.description,
            owner=owner,
            consumers=_as_list(row.consumers if row else meta.get("consumers")),
            update_frequency=row.update_frequency if row else meta.get("update_frequency"),
            tags=tags,
            labels=labels,
            lifecycle=row.status if row else BUILT_IN,
            materialization=node.materialized,
            relation_name=node.relation_name,
            column_names=tuple(node.columns),
            row_count=row.row_count if row is not None else None,
            test_ids=tests,
            search_text=" ".join(f.folded for f in searchable),
            search_fields=tuple(searchable),
            version=next((v.version for v in versions if v.unique_id == node.unique_id), None),
            versions=versions,
        )

    def entries(self, *, include_all_models: bool = False) -> list[CatalogEntry]:
        """The data products (and with `include_all_models` every model, seed and snapshot) by
        name. Browsing them (search, filters, health) is `catalog/browse.py`'s."""
        self.artifacts()
        with self._lock:
            return [e for e in self._entries if include_all_models or e.is_data_product]

    def entry(self, key: str) -> CatalogEntry:
        """The catalog entry of a model, by unique id or name; NotFound for sources, tests, ...
        A versioned model's name is its latest version; an older version's unique id, that version."""
        node = self.resolve(key)
        found = next(
            (e for e in self.entries(include_all_models=True) if e.unique_id == node.unique_id), None
        )
        if found is None:
            with self._lock:
                found = self._older_versions.get(node.unique_id)
        if found is None:  # sources, exposures, tests: in the manifest but not in the catalog
            raise NotFound(
                f"{node.unique_id} is a {node.resource_type}, not a model; its details are on the Lineage page."
            )
        return found

    # -- lineage -----------------------------------------------------------------------------
    def lineage(self) -> Lineage:
        """The manifest's lineage graph, with each node's latest status from the catalog database."""
        artifacts = self.artifacts()
        with self._lock:
            if self._lineage is None:
                lineage = Lineage(artifacts.manifest, data_products_path=self.settings.data_products_path)
                latest = {uid: r.status for uid, r in self.latest_results().items()}
                for unique_id, data in lineage.graph.nodes(data=True):
                    data["status"] = latest.get(unique_id, data.get("status"))
                    for test in data["tests"]:
                        test["status"] = latest.get(test["unique_id"], test["status"])
                self._lineage = lineage
            return self._lineage

    def column_tracer(self) -> ColumnTracer:
        """The current build's column tracer: it keeps each model's parsed SQL and what it found."""
        artifacts = self.artifacts()
        with self._lock:
            if self._tracer is None:
                self._tracer = ColumnTracer(artifacts.manifest, artifacts.catalog)
            return self._tracer

    def column_lineage(self, key: str, column: str) -> ColumnLineage:
        """Which upstream columns feed `column` of a model (or why that cannot be traced)."""
        node = self.resolve(key)
        return self.column_tracer().trace(node.unique_id, column)

    def per_build(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per build: remembered until the artifacts change on disk, like the
        entries and the lineage. For what is costly to derive and fixed by a build (a product's
        inherited column descriptions, its columns as the warehouse names them)."""
        self.artifacts()
        with self._lock:
            cache = self._per_build  # this build's: a value computed as a new build lands is dropped
            if key in cache:
                return cache[key]
        value = compute()  # outside the lock: it may read the warehouse
        with self._lock:
            return cache.setdefault(key, value)

    # -- one product -------------------------------------------------------------------------
    def resolve(self, key: str) -> Node:
        """A node by unique id or by name (data products first)."""
        manifest = self.artifacts().manifest
        node = manifest.get(key)
        if node is not None:
            return node
        named = [e for e in self._entries if e.name == key]
        named.sort(key=lambda e: not e.is_data_product)
        if named:
            found = manifest.get(named[0].unique_id)
            assert found is not None
            return found
        close = sorted(e.name for e in self._entries if key.lower() in e.name.lower())[:5]
        hint = f" Did you mean {', '.join(close)}?" if close else " Pick one from the catalog."
        raise NotFound(f"There is no data product or model called {key!r}.{hint}")

    # -- data --------------------------------------------------------------------------------
    def warehouse(self, identity: Identity | None = None) -> Warehouse:
        return open_warehouse(self.settings, user=identity.user if identity else None)

    def relation(self, node: Node) -> Relation:
        return Relation(node.database, node.schema, node.alias or node.name)

    def refresh_row_counts(self) -> dict[str, int | None]:
        """Count each data product's rows in the warehouse (after a build) and store them."""
        manifest = self.artifacts().manifest
        counts: dict[str, int | None] = {}
        warehouse = self.warehouse()
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            for row in session.scalars(sa.select(DataProduct).where(DataProduct.status != "removed")):
                node = manifest.get(row.unique_id) if row.unique_id else None
                if node is None:
                    continue
                try:
                    counts[row.name] = warehouse.count(self.relation(node))
                except WarehouseError:
                    counts[row.name] = None
                row.row_count, row.row_count_measured_at = counts[row.name], now
        with self._lock:
            self._stamp = None  # row counts are part of the cached entries
        return counts

    def recent_runs(self, limit: int = 20) -> list[Run]:
        with self.sessions() as session:
            runs = list(session.scalars(sa.select(Run).order_by(Run.id.desc()).limit(limit)))
            session.expunge_all()
            return runs


def unpublished_runs(session: Session) -> list[int]:
    """Creation runs whose audit did not publish (failed, or still building): they built the
    model in the audit schema or on a Nessie branch, not where consumers read it, so their model
    results are not the product's build. Their test results still are the product's news."""
    rows = session.execute(sa.select(Run.id, Run.details).where(Run.product_id.is_not(None)))
    return [
        int(run_id)
        for run_id, details in rows.tuples()
        if isinstance(details, dict)
        and isinstance(details.get("wap"), dict)
        and not details["wap"].get("published")
    ]


def _counts_as_build(session: Session) -> Any:
    """The node results that tell what consumers read: all tests', and models' of published runs."""
    return sa.or_(
        NodeResult.resource_type.in_(("test", "unit_test")),
        NodeResult.run_id.not_in(unpublished_runs(session)),
    )


def last_successes(session: Session, unique_ids: Sequence[str]) -> dict[str, datetime]:
    """When each node last built successfully where consumers read it (UTC)."""
    rows = session.execute(
        sa.select(NodeResult.unique_id, sa.func.max(NodeResult.completed_at))
        .where(
            NodeResult.unique_id.in_(unique_ids), NodeResult.status == "success", _counts_as_build(session)
        )
        .group_by(NodeResult.unique_id)
    )
    return {uid: moment for uid, moment in rows if moment is not None}


__all__ = [
    "ArtifactError",
    "CatalogEntry",
    "NotFound",
    "PortalService",
]
