"""The preview widget, shared by the Preview page and the product page's Preview tab."""

from __future__ import annotations

import streamlit as st

from portal.catalog.detail import ProductDetail
from portal.catalog.preview import preview as catalog_preview
from portal.service import PortalService
from portal.ui.components.context import attempt, current_identity, product_detail
from portal.warehouse import FILTER_OPS, Filter
from portal.warehouse.base import MAX_COLUMNS, MAX_VALUE_CHARS

MAX_FILTERS = 3  # rows of the form; the core takes up to warehouse.base.MAX_FILTERS


def render_preview(service: PortalService, product: str | ProductDetail, prefix: str) -> None:
    """Columns, filters and a row limit for a product; a bounded read-only query."""
    settings = service.settings
    detail = product_detail(service, product)
    if detail is None:
        return
    key = detail.node.unique_id
    names = [c.name for c in detail.columns]
    columns = st.multiselect(
        "Columns",
        names,
        key=f"{prefix}_columns",
        placeholder="all columns",
        help="Leave empty to show every column.",
        max_selections=MAX_COLUMNS,
    )
    limit = st.number_input(
        f"Rows (at most {settings.preview_max_rows:,})",
        min_value=1,
        max_value=settings.preview_max_rows,
        value=settings.preview_default_rows,
        step=50,
        key=f"{prefix}_limit",
    )
    filters = []
    with st.expander("Filters", expanded=False):
        for i in range(MAX_FILTERS):
            col, op, value = st.columns([2, 1, 2])
            column = col.selectbox(
                "Column",
                ["", *names],
                key=f"{prefix}_filter_column_{i}",
                label_visibility="collapsed",
                format_func=lambda n: n or "— column —",
            )
            operator = op.selectbox(
                "Operator", FILTER_OPS, key=f"{prefix}_filter_op_{i}", label_visibility="collapsed"
            )
            text = value.text_input(
                "Value",
                key=f"{prefix}_filter_value_{i}",
                label_visibility="collapsed",
                placeholder="value",
                max_chars=MAX_VALUE_CHARS,
            )
            if column:
                filters.append(Filter(column, operator, text))
    preview = attempt(
        lambda: catalog_preview(
            service,
            key,
            identity=current_identity(),
            columns=columns or None,
            filters=filters,
            limit=int(limit),
        )
    )
    if preview is None:
        return
    shown = len(preview.rows)
    st.caption(
        f"{shown:,} of {preview.total_rows:,} rows · {preview.elapsed_s * 1000:.0f} ms · read-only · "
        f"`{preview.relation}`"
    )
    st.dataframe(preview.rows, key=f"{prefix}_rows", hide_index=True, width="stretch")
    st.download_button(
        "Download CSV",
        preview.rows.to_csv(index=False).encode(),
        file_name=f"{detail.node.name}.csv",
        mime="text/csv",
        key=f"{prefix}_csv",
        icon=":material/download:",
    )
    with st.expander("SQL that ran"):
        st.code(preview.sql, language="sql")
