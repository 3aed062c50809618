"""Tables sized to their rows: a grid as tall as its rows (Streamlit's height="content"), capped
with a scroll bar for long ones, never a fixed box over empty space; text columns wide enough
to read (test names, messages, descriptions)."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
import streamlit as st

# Streamlit's default row height and its header row (with the borders): what one row costs.
ROW_PX = 35
HEADER_PX = 38
MAX_ROWS = 20  # beyond it a table scrolls: a page of 200 run rows would push everything down


def grid_height(rows: int, max_rows: int = MAX_ROWS) -> int | Literal["content"]:
    """ "content" (exactly its rows) up to `max_rows`, else the height of `max_rows` rows."""
    return "content" if rows <= max_rows else HEADER_PX + ROW_PX * max_rows


def wide(*names: str, width: Literal["medium", "large"] = "large") -> dict[str, Any]:
    """Column configs that give text columns room, so long test names are not cut off."""
    return {name: st.column_config.TextColumn(width=width) for name in names}


def show_grid(
    frame: pd.DataFrame,
    *,
    key: str,
    column_config: dict[str, Any] | None = None,
    max_rows: int = MAX_ROWS,
    **options: Any,
) -> Any:
    """st.dataframe without its index, as wide as the page and as tall as its rows (capped)."""
    return st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=grid_height(len(frame), max_rows),
        key=key,
        column_config=column_config,
        **options,
    )


__all__ = ["HEADER_PX", "MAX_ROWS", "ROW_PX", "grid_height", "show_grid", "wide"]
