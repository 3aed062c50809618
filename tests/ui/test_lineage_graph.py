"""The lineage graph as React Flow receives it: arrows, shapes by type, health, labels with room."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest
from streamlit.testing.v1 import AppTest

from portal.lineage.columns import ColumnRef
from portal.lineage.graph import Lineage, neighbourhood
from portal.lineage.layout import layered_layout
from portal.project.artifacts import load_manifest
from portal.settings import Settings
from portal.ui.components.lineage_graph import LOOK, lineage_drawing
from portal.ui.components.lineage_view import column_graph
from tests.conftest import FIXTURES
from tests.ui.test_pages import app, graph_nodes  # noqa: F401  (app is a fixture)

PRODUCT = "model.asgard.dp_customer_360"


@pytest.fixture(scope="module")
def demo_graph(demo_env: dict[str, str]) -> nx.DiGraph:
    settings = Settings.from_env(demo_env)
    manifest = load_manifest(Path(settings.target_dir) / "manifest.json")
    return Lineage(manifest, data_products_path=settings.data_products_path).graph


def _boxes(drawing) -> dict[str, dict]:
    return {n.id: n.asdict() for n in drawing.state.nodes}


def test_edges_are_directed_with_arrowheads_from_parent_to_child(demo_graph: nx.DiGraph) -> None:
    chosen = neighbourhood(demo_graph, PRODUCT, up=3, down=2)
    drawing = lineage_drawing(demo_graph, layered_layout(demo_graph, chosen), focus=PRODUCT)
    edges = [e.asdict() for e in drawing.state.edges]
    assert {(e["source"], e["target"]) for e in edges} == set(demo_graph.subgraph(chosen).edges)
    assert all(e["markerEnd"]["type"] == "arrowclosed" for e in edges)
    boxes = _boxes(drawing)
    # left to right: every parent is drawn left of its child, handles on the sides that face
    for edge in edges:
        assert boxes[edge["source"]]["position"]["x"] < boxes[edge["target"]]["position"]["x"]
    assert {b["sourcePosition"] for b in boxes.values()} == {"right"}
    assert "boxShadow" in boxes[PRODUCT]["style"]  # the focus stands out


def test_shapes_and_colours_tell_the_type_and_the_border_tells_health(demo_graph: nx.DiGraph) -> None:
    chosen = neighbourhood(demo_graph, PRODUCT, up=3, down=0)
    graph = demo_graph.copy()
    graph.nodes["model.asgard.int_orders"]["status"] = "error"  # as a failed build records it
    boxes = _boxes(lineage_drawing(graph, layered_layout(graph, chosen)))
    source = next(b for n, b in boxes.items() if n.startswith("source."))
    assert source["style"]["borderRadius"] == LOOK["source"][1]  # a pill
    assert source["type"] == "input"  # nothing flows into a source
    assert boxes[PRODUCT]["style"]["border"].startswith("3px")  # the product's thick edge
    assert boxes[PRODUCT]["style"]["background"] != boxes["model.asgard.int_orders"]["style"]["background"]
    assert "#e03131" in boxes["model.asgard.int_orders"]["style"]["border"]
    assert "failing" in boxes["model.asgard.int_orders"]["data"]["content"]


def test_no_label_is_cut_or_overlaps_the_next_layer_on_a_big_project() -> None:
    manifest = load_manifest(FIXTURES / "spellbook_dex" / "manifest.json.gz")
    graph = Lineage(manifest).graph
    layout = layered_layout(graph, list(graph.nodes)[:400], max_nodes=400)
    drawing = lineage_drawing(graph, layout)
    boxes = _boxes(drawing)
    lefts = sorted({b["position"]["x"] for b in boxes.values()})
    for node, box in boxes.items():
        assert box["style"]["whiteSpace"] == "nowrap"  # never wrapped or ellipsised
        text = max(box["data"]["content"].replace("\\", "").split("\n"), key=len)
        right_of = [x for x in lefts if x > box["position"]["x"]]
        if right_of:  # the next layer starts after the widest text of this one
            assert right_of[0] - box["position"]["x"] >= len(text) * 6.5, node


def test_project_text_cannot_inject_markdown_into_a_node() -> None:
    graph = nx.DiGraph()
    graph.add_node("model.x.evil", label="[click](http://example.com) *x*", resource_type="model")
    content = _boxes(lineage_drawing(graph, layered_layout(graph)))["model.x.evil"]["data"]["content"]
    assert "\\[click\\]\\(http\\:\\/\\/example\\.com\\)" in content and "\\*x\\*" in content


def test_column_lineage_is_a_graph_of_columns(demo_graph: nx.DiGraph) -> None:
    edges = [
        (ColumnRef(PRODUCT, "lifetime_value"), ColumnRef("model.asgard.int_orders", "net_revenue")),
        (ColumnRef("model.asgard.int_orders", "net_revenue"), ColumnRef("model.asgard.stg_orders", "amount")),
    ]
    columns = column_graph(demo_graph, edges)
    assert set(columns.edges) == {
        ("model.asgard.int_orders::net_revenue", f"{PRODUCT}::lifetime_value"),
        ("model.asgard.stg_orders::amount", "model.asgard.int_orders::net_revenue"),
    }
    assert columns.nodes[f"{PRODUCT}::lifetime_value"]["label"] == "dp_customer_360.lifetime_value"
    assert columns.nodes[f"{PRODUCT}::lifetime_value"]["is_data_product"]


def test_the_page_draws_the_graph_and_the_overview_on_request(app: Callable[..., AppTest]) -> None:  # noqa: F811
    at = app("app_pages/lineage.py")
    at.text_input(key="lineage_find").input("dp_customer_360").run()
    assert PRODUCT in graph_nodes(at, "lineage_graph")
    assert not at.get("plotly_chart")
    at.segmented_control(key="lineage_drawing").set_value("Overview").run()
    assert at.get("plotly_chart") and not [
        c for c in at.get("component_instance") if c.key == "lineage_graph"
    ]
    assert not at.exception


def test_the_column_lineage_is_drawn_as_a_graph_on_the_product_page(app: Callable[..., AppTest]) -> None:  # noqa: F811
    at = app("app_pages/product.py", id="dp_customer_360", tab="Lineage")
    at.selectbox(key=f"product_lineage_column_{PRODUCT}").select("lifetime_value").run()
    (component,) = [
        c
        for c in at.get("component_instance")
        if c.key == f"product_lineage_columns_{PRODUCT}_lifetime_value"
    ]
    nodes = {n["id"] for n in json.loads(component.proto.json_args)["nodes"]}
    assert f"{PRODUCT}::lifetime_value" in nodes and len(nodes) > 1
    assert not at.exception


def test_a_lineage_view_is_a_link_to_share(app: Callable[..., AppTest]) -> None:  # noqa: F811
    at = app("app_pages/lineage.py", lineage_selector="+dp_revenue_analytics", lineage_drawing="Graph")
    assert at.text_input(key="lineage_selector").value == "+dp_revenue_analytics"
    assert "source.asgard.silver.orders" in graph_nodes(at, "lineage_graph")
    assert "model.asgard.dp_customer_360" not in graph_nodes(at, "lineage_graph")
    assert not at.subheader or at.subheader[0].value != "dp_customer_360"  # no details of an undrawn focus
