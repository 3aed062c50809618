"""Catalog: every data product with its health at a glance; search, filter, sort."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.service import SORTS, CatalogEntry, CatalogQuery
from portal.ui.components.badges import HEALTH_ICON, ago, health_label, tests_label
from portal.ui.components.context import attempt, get_service

st.title("Data product catalog")
service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()

all_models = st.toggle(
    "Show all models, not only data products",
    key="all_models",
    help="Browse every model, seed and snapshot of the dbt project.",
)
facets = service.facets(include_all_models=all_models)
text = st.text_input(
    "Search",
    key="catalog_search",
    placeholder="name, description, column, tag or owner …",
    label_visibility="collapsed",
)
left, middle, right, last = st.columns(4)
types = left.multiselect("Type", facets["types"], key="filter_type")
owners = middle.multiselect("Owner", facets["owners"], key="filter_owner")
frequencies = right.multiselect("Update frequency", facets["frequencies"], key="filter_frequency")
statuses = last.multiselect("Status", facets["statuses"], key="filter_status")
sort_col, order_col = st.columns([3, 1])
sort = sort_col.selectbox("Sort by", SORTS, key="sort")
descending = order_col.toggle("Descending", key="descending")

query = CatalogQuery(
    text=text,
    types=tuple(types),
    owners=tuple(owners),
    frequencies=tuple(frequencies),
    statuses=tuple(statuses),
    include_all_models=all_models,
    sort=sort,
    descending=descending,
)
entries = service.catalog(query)

kind = "models" if all_models else "data products"
failing = sum(e.health.level == "failing" for e in entries)
st.caption(f"{len(entries)} {kind}" + (f" · {failing} failing" if failing else ""))
if not entries:
    st.info(
        "Nothing matches. Clear the search or the filters to see everything.", icon=":material/search_off:"
    )
    st.stop()


def _first_sentence(text: str, limit: int = 220) -> str:
    """Cards show the gist; the product page shows the whole description."""
    first = text.strip().split(". ")[0].rstrip(".")
    return first + "." if len(first) <= limit else first[: limit - 1] + "…"


def card(entry: CatalogEntry) -> None:
    with st.container(border=True):
        head, badge = st.columns([4, 1])
        head.page_link(
            "app_pages/product.py",
            label=f"**{entry.name}**",
            icon=":material/inventory_2:",
            query_params={"id": entry.name},
        )
        badge.markdown(health_label(entry.health))
        st.caption(
            f"{entry.data_product_type or entry.resource_type} · owner **{entry.owner or 'unknown'}** · "
            f"updated {entry.update_frequency or 'on demand'} · status {entry.status}"
        )
        st.markdown(_first_sentence(entry.description) or "_No description._")
        rows = entry.health.row_count
        st.markdown(
            f"**Last build** {entry.health.build_status or 'never'} · **Tests** {tests_label(entry.health)} · "
            f"**Refreshed** {ago(entry.health.last_refreshed)} · "
            f"**Rows** {f'{rows:,}' if rows is not None else 'unknown'}"
        )
        extras = []
        if entry.consumers:
            extras.append("Consumers: " + ", ".join(entry.consumers))
        if entry.tags:
            extras.append(" ".join(f"`{tag}`" for tag in entry.tags))
        if extras:
            st.caption(" · ".join(extras))


def table(rows: list[CatalogEntry]) -> None:
    frame = pd.DataFrame(
        {
            "health": [HEALTH_ICON[e.health.level] for e in rows],
            "name": [e.name for e in rows],
            "type": [e.data_product_type or e.resource_type for e in rows],
            "owner": [e.owner for e in rows],
            "materialized": [e.materialization for e in rows],
            "tests": [tests_label(e.health) for e in rows],
            "refreshed": [ago(e.health.last_refreshed) for e in rows],
            "description": [e.description[:160] for e in rows],
            "unique_id": [e.unique_id for e in rows],
        }
    )
    event = st.dataframe(
        frame,
        key="catalog_table",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_config={"unique_id": None},
        use_container_width=True,
    )
    chosen = event.selection.rows if event else []
    if chosen:
        st.switch_page("app_pages/product.py", query_params={"id": rows[chosen[0]].unique_id})
    st.caption("Select a row to open it.")


CARD_LIMIT = 30  # cards read best for a handful of products; big projects get a table
if all_models or len(entries) > CARD_LIMIT:
    table(entries)
else:
    for entry in entries:
        card(entry)
