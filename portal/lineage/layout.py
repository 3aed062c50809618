"""A layered left-to-right layout of a lineage graph: positions only, for any drawing library.

The classic Sugiyama recipe, kept small:

1. Over a node budget, collapse whole folders (or groups) into super-nodes, largest first, and say
   how many nodes are hidden, so a 3,000-node selection stays readable and fast to draw.
2. Layers from topological generations: sources on the left, each node one layer right of its
   furthest parent, exposures in the last layer. Cycles (which a collapsed graph can have) are
   layered by their strongly connected components, so the layout never fails on them.
3. Edges spanning several layers get a virtual point in each layer they cross, so the ordering can
   route them; the points come back as bends of the edge.
4. A few barycenter sweeps reorder each layer by the mean position of its neighbours, keeping the
   ordering with the fewest edge crossings seen (so it is never worse than the start).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import networkx as nx

# Resource types drawn in the last layer, as the end of every lineage.
RIGHTMOST = frozenset({"exposure"})
# Beyond this many virtual points per real node, long edges are left out of the ordering: it keeps
# the layout fast on graphs with very long edges, at some cost in crossings.
_MAX_VIRTUAL_PER_NODE = 4


@dataclass(frozen=True, slots=True)
class SuperNode:
    """Nodes of one folder (or group) drawn as one; `id` is its node id in the layout."""

    id: str
    key: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """Where to draw each node: x is the layer (0 = leftmost), y the place in the layer (centred on 0)."""

    positions: dict[str, tuple[float, float]]
    layers: list[list[str]]  # node ids per layer, top to bottom
    edges: list[tuple[str, str]]
    bends: dict[tuple[str, str], list[tuple[float, float]]]  # inner points of edges spanning layers
    collapsed: dict[str, SuperNode] = field(default_factory=dict)
    hidden: int = 0  # real nodes inside super-nodes
    crossings: int = 0
    initial_crossings: int = 0


def layered_layout(
    graph: nx.DiGraph,
    nodes: Iterable[str] | None = None,
    *,
    max_nodes: int = 150,
    group_by: str = "folder",
    keep: Iterable[str] = (),
    expanded: Iterable[str] = (),
    sweeps: int = 4,
) -> Layout:
    """Lay out `nodes` of `graph` (default: all) left to right.

    Over `max_nodes`, nodes are collapsed into super-nodes by their `group_by` attribute (folder or
    group), except the nodes in `keep` (such as the focused node) and the groups in `expanded`.
    """
    sub = graph.subgraph(nodes) if nodes is not None else graph
    drawn, collapsed = collapse(sub, max_nodes=max_nodes, group_by=group_by, keep=keep, expanded=expanded)
    layer_of = assign_layers(drawn)
    order, segments, chains = _with_virtual_points(drawn, layer_of)
    initial = count_crossings(order, segments)
    best, best_crossings = [list(layer) for layer in order], initial
    for _ in range(sweeps):
        if best_crossings == 0:
            break
        for downward in (True, False):
            _sweep(order, segments, downward)
            crossings = count_crossings(order, segments)
            if crossings < best_crossings:
                best, best_crossings = [list(layer) for layer in order], crossings
    place = {
        node: (float(x), (len(layer) - 1) / 2 - y)
        for x, layer in enumerate(best)
        for y, node in enumerate(layer)
    }
    real_layers = [[str(n) for n in layer if not isinstance(n, _Virtual)] for layer in best]
    return Layout(
        positions={n: place[n] for n in drawn},
        layers=real_layers,
        edges=list(drawn.edges),
        bends={edge: [place[p] for p in points] for edge, points in chains.items()},
        collapsed=collapsed,
        hidden=sum(len(s.members) for s in collapsed.values()),
        crossings=best_crossings,
        initial_crossings=initial,
    )


# ---- 1. the node budget ----


def collapse(
    graph: nx.DiGraph,
    *,
    max_nodes: int,
    group_by: str = "folder",
    keep: Iterable[str] = (),
    expanded: Iterable[str] = (),
) -> tuple[nx.DiGraph, dict[str, SuperNode]]:
    """`graph` with its largest groups folded into super-nodes until at most `max_nodes` remain.

    Folders fold from the deepest level up: `models/a/b` first, then, if still over budget, `models/a`
    (taking in what `models/a/b` folded into). A super-node's attributes: resource_type "group", name
    (the key), label (key and member count), members. Edges between groups are merged, so the result
    may have cycles (A -> B -> A between two folders).
    """
    if graph.number_of_nodes() <= max_nodes:
        return graph, {}
    keep, expanded = set(keep), set(expanded)
    key_of = {n: str(d.get(group_by) or "(none)") for n, d in graph.nodes(data=True)}
    foldable = [n for n in graph if n not in keep and key_of[n] not in expanded]
    hierarchical = group_by == "folder"
    deepest = (
        max((k.count("/") + 1 for k in map(key_of.get, foldable) if k), default=1) if hierarchical else 1
    )
    members: dict[str, set[str]] = {}  # super-node key -> real nodes
    folded_into: dict[str, str] = {}  # real node -> super-node key
    count = graph.number_of_nodes()
    for depth in range(deepest, 0, -1):
        if count <= max_nodes:
            break
        # What can fold at this depth: unfolded nodes and existing super-nodes, by key prefix.
        units: dict[str, list[str | tuple[str]]] = defaultdict(list)
        for node in foldable:
            if node not in folded_into:
                units[_prefix(key_of[node], depth, hierarchical)].append(node)
        for key in members:
            units[_prefix(key, depth, hierarchical)].append((key,))
        for key, group in sorted(units.items(), key=lambda item: (-len(item[1]), item[0])):
            if count <= max_nodes or len(group) < 2:
                break
            merged: set[str] = set()
            for unit in group:
                merged |= members.pop(unit[0]) if isinstance(unit, tuple) else {unit}
            members[key] = merged
            folded_into.update(dict.fromkeys(merged, key))
            count -= len(group) - 1
    collapsed = {
        f"group:{group_by}:{key}": SuperNode(
            id=f"group:{group_by}:{key}", key=key, members=tuple(sorted(nodes))
        )
        for key, nodes in members.items()
    }
    representative = {node: f"group:{group_by}:{key}" for node, key in folded_into.items()}
    folded: nx.DiGraph = nx.DiGraph()
    folded.add_nodes_from((n, d) for n, d in graph.nodes(data=True) if n not in representative)
    folded.add_nodes_from(
        (s.id, {"resource_type": "group", "name": s.key, "label": f"{s.key} ({len(s.members)})",
                "members": s.members, group_by: s.key})
        for s in collapsed.values()
    )  # fmt: skip
    folded.add_edges_from(
        (a, b) for u, v in graph.edges if (a := representative.get(u, u)) != (b := representative.get(v, v))
    )
    return folded, collapsed


def _prefix(key: str, depth: int, hierarchical: bool) -> str:
    return "/".join(key.split("/")[:depth]) if hierarchical else key


# ---- 2. layers ----


def assign_layers(graph: nx.DiGraph) -> dict[str, int]:
    """Layer of each node: one right of its furthest parent; a cycle's nodes share a layer."""
    components = nx.condensation(graph)  # a DAG of strongly connected components
    member_of = components.graph["mapping"]
    component_layer: dict[int, int] = {}
    for depth, generation in enumerate(nx.topological_generations(components)):
        for component in generation:
            component_layer[component] = depth
    layer = {node: component_layer[member_of[node]] for node in graph}
    last = max(layer.values(), default=0)
    for node, data in graph.nodes(data=True):
        if data.get("resource_type") in RIGHTMOST and graph.out_degree(node) == 0:
            layer[node] = last
    return layer


# ---- 3. long edges ----


@dataclass(frozen=True, slots=True)
class _Virtual:
    """A point of an edge in a layer it passes through."""

    edge: tuple[str, str]
    layer: int


def _with_virtual_points(
    graph: nx.DiGraph, layer_of: dict[str, int]
) -> tuple[list[list[Hashable]], list[tuple[Hashable, Hashable]], dict[tuple[str, str], list[_Virtual]]]:
    """Initial layer orders, the segments between adjacent layers, and each long edge's points."""
    forward = [(u, v) for u, v in graph.edges if layer_of[v] > layer_of[u]]
    extra = sum(layer_of[v] - layer_of[u] - 1 for u, v in forward)
    route_long = extra <= _MAX_VIRTUAL_PER_NODE * max(graph.number_of_nodes(), 1)
    layers: list[list[Hashable]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    # Start from a stable order (by label) so the same graph always gets the same picture.
    for node in sorted(graph, key=lambda n: (str(graph.nodes[n].get("label", n)), n)):
        layers[layer_of[node]].append(node)
    segments: list[tuple[Hashable, Hashable]] = []
    chains: dict[tuple[str, str], list[_Virtual]] = {}
    for u, v in forward:
        span = layer_of[v] - layer_of[u]
        if span == 1:
            segments.append((u, v))
        elif route_long:
            points = [_Virtual((u, v), layer) for layer in range(layer_of[u] + 1, layer_of[v])]
            for point in points:
                layers[point.layer].append(point)
            path: list[Hashable] = [u, *points, v]
            segments.extend(pairwise(path))
            chains[(u, v)] = points
    return layers, segments, chains


# ---- 4. crossing reduction ----


def _sweep(
    layers: list[list[Hashable]], segments: Sequence[tuple[Hashable, Hashable]], downward: bool
) -> None:
    """Reorder each layer by the barycenter of its neighbours in the layer before it (in sweep order)."""
    neighbours: dict[Hashable, list[Hashable]] = defaultdict(list)
    for u, v in segments:
        if downward:
            neighbours[v].append(u)
        else:
            neighbours[u].append(v)
    indices = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
    for i in indices:
        fixed = {node: position for position, node in enumerate(layers[i - 1 if downward else i + 1])}
        layers[i] = sorted(layers[i], key=_barycenters(layers[i], neighbours, fixed).__getitem__)


def _barycenters(
    layer: list[Hashable], neighbours: dict[Hashable, list[Hashable]], fixed: dict[Hashable, int]
) -> dict[Hashable, float]:
    """Mean position of each node's neighbours in the fixed layer; a node with none keeps its place."""
    centers = {}
    for position, node in enumerate(layer):
        placed = [fixed[n] for n in neighbours.get(node, ()) if n in fixed]
        centers[node] = sum(placed) / len(placed) if placed else float(position)
    return centers


def count_crossings(layers: Sequence[Sequence[Hashable]], edges: Iterable[tuple[Hashable, Hashable]]) -> int:
    """Edge crossings between adjacent layers (edges not joining adjacent layers are ignored)."""
    where = {node: (x, y) for x, layer in enumerate(layers) for y, node in enumerate(layer)}
    between: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for u, v in edges:
        (xu, yu), (xv, yv) = where[u], where[v]
        if xv == xu + 1:
            between[xu].append((yu, yv))
        elif xu == xv + 1:
            between[xv].append((yv, yu))
    return sum(_inversions([b for _, b in sorted(pairs)]) for pairs in between.values())


def _inversions(values: list[int]) -> int:
    """Pairs i < j with values[i] > values[j] (two edges cross), by counting with a Fenwick tree."""
    if not values:
        return 0
    ranks = {v: r for r, v in enumerate(sorted(set(values)), start=1)}
    tree = [0] * (len(ranks) + 1)
    inversions = 0
    for seen, value in enumerate(values):
        rank = ranks[value]
        # How many earlier values are <= this one ...
        i, not_greater = rank, 0
        while i > 0:
            not_greater += tree[i]
            i -= i & -i
        inversions += seen - not_greater  # ... so the rest are greater: each is a crossing.
        i = rank
        while i < len(tree):
            tree[i] += 1
            i += i & -i
    return inversions
