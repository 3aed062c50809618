"""Lineage: where a product comes from, what breaks if something changes, column by column."""

from __future__ import annotations

import streamlit as st

from portal.ui.components.context import attempt, get_service
from portal.ui.components.lineage_view import render_lineage

st.title("Lineage")
service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()
render_lineage(service, prefix="lineage", focus=None, shareable=True)
