"""The preview widget, shared by the Preview page and the product page's Preview tab: columns,
a sort, any number of filter rows (the warehouse's cap, as in the API), the rows, a summary of
each column over every matching row, and downloads of the whole filtered, sorted result."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from portal.auth.identity import Identity
from portal.catalog.detail import ProductDetail
from portal.catalog.preview import EXPORT_FORMATS
from portal.catalog.preview import export as catalog_export
from portal.catalog.preview import preview as catalog_preview
from portal.service import PortalService
from portal.ui.components.context import attempt, current_identity, product_detail
from portal.ui.components.grid import show_grid
from portal.warehouse import FILTER_OPS, Filter, Preview
from portal.warehouse.base import MAX_COLUMNS, MAX_FILTERS, MAX_VALUE_CHARS

NO_VALUE_OPS = ("is null", "is not null")


def _filter_ids(prefix: str) -> list[int]:
    """The ids of the filter rows on screen, in order; one empty row to start. An id is never
    reused, so a removed row's widgets cannot hand their values to a new one."""
    return st.session_state.setdefault(f"{prefix}_filter_ids", [0])


def _add_filter(prefix: str) -> None:
    ids = _filter_ids(prefix)
    if len(ids) < MAX_FILTERS:
        ids.append(max(ids, default=-1) + 1)


def _remove_filter(prefix: str, row: int) -> None:
    ids = _filter_ids(prefix)
    if row in ids:
        ids.remove(row)
    for part in ("column", "op", "value", "remove"):
        st.session_state.pop(f"{prefix}_filter_{part}_{row}", None)


def _filter_rows(prefix: str, names: Sequence[str]) -> list[Filter]:
    """One row of column, operator and value per filter, each removable; Add filter up to the cap."""
    filters = []
    ids = _filter_ids(prefix)
    for row in list(ids):
        col, op, value, remove = st.columns([4, 2, 4, 1], vertical_alignment="center")
        column = col.selectbox(
            "Column",
            ["", *names],
            key=f"{prefix}_filter_column_{row}",
            label_visibility="collapsed",
            format_func=lambda n: n or "— column —",
        )
        operator = op.selectbox(
            "Operator", FILTER_OPS, key=f"{prefix}_filter_op_{row}", label_visibility="collapsed"
        )
        text = value.text_input(
            "Value",
            key=f"{prefix}_filter_value_{row}",
            label_visibility="collapsed",
            placeholder="no value needed" if operator in NO_VALUE_OPS else "value",
            max_chars=MAX_VALUE_CHARS,
            disabled=operator in NO_VALUE_OPS,
        )
        remove.button(
            "Remove",
            key=f"{prefix}_filter_remove_{row}",
            icon=":material/close:",
            help="Remove this filter",
            on_click=_remove_filter,
            args=(prefix, row),
        )
        if column:
            filters.append(Filter(column, operator, None if operator in NO_VALUE_OPS else text))
    full = len(ids) >= MAX_FILTERS
    st.button(
        "Add filter",
        key=f"{prefix}_filter_add",
        icon=":material/add:",
        on_click=_add_filter,
        args=(prefix,),
        disabled=full,
    )
    if full:
        st.caption(
            f"At most {MAX_FILTERS} filters, the same cap as the API's: every filter must hold, so remove "
            "one (or narrow another) to add a condition."
        )
    else:
        st.caption(f"Every filter must hold · {len(ids)} of at most {MAX_FILTERS}.")
    return filters


def _summary_table(preview: Preview) -> pd.DataFrame:
    """The summary as text, one row a column (mixed types in one column would not display)."""

    def shown(value: object) -> str:
        return "" if value is None else str(value)

    return pd.DataFrame(
        [
            {
                "column": s.column,
                "type": s.type,
                "nulls": s.nulls,
                "distinct": "" if s.distinct is None else f"{s.distinct:,}",
                "min": shown(s.min),
                "max": shown(s.max),
            }
            for s in preview.summary or []
        ]
    )


def _export_of(
    service: PortalService,
    key: str,
    identity: Identity,
    format: str,
    *,
    columns: list[str] | None,
    filters: list[Filter],
    order_by: str | None,
    descending: bool,
) -> Callable[[], bytes]:
    """The download's bytes, produced only when it is clicked (each export is a recorded read):
    the core streams them and Streamlit needs them whole, so they are joined here."""

    def produce() -> bytes:
        result = catalog_export(
            service,
            key,
            identity=identity,
            format=format,
            columns=columns,
            filters=filters,
            order_by=order_by,
            descending=descending,
        )
        return b"".join(result.chunks)

    return produce


def render_preview(service: PortalService, product: str | ProductDetail, prefix: str) -> None:
    """Columns, a sort, filters and a row limit for a product; a bounded read-only query, a summary
    of each column over every matching row, and downloads of the whole result."""
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
    sort_col, way_col, limit_col = st.columns([3, 2, 2], vertical_alignment="bottom")
    order_by = sort_col.selectbox(
        "Sort by",
        ["", *names],
        key=f"{prefix}_sort",
        format_func=lambda n: n or "— no sort —",
        help="Sorts every matching row before any are shown or downloaded (not only the rows on screen).",
    )
    way = way_col.radio(
        "Order", ["ascending", "descending"], key=f"{prefix}_order", horizontal=True, disabled=not order_by
    )
    most = settings.preview_max_rows
    limit = limit_col.number_input(
        f"Rows (at most {most:,})",
        min_value=1,
        max_value=most,
        value=min(settings.preview_default_rows, most),
        step=50,
        key=f"{prefix}_limit",
    )
    with st.expander("Filters", expanded=len(_filter_ids(prefix)) > 1):
        filters = _filter_rows(prefix, names)
    sort = order_by or None
    descending = way == "descending"
    identity = current_identity()
    preview = attempt(
        lambda: catalog_preview(
            service,
            key,
            identity=identity,
            columns=columns or None,
            filters=filters,
            limit=int(limit),
            order_by=sort,
            descending=descending,
            summarize=True,
        )
    )
    if preview is None:
        return
    shown = len(preview.rows)
    st.caption(
        f"{shown:,} of {preview.total_rows:,} rows · {preview.elapsed_s * 1000:.0f} ms · read-only · "
        f"`{preview.relation}`"
    )
    show_grid(preview.rows, key=f"{prefix}_rows")

    st.markdown("**Column summary**")
    st.caption(f"Over all {preview.total_rows:,} matching rows, computed by the warehouse.")
    show_grid(_summary_table(preview), key=f"{prefix}_summary", max_rows=60)  # every column at once

    exported = min(preview.total_rows, most)
    csv_col, parquet_col, _ = st.columns([1, 1, 2])
    for (fmt, (mime, extension)), place in zip(EXPORT_FORMATS.items(), (csv_col, parquet_col), strict=True):
        place.download_button(
            f"Download {'CSV' if fmt == 'csv' else 'Parquet'} ({exported:,} rows)",
            _export_of(
                service,
                key,
                identity,
                fmt,
                columns=columns or None,
                filters=filters,
                order_by=sort,
                descending=descending,
            ),
            file_name=f"{detail.node.name}{extension}",
            mime=mime,
            key=f"{prefix}_{fmt}",
            icon=":material/download:",
            on_click="ignore",
        )
    if preview.total_rows > most:
        st.warning(
            f"Downloads are cut at the first {most:,} of {preview.total_rows:,} matching rows, the most an "
            "export may hold (PORTAL_PREVIEW_MAX_ROWS): narrow the filters to get every row.",
            icon=":material/content_cut:",
        )
    else:
        st.caption(f"Downloads hold every matching row ({preview.total_rows:,}), in the order shown.")
    with st.expander("SQL that ran"):
        st.code(preview.sql, language="sql")
