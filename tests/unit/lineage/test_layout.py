"""The layered layout: layers follow edges, crossings only go down, big selections fold into super-nodes."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest

from portal.lineage.graph import Lineage
from portal.lineage.layout import assign_layers, collapse, count_crossings, layered_layout
from portal.project.artifacts import load_manifest

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"


@pytest.fixture(scope="module")
def calitp() -> Lineage:
    return Lineage(
        load_manifest(FIXTURES / "calitp_warehouse" / "manifest.json.gz"), data_products_path="models/mart"
    )


def random_dag(seed: int, nodes: int = 60, edges: int = 120) -> nx.DiGraph:
    rng = random.Random(seed)
    graph = nx.DiGraph()
    graph.add_nodes_from((f"n{i:03}", {"folder": f"f{i % 5}"}) for i in range(nodes))
    while graph.number_of_edges() < edges:
        a, b = sorted(rng.sample(range(nodes), 2))
        graph.add_edge(f"n{a:03}", f"n{b:03}")
    return graph


def test_count_crossings_counts_each_crossing_once() -> None:
    layers = [["a", "b"], ["c", "d"]]
    assert count_crossings(layers, [("a", "c"), ("b", "d")]) == 0
    assert count_crossings(layers, [("a", "d"), ("b", "c")]) == 1
    assert count_crossings(layers, [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")]) == 1
    assert count_crossings([["a", "b", "c"], ["x", "y", "z"]], [("a", "z"), ("b", "y"), ("c", "x")]) == 3


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_crossing_reduction_never_makes_it_worse(seed: int) -> None:
    layout = layered_layout(random_dag(seed), max_nodes=1000)
    assert layout.crossings <= layout.initial_crossings
    assert layout.crossings < layout.initial_crossings  # random graphs always leave room to improve


def test_crossings_go_down_on_real_lineage(calitp: Lineage) -> None:
    nodes = calitp.select("+exposure:california_open_data").unique_ids
    layout = layered_layout(calitp.graph, nodes, max_nodes=1000)
    assert len(layout.positions) == len(nodes)
    assert layout.crossings < layout.initial_crossings


def test_layers_respect_edges_sources_left_exposures_right(calitp: Lineage) -> None:
    nodes = calitp.select("+exposure:*").unique_ids
    layout = layered_layout(calitp.graph, nodes, max_nodes=1000)
    x = {node: position[0] for node, position in layout.positions.items()}
    assert all(x[u] < x[v] for u, v in layout.edges)
    last = max(x.values())
    for node in nodes:
        kind = calitp.graph.nodes[node]["resource_type"]
        if kind == "source":
            assert x[node] == 0
        if kind == "exposure":
            assert x[node] == last


def test_every_node_has_a_distinct_place() -> None:
    layout = layered_layout(random_dag(7), max_nodes=1000)
    assert len(set(layout.positions.values())) == len(layout.positions) == 60
    assert sorted(n for layer in layout.layers for n in layer) == sorted(layout.positions)


def test_long_edges_bend_through_each_layer_they_cross() -> None:
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")])
    layout = layered_layout(graph)
    assert [x for x, _ in layout.bends[("a", "d")]] == [1.0, 2.0]
    assert ("a", "b") not in layout.bends


def test_cycles_are_laid_out_not_refused() -> None:
    graph = nx.DiGraph([("s", "a"), ("a", "b"), ("b", "a"), ("b", "t")])
    layers = assign_layers(graph)
    assert layers["a"] == layers["b"] and layers["s"] < layers["a"] < layers["t"]
    assert set(layered_layout(graph).positions) == {"s", "a", "b", "t"}


def test_over_budget_folders_fold_into_super_nodes(calitp: Lineage) -> None:
    graph = calitp.graph
    focus = "model.calitp_warehouse.dim_schedule_feeds"
    nodes = calitp.select("+dim_schedule_feeds+").unique_ids
    layout = layered_layout(graph, nodes, max_nodes=40, keep=[focus])
    assert len(layout.positions) <= 40
    assert focus in layout.positions
    hidden = [member for group in layout.collapsed.values() for member in group.members]
    assert layout.hidden == len(hidden) == len(set(hidden))
    assert len(layout.positions) - len(layout.collapsed) + layout.hidden == len(nodes)
    for group in layout.collapsed.values():
        assert graph.nodes[group.members[0]]["folder"].startswith(group.key)
        assert layout.positions[group.id]


def test_expanded_groups_stay_open(calitp: Lineage) -> None:
    nodes = calitp.select("+dim_schedule_feeds+").unique_ids
    folders = {calitp.graph.nodes[n]["folder"] for n in nodes}
    opened = "models/staging/gtfs"
    assert opened in folders
    layout = layered_layout(calitp.graph, nodes, max_nodes=40, expanded=[opened])
    inside = [n for n in nodes if calitp.graph.nodes[n]["folder"] == opened]
    assert all(n in layout.positions for n in inside)


def test_collapse_by_group_merges_edges() -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from([("a1", {"group": "a"}), ("a2", {"group": "a"}), ("b1", {"group": "b"}), ("c", {})])
    graph.add_edges_from([("a1", "b1"), ("a2", "b1"), ("b1", "c")])
    folded, collapsed = collapse(graph, max_nodes=3, group_by="group")
    assert set(collapsed) == {"group:group:a"}
    assert set(folded.edges) == {("group:group:a", "b1"), ("b1", "c")}
    assert folded.nodes["group:group:a"]["label"] == "a (2)"


def test_small_graphs_are_left_alone() -> None:
    graph = random_dag(3, nodes=10, edges=12)
    folded, collapsed = collapse(graph, max_nodes=10)
    assert folded is graph and collapsed == {}
