"""The lineage graph the UI draws, and what is asked of it.

`build_graph` gives a networkx DiGraph of resources only, with the tests folded into the attributes of
the node they test; `apply_run_results` adds the latest run's statuses; `neighbourhood`, `find_nodes`
and `require_node` find nodes in it; `impact` lists the data products and exposures downstream of a
node; `Lineage` holds one manifest's selection index and graph for the pages that share them.

networkx is imported only where the graph is built, so importing this module stays cheap.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portal.lineage.errors import UnknownNodeError
from portal.lineage.index import LISTED_TYPES, SECTIONS, TEST_TYPES, ManifestIndex
from portal.lineage.selector import Selection, select
from portal.project.artifacts import gc_paused
from portal.project.statuses import BUILD_FAILED

if TYPE_CHECKING:
    import networkx as nx

    from portal.project.artifacts import Manifest, RunResults


# --------------------------------------------------------------------------------------------------
# The UI graph
# --------------------------------------------------------------------------------------------------

# Resource types drawn as graph nodes. Tests are attributes of what they test; analyses and hooks
# are not part of a product's lineage.
GRAPH_TYPES = LISTED_TYPES - TEST_TYPES


def _data_products_path(configured: str | None) -> str:
    if configured is None:
        from portal.settings import Settings

        configured = Settings.from_env().data_products_path
    return configured.strip("/") + "/"


def _owner(meta: dict[str, Any], group_owner: str | None, entry: dict[str, Any]) -> str | None:
    owner = meta.get("owner") or group_owner or entry.get("owner")
    if isinstance(owner, dict):  # exposures and groups: {name, email}
        owner = owner.get("name") or owner.get("email")
    return str(owner) if owner else None


def _consumers(meta: dict[str, Any]) -> list[str]:
    consumers = meta.get("consumers") or []
    if isinstance(consumers, str):
        return [consumers]
    return [str(c.get("name", c)) if isinstance(c, dict) else str(c) for c in consumers]


def _node_attributes(
    entry: dict[str, Any], tags: tuple[str, ...], products_path: str, group_owners: dict[str, str | None]
) -> dict[str, Any]:
    config = entry.get("config") or {}
    meta = {**(entry.get("meta") or {}), **(config.get("meta") or {})}
    resource_type = entry.get("resource_type", "")
    path = entry.get("original_file_path") or ""
    fqn = entry.get("fqn") or []
    group = config.get("group") or entry.get("group")
    product_type = meta.get("data_product_type")
    is_product = resource_type == "model" and (bool(product_type) or path.startswith(products_path))
    name = entry.get("name", "")
    source_name = entry.get("source_name")
    return {
        "resource_type": resource_type,
        "name": name,
        "label": f"{source_name}.{name}" if source_name else name,
        "package": entry.get("package_name", ""),
        "path": path,
        "folder": path.rpartition("/")[0],
        # The first folder under models/ (staging, marts, ...); other resources are their own layer.
        "layer": fqn[1] if resource_type in {"model", "seed", "snapshot"} and len(fqn) > 2 else resource_type,
        "owner": _owner(meta, group_owners.get(group) if group else None, entry),
        "consumers": _consumers(meta),
        "group": group,
        "access": entry.get("access"),
        "is_data_product": is_product,
        "data_product_type": product_type,
        "materialized": config.get("materialized"),
        "description": entry.get("description") or "",
        "tags": list(tags),
        "relation": entry.get("relation_name"),
        "status": None,  # filled from run results by apply_run_results
        "tests": [],
    }


def build_graph(
    manifest: Manifest | dict[str, Any],
    index: ManifestIndex | None = None,
    *,
    data_products_path: str | None = None,
    with_tests: bool = False,
) -> nx.DiGraph:
    """The lineage DiGraph: an edge runs from each parent to what depends on it.

    Each node's attributes: resource_type, name, label, package, path, folder, layer, owner,
    consumers, group, access, is_data_product, data_product_type, materialized, description, tags,
    relation, status (None until `apply_run_results`) and tests (one dict per test of the node:
    unique_id, name, column, status). `with_tests` also adds tests as nodes. `manifest` is a loaded
    Manifest or the parsed manifest.json itself.
    """
    import networkx as nx

    raw = manifest if isinstance(manifest, dict) else manifest.raw
    index = index or ManifestIndex.from_raw(raw)
    products_path = _data_products_path(data_products_path)
    group_owners = {
        g.get("name", ""): _owner({}, None, g)
        for g in (raw.get("groups") or {}).values()
        if isinstance(g, dict)
    }
    drawn = GRAPH_TYPES | TEST_TYPES if with_tests else GRAPH_TYPES
    graph: nx.DiGraph = nx.DiGraph(project_name=index.project_name, adapter_type=index.adapter_type)
    with gc_paused():
        types = index.resource_types
        keep = [i for i, t in enumerate(types) if t in drawn]
        entries = _entries_by_id(raw)
        ids = index.unique_ids
        graph.add_nodes_from(
            (ids[i], _node_attributes(entries[ids[i]], index.tags[i], products_path, group_owners))
            for i in keep
        )
        graph.add_edges_from((ids[p], ids[i]) for i in keep for p in index.parents[i] if types[p] in drawn)
        _attach_tests(graph, index, entries)
    return graph


def _entries_by_id(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        entries.update(raw.get(section) or {})
    return entries


def _attach_tests(graph: nx.DiGraph, index: ManifestIndex, entries: dict[str, dict[str, Any]]) -> None:
    for i, resource_type in enumerate(index.resource_types):
        if resource_type not in TEST_TYPES:
            continue
        unique_id = index.unique_ids[i]
        entry = entries[unique_id]
        attached = entry.get("attached_node")
        # A relationships test hangs on the model it is declared on, not on the model it refers to.
        targets = [attached] if attached in graph else [index.unique_ids[p] for p in index.parents[i]]
        summary = {
            "unique_id": unique_id,
            "name": index.test_names[i] or index.names[i],
            "column": entry.get("column_name"),
            "status": None,
        }
        for target in targets:
            if target in graph:
                graph.nodes[target]["tests"].append(summary)


def apply_run_results(graph: nx.DiGraph, run_results: RunResults) -> None:
    """Fill each node's `status` and its tests' statuses from the latest run, and count failing tests."""
    status = {result.unique_id: result.status for result in run_results.results}
    for unique_id, data in graph.nodes(data=True):
        data["status"] = status.get(unique_id, data.get("status"))
        for test in data["tests"]:
            test["status"] = status.get(test["unique_id"], test["status"])
        data["failing_tests"] = sum(1 for t in data["tests"] if t["status"] in BUILD_FAILED)


def neighbourhood(graph: nx.DiGraph, unique_id: str, up: int | None = 1, down: int | None = 1) -> set[str]:
    """A node (unique id or name) and the nodes within `up` steps upstream and `down` downstream (None: all)."""
    start = require_node(graph, unique_id)
    found = {start}
    for step, depth in ((graph.predecessors, up), (graph.successors, down)):
        frontier, seen, steps = {start}, {start}, 0
        while frontier and (depth is None or steps < depth):
            frontier = {n for node in frontier for n in step(node) if n not in seen}
            seen |= frontier
            steps += 1
        found |= seen
    return found


def find_nodes(graph: nx.DiGraph, text: str) -> list[str]:
    """Nodes whose unique id, name or label is `text`, models and seeds first."""
    if text in graph:
        return [text]
    rank = {"model": 0, "seed": 1, "snapshot": 2, "source": 3}
    hits = [n for n, d in graph.nodes(data=True) if text in (d["name"], d["label"])]
    return sorted(hits, key=lambda n: (rank.get(graph.nodes[n]["resource_type"], 9), n))


def require_node(graph: nx.DiGraph, text: str) -> str:
    """The unique id `text` names in `graph`, or UnknownNodeError with close names."""
    hits = find_nodes(graph, text)
    if hits:
        return hits[0]
    pool = [d["label"] for _, d in graph.nodes(data=True)] + list(graph.nodes)
    raise UnknownNodeError(text, difflib.get_close_matches(text, pool, n=5, cutoff=0.75))


# --------------------------------------------------------------------------------------------------
# Impact analysis
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Impacted:
    """A node downstream of a changed one: a data product, an exposure, or any other model,
    metric, semantic model, saved query, snapshot or seed that reads it."""

    unique_id: str
    name: str
    kind: str  # "data_product", or the resource type: exposure, model, metric, semantic_model, ...
    owner: str | None
    consumers: tuple[str, ...]
    path: tuple[str, ...]  # a shortest path from the changed node to this one, both included

    @property
    def distance(self) -> int:
        return len(self.path) - 1


def impact(graph: nx.DiGraph, unique_id: str) -> list[Impacted]:
    """What reads `unique_id`, directly or not: every downstream node, nearest first.

    Consumers are the node's `meta.consumers` plus the exposures that read it directly.
    """
    start = require_node(graph, unique_id)
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:  # breadth-first, so the first way found to a node is a shortest one
        node = queue.popleft()
        for child in graph.successors(node):
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    impacted = []
    for node in came_from:
        if node == start:
            continue
        data = graph.nodes[node]
        path = [node]
        while (previous := came_from[path[-1]]) is not None:
            path.append(previous)
        exposures = [graph.nodes[c]["label"] for c in graph.successors(node)
                     if graph.nodes[c]["resource_type"] == "exposure"]  # fmt: skip
        impacted.append(
            Impacted(
                unique_id=node,
                name=data["label"],
                kind="data_product" if data["is_data_product"] else data["resource_type"],
                owner=data["owner"],
                consumers=tuple(dict.fromkeys([*data["consumers"], *exposures])),
                path=tuple(reversed(path)),
            )
        )
    return sorted(impacted, key=lambda i: (len(i.path), i.name))


@dataclass(frozen=True)
class OwnerImpact:
    """The downstream nodes one owner answers for."""

    owner: str | None  # None: nobody is named
    nodes: tuple[Impacted, ...]  # data products first, then nearest first

    @property
    def data_products(self) -> int:
        return sum(n.kind == "data_product" for n in self.nodes)


def impact_by_owner(impacted: Iterable[Impacted]) -> list[OwnerImpact]:
    """`impact` grouped by owner, for the people to tell: the owners of data products first (the
    most of them first), then the other owners by name, and nodes nobody owns last."""
    groups: dict[str | None, list[Impacted]] = {}
    for node in impacted:
        groups.setdefault(node.owner, []).append(node)
    found = [
        OwnerImpact(owner, tuple(sorted(nodes, key=lambda n: (n.kind != "data_product", n.distance, n.name))))
        for owner, nodes in groups.items()
    ]
    return sorted(found, key=lambda g: (g.owner is None, -g.data_products, g.owner or ""))


# --------------------------------------------------------------------------------------------------
# One manifest's lineage, for the UI
# --------------------------------------------------------------------------------------------------


class Lineage:
    """A manifest's selection index and UI graph, built once and shared by the pages that need them."""

    def __init__(self, manifest: Manifest, *, data_products_path: str | None = None) -> None:
        self.manifest = manifest
        self.index = ManifestIndex.from_manifest(manifest)
        self._data_products_path = data_products_path
        self._graph: nx.DiGraph | None = None

    @property
    def graph(self) -> nx.DiGraph:
        if self._graph is None:
            self._graph = build_graph(self.manifest, self.index, data_products_path=self._data_products_path)
        return self._graph

    def select(
        self,
        selector: str | Sequence[str] | None,
        exclude: str | Sequence[str] | None = None,
        *,
        selector_name: str | None = None,
    ) -> Selection:
        """dbt selection without tests, which the graph holds as node attributes; `selector_name`
        is a selector of the project's selectors.yml."""
        return select(self.index, selector, exclude, selector_name=selector_name)

    def subgraph(self, unique_ids: Iterable[str]) -> nx.DiGraph:
        return self.graph.subgraph(u for u in unique_ids if u in self.graph)

    def impact(self, unique_id: str) -> list[Impacted]:
        return impact(self.graph, unique_id)
