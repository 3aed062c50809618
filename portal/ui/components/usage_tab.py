"""The product page's Usage tab: queries over time by face and the top consumers, and the period
picker and consumers table the Health page shares.

Every number comes from portal.observability.usage; this module only draws.
Widget keys carry the product's name, so two products' tabs never share state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from portal.catalog.detail import ProductDetail
from portal.observability import usage
from portal.service import PortalService
from portal.ui.components.badges import ago
from portal.ui.components.charts import daily_bars
from portal.ui.components.context import attempt, product_detail
from portal.ui.components.grid import show_grid
from portal.ui.components.observability_shared import show_chart

PERIODS = {7: "last 7 days", 30: "last 30 days", 90: "last 90 days"}


def period_picker(key: str) -> int:
    return int(st.selectbox("Period", list(PERIODS), index=1, format_func=PERIODS.get, key=key) or 30)


def render_usage_tab(service: PortalService, product: str | ProductDetail) -> None:
    """Queries over time by face, and the top consumers of one product."""
    detail = product_detail(service, product)
    if detail is None:
        return
    name = detail.entry.name
    prefix = f"usage_{name}"
    days = period_picker(f"{prefix}_days")
    by_day = attempt(lambda: usage.usage_by_day(service, name, days=days)) or []
    consumers = attempt(lambda: usage.top_consumers(service, name, days=days)) or []
    facts = st.columns(3)
    facts[0].metric("Queries", f"{sum(d.queries for d in by_day):,}")
    facts[1].metric("Rows read", f"{sum(d.rows for d in by_day):,}")
    facts[2].metric("Users", len(consumers))
    if not by_day:
        st.info(
            f"Nobody has read {name} through the portal in the {PERIODS[days]}. Previews in the UI and "
            "queries through the API are counted here."
        )
        return
    frame = pd.DataFrame(
        {
            "day": [d.day for d in by_day],
            "face": [d.face for d in by_day],
            "queries": [d.queries for d in by_day],
        }
    )
    # The whole period, as usage_by_day counts it (UTC days since `days` ago): quiet days show as none.
    today = datetime.now(UTC).date()
    figure = daily_bars(
        frame,
        day="day",
        y="queries",
        color="face",
        title="Queries per day",
        first=today - timedelta(days=days),
        last=today,
    )
    show_chart(figure, f"{prefix}_chart")
    render_consumers(consumers, f"{prefix}_consumers")


def render_consumers(consumers: list[usage.Consumer], key: str) -> None:
    st.caption("Top consumers")
    show_grid(
        pd.DataFrame(
            {
                "user": [c.user for c in consumers],
                "queries": [c.queries for c in consumers],
                "rows": [c.rows for c in consumers],
                "products": [c.products for c in consumers],
                "last query": [ago(c.last_at) for c in consumers],
            }
        ),
        key=key,
    )


__all__ = ["period_picker", "render_consumers", "render_usage_tab"]
