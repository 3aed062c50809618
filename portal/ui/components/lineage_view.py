"""The lineage explorer, shared by the Lineage page and the product page's lineage tab."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import networkx as nx
import pandas as pd
import streamlit as st

from portal.catalog.detail import product_detail
from portal.lineage.columns import ColumnRef
from portal.lineage.errors import LineageError
from portal.lineage.graph import impact_by_owner, neighbourhood, require_node
from portal.lineage.layout import Layout, layered_layout
from portal.project.statuses import plural
from portal.service import PortalService
from portal.ui.components.context import attempt, show_error
from portal.ui.components.grid import show_grid
from portal.ui.components.lineage_figure import edges_csv, lineage_figure
from portal.ui.components.lineage_graph import lineage_drawing, show_lineage_graph
from portal.ui.components.markdown import safe_markdown

Bind = Literal["query-params"] | None


def _pick_focus(service: PortalService, prefix: str, focus: str | None, bind: Bind) -> str | None:
    """A search box and a short list of matches: big projects have too many nodes for one list."""
    graph = service.lineage().graph
    if focus is not None:
        return focus
    text = st.text_input(
        "Find a node", key=f"{prefix}_find", bind=bind, placeholder="name of a model, source or exposure"
    )
    needle = text.strip().lower()
    candidates = [
        n for n, d in graph.nodes(data=True) if not needle or needle in str(d.get("label", "")).lower()
    ]
    candidates.sort(
        key=lambda n: (
            str(graph.nodes[n].get("label", "")).lower() != needle,  # an exact name first
            not graph.nodes[n].get("is_data_product"),
            graph.nodes[n].get("label"),
        )
    )
    if not candidates:
        st.warning(f"No node matches {text!r}. Try part of its name.", icon=":material/search_off:")
        return None
    return st.selectbox(
        f"Focus ({len(candidates):,} matching)",
        candidates[:200],
        key=f"{prefix}_focus",
        bind=bind,
        format_func=lambda n: f"{graph.nodes[n].get('label')} · {graph.nodes[n].get('resource_type')}",
    )


def render_lineage(
    service: PortalService, prefix: str, focus: str | None = None, *, shareable: bool = False
) -> None:
    """Focus, depth, selector, budget; the layered graph; node details, impact and export.

    `shareable`: the controls live in the URL (the Lineage page), so a view can be sent as a link.
    """
    bind: Bind = "query-params" if shareable else None
    lineage = attempt(service.lineage)
    if lineage is None:
        return
    graph = lineage.graph
    fixed_focus = focus is not None
    focus = _pick_focus(service, prefix, focus, bind)
    controls = st.columns([1, 1, 1, 1])
    up = controls[0].number_input("Hops upstream", 0, 50, 1, key=f"{prefix}_up", bind=bind)
    down = controls[1].number_input("Hops downstream", 0, 50, 1, key=f"{prefix}_down", bind=bind)
    budget = controls[2].number_input(
        "Node budget",
        10,
        2000,
        150,
        step=10,
        key=f"{prefix}_budget",
        bind=bind,
        help="Above it, nodes are grouped by folder into expandable groups.",
    )
    colour_by = controls[3].selectbox(
        "Colour by", ["resource_type", "layer"], key=f"{prefix}_colour", bind=bind
    )
    selector = st.text_input(
        "dbt selector (overrides the hops)",
        key=f"{prefix}_selector",
        bind=bind,
        placeholder="e.g. +dp_customer_360  ·  tag:finance  ·  source:silver+  ·  2+int_orders+1",
    )
    try:
        if selector.strip():
            selection = lineage.select(selector)
            chosen = set(selection.unique_ids) & set(graph.nodes)
            for warning in selection.warnings:  # near misses dbt would only warn about
                st.warning(warning, icon=":material/search_off:")
        elif focus:
            chosen = neighbourhood(graph, focus, up=int(up), down=int(down))
        else:
            return
    except LineageError as exc:
        show_error(exc)
        return
    if not chosen:
        st.info("The selector matches no node of the graph. Check the spelling or widen it.")
        return
    expanded = st.session_state.get(f"{prefix}_expanded", [])
    layout = layered_layout(
        graph, chosen, max_nodes=int(budget), keep=[focus] if focus else [], expanded=expanded
    )
    caption = f"{len(chosen):,} nodes"
    if layout.hidden:
        caption += f" · {layout.hidden:,} hidden in {len(layout.collapsed)} groups (expand them below)"
    drawing = st.segmented_control(
        "Drawing",
        list(DRAWINGS),
        default=_default_drawing(len(layout.positions)),
        key=f"{prefix}_drawing",
        bind=bind,
        help="Graph: arrows, shapes and health, click a node. Overview: a dense plot for very large "
        "selections, with a PNG export.",
    )
    selected = _draw(
        service, prefix, layout, drawing or "Graph", colour_by=colour_by, focus=focus, caption=caption
    )
    if layout.collapsed:
        st.multiselect(
            "Expand groups",
            sorted(s.key for s in layout.collapsed.values()) + list(expanded),
            key=f"{prefix}_expanded",
        )
    st.download_button(
        "Export edges as CSV",
        edges_csv(graph, chosen),
        file_name="lineage_edges.csv",
        mime="text/csv",
        key=f"{prefix}_csv",
        icon=":material/download:",
    )
    selected = selected or (focus if focus in chosen else None)  # details of what is drawn
    if selected and selected in graph:
        _details(service, prefix, selected, page_focus=fixed_focus)


DRAWINGS = ("Graph", "Overview")
# Above this many drawn nodes the dense plot is the default: React Flow draws each node as a
# DOM element, which is what makes it readable and what makes it slow on thousands.
_GRAPH_UP_TO = 400


def _default_drawing(drawn: int) -> str:
    return "Graph" if drawn <= _GRAPH_UP_TO else "Overview"


def _draw(
    service: PortalService,
    prefix: str,
    layout: Layout,
    drawing: str,
    *,
    colour_by: str,
    focus: str | None,
    caption: str,
) -> str | None:
    """The picture; answers the node picked in it (a click in the graph, a point in the overview)."""
    graph = service.lineage().graph
    if drawing == "Graph":
        st.caption(
            caption
            + " · click a node for its details · drag to pan, scroll to zoom, the frame button fits it to view"
        )
        picked = show_lineage_graph(
            st.session_state,
            f"{prefix}_graph",
            lineage_drawing(graph, layout, focus=focus, colour_by=colour_by),
        )
        return picked if picked in graph else None
    st.caption(caption + " · drag to pan, scroll to zoom, camera icon exports a PNG")
    event = st.plotly_chart(
        lineage_figure(graph, layout, colour_by=colour_by, focus=focus),
        key=f"{prefix}_chart",
        on_select="rerun",
        selection_mode="points",
        width="stretch",
        config={"toImageButtonOptions": {"format": "png", "filename": "lineage", "scale": 2}},
    )
    points = [p.get("customdata") for p in (event.selection.points if event else []) if p.get("customdata")]
    return points[0] if points else None


def _details(service: PortalService, prefix: str, unique_id: str, *, page_focus: bool) -> None:
    lineage = service.lineage()
    data = lineage.graph.nodes[unique_id]
    st.subheader(str(data.get("label")))
    st.caption(f"{data.get('resource_type')} · `{unique_id}` · owner {data.get('owner') or 'unknown'}")
    if data.get("description"):
        st.markdown(safe_markdown(str(data["description"])[:600]))
    links = st.columns([1, 1, 3])
    if data.get("resource_type") in {"model", "seed", "snapshot"}:
        links[0].page_link(
            "app_pages/product.py",
            label="Open its page",
            icon=":material/open_in_new:",
            query_params={"id": unique_id},
        )
    if not page_focus and unique_id != st.session_state.get(f"{prefix}_focus"):
        links[1].button(
            "Focus here",
            key=f"{prefix}_refocus",
            icon=":material/center_focus_strong:",
            on_click=_refocus,
            args=(prefix, unique_id, str(data.get("label"))),
        )
    impacted = lineage.impact(unique_id)
    products = sum(i.kind == "data_product" for i in impacted)
    exposures = sum(i.kind == "exposure" for i in impacted)
    summary = f"{plural(len(impacted), 'node')} downstream"
    if impacted:
        summary += f": {plural(products, 'data product')}, {plural(exposures, 'exposure')}"
    with st.expander(f"What reads this: {summary}"):
        if not impacted:
            st.caption("Nothing downstream reads it.")
        for group in impact_by_owner(impacted):
            st.markdown(f"**{group.owner or 'No owner named'}** · {plural(len(group.nodes), 'node')}")
            show_grid(
                pd.DataFrame(
                    {
                        "name": [i.name for i in group.nodes],
                        "kind": [i.kind.replace("_", " ") for i in group.nodes],
                        "consumers": [", ".join(i.consumers) for i in group.nodes],
                        "path": [" → ".join(p.split(".")[-1] for p in i.path) for i in group.nodes],
                    }
                ),
                key=f"{prefix}_impact_{unique_id}_{group.owner}",
            )
    columns = (
        list(service.artifacts().manifest.get(unique_id).columns)
        if service.artifacts().manifest.get(unique_id)
        else []
    )
    if data.get("resource_type") == "model":
        with st.expander("Column lineage: which upstream columns feed a column"):
            if not columns:
                columns = [
                    c.name for c in (attempt(lambda: product_detail(service, unique_id).columns) or [])
                ]
            column = st.selectbox("Column", columns, index=None, key=f"{prefix}_column_{unique_id}")
            if column:
                _column_lineage(service, prefix, unique_id, column)


def _column_lineage(service: PortalService, prefix: str, unique_id: str, column: str) -> None:
    result = attempt(lambda: service.column_lineage(unique_id, column))
    if result is None:
        return
    if result.edges:
        columns = column_graph(service.lineage().graph, result.edges)
        layout = layered_layout(columns, max_nodes=len(columns) + 1)
        st.caption("Each box is a column; arrows run from the column read to the column it feeds.")
        show_lineage_graph(
            st.session_state, f"{prefix}_columns_{unique_id}_{column}", lineage_drawing(columns, layout)
        )
        with st.expander("The same as a table"):
            st.dataframe(
                pd.DataFrame(
                    {
                        "column": [f"{d.unique_id.split('.')[-1]}.{d.column}" for d, _ in result.edges],
                        "derives from": [f"{u.unique_id.split('.')[-1]}.{u.column}" for _, u in result.edges],
                    }
                ),
                hide_index=True,
                width="stretch",
                height="content",
            )
        origins = ", ".join(f"{o.unique_id.split('.')[-1]}.{o.column}" for o in result.origins)
        st.caption(f"Origins: {origins or 'none'}")
    for problem in result.untraceable:
        st.warning(f"{problem.column.column} cannot be traced: {problem.reason}", icon=":material/help:")
    if not result.edges and not result.untraceable:
        st.info("This column derives from no upstream column (a constant or a generated value).")


def column_graph(graph: nx.DiGraph, edges: Iterable[tuple[ColumnRef, ColumnRef]]) -> nx.DiGraph:
    """Columns as nodes (`model.column`, typed as their model), an edge from each column read."""
    columns = nx.DiGraph()
    for downstream, upstream in edges:
        for ref in (downstream, upstream):
            data = graph.nodes[ref.unique_id] if ref.unique_id in graph else {}
            model = str(data.get("label") or ref.unique_id.split(".")[-1])
            columns.add_node(
                f"{ref.unique_id}::{ref.column}",
                label=f"{model}.{ref.column}",
                resource_type=data.get("resource_type", "model"),
                is_data_product=data.get("is_data_product", False),
                folder=model,
            )
        columns.add_edge(
            f"{upstream.unique_id}::{upstream.column}", f"{downstream.unique_id}::{downstream.column}"
        )
    return columns


def _refocus(prefix: str, unique_id: str, label: str) -> None:
    """Make the clicked node the focus: the search finds it, the focus list shows it first."""
    st.session_state[f"{prefix}_find"] = label
    st.session_state[f"{prefix}_focus"] = unique_id


def require(service: PortalService, key: str) -> str | None:
    """The graph id of a product page's node, or None with a message."""
    try:
        return require_node(service.lineage().graph, key)
    except LineageError as exc:
        show_error(exc)
        return None
