"""What the Health page and the product page's Quality, Runs and Usage tabs share: the freshness
marks, the run status colours, drawing a chart (built by components/charts.py), and the drift table.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from portal.observability.drift import DriftRecord
from portal.ui.components.charts import framed
from portal.ui.components.grid import show_grid, wide

FRESHNESS_COLOR = {"fresh": "green", "late": "orange", "stale": "red", "unknown": "gray"}
FRESHNESS_ICON = {"fresh": "●", "late": "▲", "stale": "✖", "unknown": "○"}
STATUS_COLORS = {
    "success": "#2e7d32",
    "partial": "#ef6c00",
    "error": "#c62828",
    "running": "#1565c0",
    "queued": "#757575",
}


def freshness_label(state: str) -> str:
    """Markdown: a coloured mark and the word, like the catalog's health badge."""
    return f":{FRESHNESS_COLOR[state]}[{FRESHNESS_ICON[state]} {state}]"


def show_chart(figure: go.Figure, key: str) -> None:
    """Every chart of the observability views in one frame (charts.framed)."""
    st.plotly_chart(framed(figure), key=key)


def render_drift_table(drift: list[DriftRecord], key: str, *, with_product: bool = False) -> None:
    frame = pd.DataFrame(
        {
            "product": [d.product for d in drift],
            "detected": [d.detected_at for d in drift],
            "kind": [d.kind for d in drift],
            "column": [d.column or "" for d in drift],
            "what changed": [d.description for d in drift],
            "state": [f"acknowledged by {d.acknowledged_by}" if d.acknowledged else "open" for d in drift],
        }
    )
    if not with_product:
        frame = frame.drop(columns="product")
    show_grid(frame, key=key, column_config=wide("what changed"))


__all__ = [
    "FRESHNESS_COLOR",
    "FRESHNESS_ICON",
    "STATUS_COLORS",
    "freshness_label",
    "render_drift_table",
    "show_chart",
]
