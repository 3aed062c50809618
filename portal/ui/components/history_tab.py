"""A product's History tab: every recorded change (created, edited, refreshed, deprecated,
discarded, refused, interrupted ...), who made it and from which teams, newest first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.audit import product_history
from portal.catalog.detail import ProductDetail
from portal.service import PortalService
from portal.ui.components.badges import ago
from portal.ui.components.context import attempt
from portal.ui.components.grid import show_grid, wide


def _summary(detail: dict[str, object]) -> str:
    """The detail's facts on one line (what changed, the run, why not)."""
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = ", ".join(str(k) for k in value)  # changes: the fields that changed
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        parts.append(f"{key}: {value}")
    return " · ".join(parts)


def render_history_tab(service: PortalService, detail: ProductDetail) -> None:
    changes = attempt(lambda: product_history(service, detail.entry.name))
    if changes is None:
        return
    if not changes:
        st.info("No change of this product is recorded yet.", icon=":material/history:")
        return
    frame = pd.DataFrame(
        {
            "when": [ago(c.at) for c in changes],
            "at (UTC)": [f"{c.at:%Y-%m-%d %H:%M:%S}" for c in changes],
            "who": [c.actor for c in changes],
            "teams": [", ".join(c.teams) or "—" for c in changes],
            "what": [c.action.removeprefix("product.").replace("_", " ") for c in changes],
            "detail": [_summary(c.detail) for c in changes],
        }
    )
    show_grid(frame, key=f"history_{detail.entry.name}", column_config=wide("detail"))
