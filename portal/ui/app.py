"""The Streamlit entry point: page router and sidebar. Run with `make run`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run portal/ui/app.py` puts portal/ui on sys.path, not the repository root.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from portal.auth.access import may  # noqa: E402
from portal.ui.components.context import attempt, get_service  # noqa: E402
from portal.ui.components.sign_in import gate, sign_out_control  # noqa: E402

st.set_page_config(
    page_title="Asgard data products",
    page_icon=ROOT / "portal" / "ui" / "static" / "shield.svg",  # inlined: no icon CDN
    layout="wide",
)

service = attempt(get_service)
if service is None:
    st.stop()
identity = gate(service)  # a visitor without an identity sees the sign-in page only

PAGES = [
    st.Page(
        "app_pages/catalog.py", title="Catalog", icon=":material/menu_book:", url_path="catalog", default=True
    ),
    st.Page("app_pages/product.py", title="Product", icon=":material/inventory_2:", url_path="product"),
    st.Page("app_pages/preview.py", title="Preview", icon=":material/table_view:", url_path="preview"),
    st.Page(
        "app_pages/workspace.py", title="SQL workspace", icon=":material/terminal:", url_path="workspace"
    ),
    st.Page("app_pages/create.py", title="Create", icon=":material/add_circle:", url_path="create"),
    st.Page("app_pages/review.py", title="Review", icon=":material/rate_review:", url_path="review"),
    st.Page("app_pages/lineage.py", title="Lineage", icon=":material/account_tree:", url_path="lineage"),
    st.Page("app_pages/health.py", title="Health", icon=":material/monitor_heart:", url_path="health"),
]
if not may(identity, "create"):  # viewers: no Create page at all (the core refuses it anyway)
    PAGES = [p for p in PAGES if p.url_path != "create"]
page = st.navigation(PAGES)

with st.sidebar:
    sign_out_control(service.settings, identity)
    engine = service.warehouse().engine_name
    st.caption(f":material/database: {engine} warehouse · project `{service.settings.dbt_project_dir.name}`")

page.run()
