"""The lineage graph a person reads at a glance: React Flow (streamlit-flow) over our own layout.

Positions come from `portal.lineage.layout` (the layered layout that holds up on 1,900 models);
this module only turns them into React Flow nodes and edges: directed edges with arrowheads,
a shape and colour per resource type, the border by health, labels sized to their text (never
clipped: the columns are spaced by the longest label), click to pick a node, fit to view.
The component ships its JavaScript in its wheel, so the browser fetches nothing from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from streamlit_flow import streamlit_flow
from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.state import StreamlitFlowState

from portal.lineage.layout import Layout
from portal.ui.components.lineage_figure import LAYER_PALETTE, failing
from portal.ui.components.markdown import escape

# What each resource type looks like: (fill, border radius, border style, glyph). Shapes differ
# so that the kind of a node reads without colour (sources are pills, products have a thick edge).
LOOK: dict[str, tuple[str, str, str, str]] = {
    "source": ("#ebfbee", "999px", "solid", "⛁"),
    "seed": ("#f4fce3", "999px", "solid", "🌱"),
    "snapshot": ("#fff4e6", "4px", "solid", "📷"),
    "model": ("#e7f5ff", "6px", "solid", "▦"),
    "data product": ("#fff4e6", "6px", "solid", "◆"),
    "exposure": ("#f8f0fc", "18px", "dashed", "▶"),
    "metric": ("#fff0f6", "2px", "dotted", "∑"),
    "semantic_model": ("#fff0f6", "2px", "dotted", "◇"),
    "saved_query": ("#fff0f6", "2px", "dotted", "?"),
    "group": ("#f1f3f5", "6px", "dashed", "▤"),
}
HEALTH_BORDER = {"failing": "#e03131", "passing": "#2f9e44", "unknown": "#adb5bd"}
PRODUCT_BORDER = "#e8590c"
# Pixels per layer and per place in a layer; a layer is as wide as its longest label needs.
_ROW_GAP = 84
_CHAR_PX = 7.5
_MIN_COLUMN = 200


@dataclass(frozen=True)
class Drawing:
    """The React Flow state of one picture and the height it wants on the page."""

    state: StreamlitFlowState
    height: int
    signature: tuple


def _kind(data: dict) -> str:
    return "data product" if data.get("is_data_product") else str(data.get("resource_type", "model"))


def _health(data: dict) -> str:
    if failing(data):
        return "failing"
    return "passing" if data.get("status") else "unknown"


def node_label(graph: nx.DiGraph, layout: Layout, node: str) -> str:
    if node in layout.collapsed:
        group = layout.collapsed[node]
        return f"{group.key} ({len(group.members)})"
    data = graph.nodes[node]
    return str(data.get("label") or data.get("name") or node)


def _facts(graph: nx.DiGraph, layout: Layout, node: str) -> tuple[str, str, str, str]:
    """Kind, health, label and the caption line under it."""
    label = node_label(graph, layout, node)
    if node in layout.collapsed:
        return "group", "unknown", label, f"{len(layout.collapsed[node].members)} nodes, grouped"
    data = graph.nodes[node]
    kind, health = _kind(data), _health(data)
    caption = kind.replace("_", " ")
    if data.get("owner"):
        caption += f" · {data['owner']}"
    if health == "failing":
        caption += " · failing"
    return kind, health, label, caption


def _chars(graph: nx.DiGraph, layout: Layout, node: str) -> int:
    """How wide a node's text is, in characters (the bold label counts a little wider)."""
    _, _, label, caption = _facts(graph, layout, node)
    return max(int(len(label) * 1.1) + 2, len(caption))


def _node(
    graph: nx.DiGraph,
    layout: Layout,
    node: str,
    position: tuple[float, float],
    focus: str | None,
    layer_fill: dict[str, str] | None,
) -> StreamlitFlowNode:
    kind, health, label, caption = _facts(graph, layout, node)
    fill, radius, border_style, glyph = LOOK.get(kind, LOOK["model"])
    if layer_fill is not None and node not in layout.collapsed:
        data = graph.nodes[node]
        fill = layer_fill[str(data.get("layer") or data.get("folder") or "other")]
    border = HEALTH_BORDER[health]
    width = 3 if kind == "data product" else 1.5
    if kind == "data product" and health != "failing":
        border = PRODUCT_BORDER
    style = {
        "background": fill,
        "borderRadius": radius,
        "border": f"{width}px {border_style} {border}",
        "padding": "4px 10px",
        "fontSize": "13px",
        "color": "#212529",
        "whiteSpace": "nowrap",  # a label is never wrapped or cut: the column is made wide enough
        "textAlign": "left",
    }
    if node == focus:
        style["boxShadow"] = "0 0 0 3px #343a40"
    parents = graph.in_degree(node) if node in graph else 1
    node_type = "output" if kind == "exposure" else ("input" if not parents else "default")
    return StreamlitFlowNode(
        id=node,
        pos=position,
        data={"content": f"{glyph} **{escape(label)}**  \n{escape(caption)}"},
        node_type=node_type,
        source_position="right",
        target_position="left",
        draggable=True,
        selectable=True,
        connectable=False,
        style=style,
    )


def lineage_drawing(
    graph: nx.DiGraph, layout: Layout, *, focus: str | None = None, colour_by: str = "resource_type"
) -> Drawing:
    """React Flow nodes at the layout's positions, edges with arrows from parent to child.

    Coloured by layer, the fill tells the layer (a light tint of its colour) and the shape still
    tells the resource type.
    """
    layer_fill = None
    if colour_by == "layer":
        keys = sorted(
            {
                str(graph.nodes[n].get("layer") or graph.nodes[n].get("folder") or "other")
                for n in layout.positions
                if n in graph
            }
        )
        layer_fill = {k: LAYER_PALETTE[i % len(LAYER_PALETTE)] + "33" for i, k in enumerate(keys)}
    widths = [max((_chars(graph, layout, n) for n in layer), default=0) for layer in layout.layers]
    lefts, x = [], 0.0
    for chars in widths:
        lefts.append(x)
        x += max(_MIN_COLUMN, chars * _CHAR_PX + 90)
    top = max((len(layer) for layer in layout.layers), default=1) / 2
    nodes = []
    for node, (layer, place) in layout.positions.items():
        position = (lefts[int(layer)], (top - place) * _ROW_GAP)
        nodes.append(_node(graph, layout, node, position, focus, layer_fill))
    edges = []
    for source, target in layout.edges:
        data = graph.nodes[source] if source in graph else {}
        red = bool(data) and failing(data)
        edges.append(
            StreamlitFlowEdge(
                id=f"{source}->{target}",
                source=source,
                target=target,
                edge_type="default",
                marker_end={
                    "type": "arrowclosed",
                    "color": "#e03131" if red else "#868e96",
                    "width": 18,
                    "height": 18,
                },
                style={"stroke": "#e03131" if red else "#868e96", "strokeWidth": 1.5},
                focusable=False,
            )
        )
    rows = max((len(layer) for layer in layout.layers), default=1)
    signature = (tuple(sorted(layout.positions)), len(layout.edges), focus, colour_by)
    return Drawing(
        state=StreamlitFlowState(nodes=nodes, edges=edges),
        height=int(min(900, max(380, rows * _ROW_GAP + 80))),
        signature=signature,
    )


def show_lineage_graph(session: dict, key: str, drawing: Drawing) -> str | None:
    """Draw it and answer the id of the node last clicked (None before any click).

    The state is kept per key while the picture stays the same: handing React Flow a new state
    on every rerun would reset the user's pan and zoom.
    """
    kept = session.get(f"{key}_state")
    if kept is None or session.get(f"{key}_signature") != drawing.signature:
        kept = drawing.state
        session[f"{key}_signature"] = drawing.signature
    state = streamlit_flow(
        key,
        kept,
        height=drawing.height,
        fit_view=True,
        show_controls=True,
        show_minimap=len(drawing.state.nodes) > 60,
        get_node_on_click=True,
        pan_on_drag=True,
        allow_zoom=True,
        min_zoom=0.05,
        hide_watermark=True,
    )
    session[f"{key}_state"] = state
    return state.selected_id
