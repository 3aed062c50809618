"""The lineage picture: a plotly figure drawn from a computed layered layout.

Positions come from `portal.lineage.layout` (the core decides where things go); this module only
chooses marks and colours, so the Lineage page and the product page's lineage tab draw the
same picture. One scatter trace per colour group keeps the figure small at 1,000 nodes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import networkx as nx
import plotly.graph_objects as go

from portal.lineage.layout import Layout
from portal.project.statuses import BUILD_FAILED

PALETTE = {
    "source": "#2f9e44",
    "seed": "#74b816",
    "snapshot": "#f08c00",
    "model": "#1c7ed6",
    "exposure": "#ae3ec9",
    "metric": "#e64980",
    "semantic_model": "#d6336c",
    "saved_query": "#a61e4d",
    "group": "#868e96",
}
LAYER_PALETTE = ["#2f9e44", "#1c7ed6", "#4263eb", "#7048e8", "#ae3ec9", "#e64980", "#f08c00", "#868e96"]
FAILING = "#e03131"


def _colour_key(data: dict, colour_by: str) -> str:
    if colour_by == "layer":
        return str(data.get("layer") or data.get("folder") or "other")
    return "data product" if data.get("is_data_product") else str(data.get("resource_type", "model"))


def failing(data: dict) -> bool:
    return data.get("status") in BUILD_FAILED or any(
        t.get("status") in BUILD_FAILED for t in data.get("tests", ())
    )


def lineage_figure(
    graph: nx.DiGraph, layout: Layout, *, colour_by: str = "resource_type", focus: str | None = None
) -> go.Figure:
    """Nodes as markers (diamonds for data products, squares for collapsed groups), edges as lines."""
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for source, target in layout.edges:
        points = [layout.positions[source], *layout.bends.get((source, target), []), layout.positions[target]]
        for x, y in points:
            edge_x.append(x)
            edge_y.append(y)
        edge_x.append(None)
        edge_y.append(None)
    figure = go.Figure(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"width": 1, "color": "#adb5bd"},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    groups: dict[str, list[str]] = {}
    for node in layout.positions:
        key = "group" if node in layout.collapsed else _colour_key(graph.nodes[node], colour_by)
        groups.setdefault(key, []).append(node)
    layer_colours = {k: LAYER_PALETTE[i % len(LAYER_PALETTE)] for i, k in enumerate(sorted(groups))}
    for key, nodes in sorted(groups.items()):
        colour = PALETTE.get(key, "#1c7ed6") if colour_by != "layer" else layer_colours[key]
        if key == "data product" and colour_by != "layer":
            colour = "#e8590c"
        symbols, outlines, texts, hovers = [], [], [], []
        for node in nodes:
            if node in layout.collapsed:
                members = layout.collapsed[node].members
                symbols.append("square")
                outlines.append("#495057")
                texts.append(f"{layout.collapsed[node].key} ({len(members)})")
                hovers.append(f"{len(members)} nodes in {layout.collapsed[node].key}")
                continue
            data = graph.nodes[node]
            symbols.append("diamond" if data.get("is_data_product") else "circle")
            outlines.append(FAILING if failing(data) else ("#212529" if node == focus else "#ffffff"))
            texts.append(str(data.get("label") or data.get("name")))
            owner = f"<br>owner: {data['owner']}" if data.get("owner") else ""
            status = f"<br>status: {data['status']}" if data.get("status") else ""
            hovers.append(f"<b>{data.get('label')}</b><br>{data.get('resource_type')}{owner}{status}")
        figure.add_trace(
            go.Scatter(
                x=[layout.positions[n][0] for n in nodes],
                y=[layout.positions[n][1] for n in nodes],
                mode="markers+text",
                name=key,
                text=texts,
                textposition="top center",
                textfont={"size": 10},
                hovertext=hovers,
                hoverinfo="text",
                customdata=nodes,
                marker={
                    "size": 16,
                    "color": colour,
                    "symbol": symbols,
                    "line": {"width": 2.5, "color": outlines},
                },
            )
        )
    height = max(360, 42 * max((len(layer) for layer in layout.layers), default=1))
    figure.update_layout(
        height=min(height, 1600),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False},
        yaxis={"visible": False},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.02},
        dragmode="pan",
        clickmode="event+select",
    )
    return figure


def edges_csv(graph: nx.DiGraph, nodes: Iterable[str]) -> str:
    """The selection's edges as CSV (parent, child and their types), for export."""
    chosen = set(nodes)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["parent", "parent_type", "child", "child_type"])
    for parent, child in sorted(graph.subgraph(chosen).edges):
        writer.writerow(
            [parent, graph.nodes[parent].get("resource_type"), child, graph.nodes[child].get("resource_type")]
        )
    return out.getvalue()
