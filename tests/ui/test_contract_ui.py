"""The data contract in the UI: the product page offers its ODCS file for download, and the
Create page fills its form from an uploaded contract (and refuses a malformed one, saying where)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.contracts.facts import facts_of
from portal.contracts.odcs import contract_yaml
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo

APP = str(ROOT / "portal" / "ui" / "app.py")


@pytest.fixture
def environ(demo_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return copy_demo(demo_env, tmp_path / "portal")


def open_page(
    use_env: Callable[[dict[str, str]], None], environ: dict[str, str], page: str, **params: str
) -> AppTest:
    use_env(environ)
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_product_page_offers_its_contract(
    use_env: Callable[[dict[str, str]], None], environ: dict[str, str]
) -> None:
    at = open_page(use_env, environ, "app_pages/product.py", id="dp_revenue_analytics")
    button = at.get("download_button")
    offered = [b for b in button if b.proto.label == "Data contract (ODCS YAML)"]
    assert len(offered) == 1
    assert offered[0].proto.url  # the file is served from the app's own media endpoint


def test_an_uploaded_contract_fills_the_create_form(
    use_env: Callable[[dict[str, str]], None], environ: dict[str, str]
) -> None:
    contract = contract_yaml(facts_of(PortalService(Settings.from_env(environ)), "dp_revenue_analytics"))
    at = open_page(use_env, environ, "app_pages/create.py")
    at.file_uploader(key="create_contract").upload(
        "revenue.odcs.yaml", contract.encode(), "application/yaml"
    ).run()
    assert not at.exception, at.exception
    assert at.text_input(key="create_name").value == "dp_revenue_analytics"
    assert at.text_area(key="create_description").value.startswith("Monthly revenue trends and growth.")
    assert at.selectbox(key="create_type").value == "REVENUE_ANALYTICS"
    assert at.text_input(key="create_owner").value == "finance-analytics-team"
    assert at.text_input(key="create_consumers").value == "Finance, Executive, Analytics"
    assert at.selectbox(key="create_frequency").value == "monthly"
    assert at.text_input(key="create_tags").value == "revenue, growth, finance, kpi"
    assert at.text_input(key="create_primary_key").value == "revenue_month, channel"
    docs = at.text_area(key="create_column_docs").value
    assert (
        docs.splitlines()[0]
        == "revenue_month: First day of the calendar month (UTC); with channel, the primary key."
    )
    assert at.text_area(key="create_sql").value == ""  # a contract holds no SQL: the analyst writes it
    assert any("Filled from `revenue.odcs.yaml`" in s.value for s in at.success)
    # The form is the user's now: an edit survives the next rerun with the file still uploaded.
    at.text_input(key="create_owner").input("my-team").run()
    assert at.text_input(key="create_owner").value == "my-team"


def test_a_malformed_contract_says_what_is_wrong_and_where(
    use_env: Callable[[dict[str, str]], None], environ: dict[str, str]
) -> None:
    at = open_page(use_env, environ, "app_pages/create.py")
    bad = b"apiVersion: v3.2.0\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: draft\nschema:\n- name: dp_x\n  properties:\n  - name: 7\n"
    at.file_uploader(key="create_contract").upload("bad.yaml", bad, "application/yaml").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("contract.schema[0].properties[0].name" in e and "string" in e for e in errors), errors
    assert at.text_input(key="create_name").value == ""  # nothing was filled
