"""Catalog: every data product with its health at a glance; search, filter, sort.

Lifecycle and health are two filters: "failed" is where a product is in its life (its audit did
not pass), "failing" is how far what is published can be trusted now (`project/statuses.py`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.catalog.browse import SORTS, CatalogQuery, Found, Match, facets, search
from portal.project.statuses import plural
from portal.project.versions import versions_text
from portal.ui.components.badges import HEALTH_CSS, ago, health_label, health_text, tests_label
from portal.ui.components.context import attempt, get_service
from portal.ui.components.markdown import escape, highlighted
from portal.ui.components.product_actions import CATALOG_FLASH

st.title("Data product catalog")
if flash := st.session_state.pop(CATALOG_FLASH, None):
    st.success(flash, icon=":material/task_alt:")
service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()

all_models = st.toggle(
    "Show all models, not only data products",
    key="all_models",
    bind="query-params",
    help="Browse every model, seed and snapshot of the dbt project.",
)
choices = attempt(lambda: facets(service, include_all_models=all_models))
if choices is None:
    st.stop()
text = st.text_input(
    "Search",
    key="catalog_search",
    bind="query-params",
    placeholder="name, description, column, tag or owner …",
    label_visibility="collapsed",
)
first, second, third, fourth, fifth = st.columns(5)
types = first.multiselect("Type", choices["types"], key="filter_type", bind="query-params")
owners = second.multiselect("Owner", choices["owners"], key="filter_owner", bind="query-params")
frequencies = third.multiselect(
    "Update frequency", choices["frequencies"], key="filter_frequency", bind="query-params"
)
lifecycles = fourth.multiselect(
    "Lifecycle",
    choices["lifecycles"],
    key="filter_lifecycle",
    bind="query-params",
    help="Where a product is in its life.",
)
health = fifth.multiselect(
    "Health",
    choices["health"],
    key="filter_health",
    bind="query-params",
    help="How far what is published can be trusted now.",
)
tag_col, label_col = st.columns(2)
tags = tag_col.multiselect(
    "dbt tag",
    choices["tags"],
    key="filter_tag",
    bind="query-params",
    help="dbt's own tags (config.tags): what the selector `tag:` selects on the Lineage page.",
)
labels = label_col.multiselect(
    "Label",
    choices["labels"],
    key="filter_label",
    bind="query-params",
    help="The portal's labels (meta.tags), given on the Create form; dbt's selectors do not see them.",
)
sort_col, order_col = st.columns([3, 1])
sort = sort_col.selectbox("Sort by", SORTS, key="sort", bind="query-params")
descending = order_col.toggle("Descending", key="descending", bind="query-params")

query = CatalogQuery(
    text=text,
    types=tuple(types),
    owners=tuple(owners),
    frequencies=tuple(frequencies),
    lifecycles=tuple(lifecycles),
    health=tuple(health),
    tags=tuple(tags),
    labels=tuple(labels),
    include_all_models=all_models,
    sort=sort,
    descending=descending,
)
results = attempt(lambda: search(service, query))
if results is None:
    st.stop()
entries = [found.item for found in results]

kind = "model" if all_models else "data product"
failing = sum(e.level == "failing" for e in entries)
st.caption(f"{plural(len(entries), kind)}" + (f" · {failing} failing" if failing else ""))
if not entries:
    st.info(
        "Nothing matches. Clear the search or the filters to see everything.", icon=":material/search_off:"
    )
    st.stop()


def _first_sentence(text: str, limit: int = 220) -> str:
    """Cards show the gist; the product page shows the whole description."""
    first = text.strip().split(". ")[0].rstrip(".")
    if not first:
        return ""  # no description: the card says so (it once showed a lone ".")
    return first + "." if len(first) <= limit else first[: limit - 1] + "…"


REASONS_SHOWN = 3  # a common word can match dozens of columns: the first few say why


def reason(match: Match, *, markdown: bool = True) -> str:
    """What matched: as markdown, the text escaped and the search words on a coloured background;
    or plain, for a table's cell (which shows no markdown)."""
    text = highlighted(match.text, match.spans) if markdown else match.text
    if match.of is not None:
        return f"description of column {escape(match.of) if markdown else match.of}: {text}"
    return f"{match.field} {text}"


def reasons(matched: tuple[Match, ...]) -> str:
    shown = "; ".join(reason(m) for m in matched[:REASONS_SHOWN])
    more = len(matched) - REASONS_SHOWN
    return "Matched " + shown + (f"; and {more} more" if more > 0 else "")


def card(found: Found) -> None:
    item = found.item
    entry, health = item.entry, item.health
    with st.container(border=True):
        head, badge = st.columns([4, 1])
        head.page_link(
            "app_pages/product.py",
            label=f"**{entry.name}**",
            icon=":material/inventory_2:",
            query_params={"id": entry.name},
        )
        badge.markdown(health_label(health))
        st.caption(
            f"{entry.data_product_type or entry.resource_type} · owner **{entry.owner or 'unknown'}** · "
            f"updated {entry.update_frequency or 'on demand'} · lifecycle {entry.lifecycle}"
        )
        st.markdown(_first_sentence(entry.description) or "_No description._")
        rows = entry.row_count
        st.markdown(
            f"**Last build** {health.build_status or 'never'} · **Tests** {tests_label(health)} · "
            f"**Refreshed** {ago(item.last_refreshed)} · "
            f"**Rows** {f'{rows:,}' if rows is not None else 'unknown'}"
        )
        if health.problems:
            st.caption("Problems: " + "; ".join(health.problems))
        extras = []
        if entry.consumers:
            extras.append("Consumers: " + ", ".join(entry.consumers))
        if entry.tags:  # as the selector writes them, so `tag:pii+` is what to type on Lineage
            extras.append("dbt tags " + " ".join(f"`tag:{tag}`" for tag in entry.tags))
        if entry.labels:
            extras.append("labels " + ", ".join(f"**{label}**" for label in entry.labels))
        if entry.versions:  # one card per model; dbt's selectors still see each version
            extras.append("versions: " + escape(versions_text(entry.versions)))
        if extras:
            st.caption(" · ".join(extras))
        if found.matched:
            st.caption(reasons(found.matched))


def table(results: list[Found]) -> None:
    rows = [found.item for found in results]
    frame = pd.DataFrame(
        {
            "health": [health_text(h.health) for h in rows],
            "name": [h.name for h in rows],
            "lifecycle": [h.entry.lifecycle for h in rows],
            "type": [h.entry.data_product_type or h.entry.resource_type for h in rows],
            "owner": [h.entry.owner or "—" for h in rows],
            "materialized": [h.entry.materialization or "—" for h in rows],
            "tests": [tests_label(h.health) for h in rows],
            "refreshed": [ago(h.last_refreshed) for h in rows],
            "description": [h.entry.description[:160] for h in rows],
            "unique_id": [h.entry.unique_id for h in rows],
        }
    )
    if query.text.split():  # plain text: a table cell shows no markdown, so nothing to escape
        frame.insert(
            2, "matched", ["; ".join(reason(m, markdown=False) for m in found.matched) for found in results]
        )
    # The health word in its colour, as on the cards (the mark and the word say it without colour).
    colours = {health_text(h.health): HEALTH_CSS[h.level] for h in rows}
    styled = frame.style.map(lambda value: f"color: {colours.get(value, 'inherit')}", subset=["health"])
    event = st.dataframe(
        styled,
        key="catalog_table",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "unique_id": None,
            "health": st.column_config.TextColumn(width="small"),
            "name": st.column_config.TextColumn(width="medium"),
            "description": st.column_config.TextColumn(width="large"),
            "matched": st.column_config.TextColumn(width="large", help="Why the search found it."),
        },
        width="stretch",
        height=min(38 + 35 * len(rows), 640),  # sized to its rows, scrolling past about 17
    )
    chosen = event.selection.rows if event else []
    if chosen:
        st.switch_page("app_pages/product.py", query_params={"id": rows[chosen[0]].entry.unique_id})
    st.caption("Select a row to open it.")


CARD_LIMIT = 30  # cards read best for a handful of products; big projects get a table
if all_models or len(entries) > CARD_LIMIT:
    table(results)
else:
    for found in results:
        card(found)
