"""Preview: a read-only, bounded look at one product's data."""

from __future__ import annotations

import streamlit as st

from portal.ui.components.context import attempt, get_service
from portal.ui.components.preview import render_preview

st.title("Preview")
service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()

names = [e.name for e in service.entries()]
wanted = st.query_params.get("id")
if wanted and wanted not in names:
    names.insert(0, wanted)
choice = st.selectbox(
    "Data product",
    names,
    index=names.index(wanted) if wanted in names else 0,
    key="preview_product",
    placeholder="pick a data product",
)
if choice:
    st.query_params["id"] = choice
    render_preview(service, choice, prefix="preview")
