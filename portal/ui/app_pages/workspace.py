"""SQL workspace: an analyst's own read-only queries over the products and sources, as a grid to
export, a history of their own, and Promote to product, which opens Create with the query.

Everything that decides anything is in `portal.catalog.workspace`; this page collects the SQL,
shows what the core returns and hands a promotion to the Create page.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.auth.access import why_not
from portal.catalog import workspace
from portal.catalog.readable import find, readable
from portal.ui.components.context import attempt, current_identity, get_service
from portal.ui.components.grid import show_grid
from portal.ui.components.markdown import show_description
from portal.ui.components.problems import show_problems

# Where Promote leaves the query for the Create page, which takes it once (create.py reads it).
PROMOTION_KEY = "workspace_promotion"

st.title("SQL workspace")
service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()
identity = current_identity()
settings = service.settings
st.caption(
    f"One SELECT over the project's products and sources, by name, read-only as {identity.user}: at most "
    f"{settings.preview_max_rows:,} rows and {settings.query_timeout_s:g} s. What runs here can be promoted "
    "to a product."
)


def _reopen(sql: str) -> None:
    """Put a query of the history back in the editor (a callback: it runs before the editor exists)."""
    st.session_state["workspace_sql"] = sql
    st.session_state.pop("workspace_result", None)


readables = attempt(lambda: readable(service)) or []
with st.expander(f"What you can query ({len(readables)})", icon=":material/table_view:"):
    # The guard's own list: what is here may be read, and nothing else (catalog/readable.py).
    # Looked up, not listed whole: a big project has thousands (a selectbox of them all is slow).
    text = st.text_input("Find", key="workspace_find", placeholder="part of a name; empty: the data products")
    shown, matching = find(readables, text)
    if matching > len(shown):
        st.caption(f"{matching:,} match; the first {len(shown)} are offered: type more to narrow them.")
    elif not shown:
        st.caption("Nothing readable has that in its name.")
    by_name = {r.name: r for r in shown}
    chosen = st.selectbox(
        "Relation",
        list(by_name),
        key="workspace_relation",
        index=None,
        placeholder=f"{len(shown)} to choose from",
        format_func=lambda name: f"{name} · {by_name[name].kind}",
    )
    if chosen is not None:
        picked_relation = by_name[chosen]
        if picked_relation.description:
            show_description(picked_relation.description)
        show_grid(
            pd.DataFrame(
                {
                    "column": [c for c, _ in picked_relation.columns],
                    "type": [t or "" for _, t in picked_relation.columns],
                }
            ),
            key="workspace_relation_columns",
        )
        st.button(
            "Start from it",
            key="workspace_start",
            icon=":material/edit_note:",
            help="Put a SELECT of its columns in the editor (what is there now is replaced).",
            on_click=_reopen,
            args=(picked_relation.select(),),
        )

# A code editor's look for the SQL box, without a component that needs the network.
st.markdown("<style>.st-key-workspace_sql textarea {font-family: monospace;}</style>", unsafe_allow_html=True)
sql = st.text_area(
    "SQL",
    key="workspace_sql",
    height=220,
    placeholder="select customer_id, count(*) as order_count\nfrom stg_orders\ngroup by customer_id",
    help="One SELECT (CTEs and UNION allowed) over the project's sources and models, by name; each column "
    "named once, as a product's would be.",
)
rows_col, run_col = st.columns([1, 3], vertical_alignment="bottom")
limit = rows_col.number_input(
    f"Rows (at most {settings.preview_max_rows:,})",
    min_value=1,
    max_value=settings.preview_max_rows,
    value=min(settings.preview_default_rows, settings.preview_max_rows),
    step=100,
    key="workspace_limit",
)
if run_col.button("Run", key="workspace_run", type="primary", icon=":material/play_arrow:"):
    st.session_state["workspace_result"] = attempt(
        lambda: workspace.run_query(service, sql, identity, limit=int(limit))
    )


def show_result(result: workspace.QueryResult) -> None:
    if result.sql != sql:
        st.info("The SQL changed since it ran. Run it again.", icon=":material/refresh:")
    if not result.ok or result.rows is None:
        show_problems(result.problems, result.sql)
        return
    more = f" (the query returns more: the first {result.limit:,} are shown)" if result.truncated else ""
    reads = ", ".join(f"`{name}`" for name in result.upstream_names)
    st.caption(
        f"{len(result.rows):,} rows{more} · {result.elapsed_s * 1000:.0f} ms · read-only · reads {reads}"
    )
    show_grid(result.rows, key="workspace_rows")
    csv_col, parquet_col, promote_col = st.columns([1, 1, 2])
    csv_col.download_button(
        "Download CSV",
        workspace.export_csv(result),
        file_name="query.csv",
        mime="text/csv",
        key="workspace_csv",
        icon=":material/download:",
    )
    parquet_col.download_button(
        "Download Parquet",
        workspace.export_parquet(result),
        file_name="query.parquet",
        mime="application/vnd.apache.parquet",
        key="workspace_parquet",
        icon=":material/download:",
    )
    refusal = why_not(identity, "create")  # viewers have no Create page: say why, as the core would
    if promote_col.button(
        "Promote to product",
        key="workspace_promote",
        icon=":material/add_circle:",
        disabled=refusal is not None,
        help=refusal or "Open Create with this query, what it reads and its columns.",
    ):
        st.session_state[PROMOTION_KEY] = result.promotion
        st.switch_page("app_pages/create.py")


result: workspace.QueryResult | None = st.session_state.get("workspace_result")
if result is not None:
    show_result(result)

st.subheader("Your recent queries")
entries = attempt(lambda: workspace.history(service, identity)) or []
if not entries:
    st.caption("Nothing yet: the queries you run here are kept for you, newest first.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "at": [entry.at for entry in entries],
                "status": [entry.status for entry in entries],
                "rows": [entry.rows for entry in entries],
                "ms": [entry.elapsed_ms for entry in entries],
                "sql": [" ".join(entry.sql.split()) for entry in entries],
                "why": [entry.message or "" for entry in entries],
            }
        ),
        key="workspace_history",
        hide_index=True,
        width="stretch",
    )
    by_id = {entry.id: entry for entry in entries}
    pick_col, open_col = st.columns([3, 1], vertical_alignment="bottom")
    picked = pick_col.selectbox(
        "Query",
        list(by_id),
        key="workspace_pick",
        format_func=lambda i: f"{by_id[i].at:%Y-%m-%d %H:%M} · {' '.join(by_id[i].sql.split())[:80]}",
    )
    open_col.button(
        "Open in editor",
        key="workspace_reopen",
        icon=":material/edit_note:",
        disabled=picked is None,
        on_click=_reopen,
        args=(by_id[picked].sql if picked is not None else "",),
    )
