"""The Create page driven headlessly by widget keys, over a private copy of the demo build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo

APP = ROOT / "portal" / "ui" / "app.py"
PAGE = ROOT / "portal" / "ui" / "app_pages" / "create.py"
GOOD_SQL = "select customer_id, count(*) as order_count\nfrom stg_orders\ngroup by customer_id"


@pytest.fixture
def environ(demo_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return copy_demo(demo_env, tmp_path / "portal")


@pytest.fixture
def page(use_env: Callable[[dict[str, str]], None], environ: dict[str, str]) -> Callable[[], AppTest]:
    def start() -> AppTest:
        use_env(environ)
        st.cache_resource.clear()  # the service is cached per process; each test gets its own copy
        # Through the router once the page is registered in app.py; until then, on its own.
        if "app_pages/create.py" in APP.read_text():
            at = AppTest.from_file(str(APP), default_timeout=60)
            at.run()
            at.switch_page("app_pages/create.py")
        else:
            at = AppTest.from_file(str(PAGE), default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        return at

    return start


def fill(at: AppTest, name: str, sql: str) -> None:
    at.text_input(key="create_name").input(name)
    at.text_area(key="create_description").input("Orders per customer.")
    at.text_input(key="create_primary_key").input("customer_id")
    at.text_area(key="create_sql").input(sql)


def test_page_smoke(page: Callable[[], AppTest]) -> None:
    at = page()
    assert at.title[0].value == "Create a data product"
    assert at.text_input(key="create_owner").value == "local-user"
    assert "CUSTOMER_360" in at.selectbox(key="create_type").options
    assert at.button(key="create_submit").label == "Create"


def test_validate_shows_problems_with_where_and_what_to_do(page: Callable[[], AppTest]) -> None:
    at = page()
    fill(at, "dp_customer_orders", "select customer_id\nfrom stg_orderz")
    at.button(key="create_validate").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any(
        "line 2, column 6" in e and "not a source or model" in e and "stg_orders" in e for e in errors
    ), errors
    assert any("stg_orderz" in c.value and "^" in c.value for c in at.code)


def test_validate_shows_columns_rows_and_upstream(page: Callable[[], AppTest]) -> None:
    at = page()
    fill(at, "dp_customer_orders", GOOD_SQL)
    at.button(key="create_validate").click().run()
    assert not at.error, [e.value for e in at.error]
    frames = [d.value for d in at.dataframe]
    columns = next(f for f in frames if list(f.columns) == ["column", "type"])
    assert list(columns["column"]) == ["customer_id", "order_count"]
    assert any(list(f.columns) == ["customer_id", "order_count"] and len(f) > 0 for f in frames)
    assert any("model.asgard.stg_orders" in m.value for m in at.markdown)


def test_create_publishes_and_the_catalog_has_it(
    page: Callable[[], AppTest], environ: dict[str, str]
) -> None:
    at = page()
    fill(at, "dp_orders_by_customer", GOOD_SQL)
    at.button(key="create_submit").click().run(timeout=900)
    assert not at.exception, at.exception
    assert any("dp_orders_by_customer** is published" in s.value for s in at.success), [
        e.value for e in at.error
    ]
    entry = next(
        e for e in PortalService(Settings.from_env(environ)).entries() if e.name == "dp_orders_by_customer"
    )
    assert entry.lifecycle == "published" and entry.owner == "local-user"
    assert any("audit schema `audit`: copied to gold" in m.value for m in at.markdown)
    assert at.button(key="create_open").label == "Open dp_orders_by_customer"


def test_a_failing_test_is_shown_and_the_product_discarded(page: Callable[[], AppTest]) -> None:
    at = page()
    fill(at, "dp_customer_lines", "select customer_id, order_id from stg_orders")
    at.button(key="create_submit").click().run(timeout=900)
    assert not at.exception, at.exception
    assert any("was not published" in e.value and "gold is untouched" in e.value for e in at.error)
    failures = next(d.value for d in at.dataframe if "failing rows" in d.value.columns)
    assert list(failures["what"]) == ["unique"] and list(failures["column"]) == ["customer_id"]
    assert at.button(key="create_submit").label == "Resubmit"
    at.button(key="create_discard").click().run(timeout=300)
    assert not at.exception, at.exception
    assert any("Discarded dp_customer_lines" in s.value for s in at.success)


def test_edit_mode_fills_the_form_and_deprecates(
    page: Callable[[], AppTest], environ: dict[str, str]
) -> None:
    at = page()
    fill(at, "dp_orders_by_customer", GOOD_SQL)
    at.button(key="create_submit").click().run(timeout=900)
    assert any("is published" in s.value for s in at.success), [e.value for e in at.error]

    at = page()
    at.query_params["edit"] = "dp_orders_by_customer"
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Edit dp_orders_by_customer"
    assert at.text_input(key="create_name").value == "dp_orders_by_customer"
    assert at.text_input(key="create_primary_key").value == "customer_id"
    assert "stg_orders" in at.text_area(key="create_sql").value
    assert at.button(key="create_submit").label == "Save changes"
    at.button(key="create_deprecate").click().run(timeout=300)
    assert not at.exception, at.exception
    assert any("is deprecated" in s.value for s in at.success)
    row = next(
        e for e in PortalService(Settings.from_env(environ)).entries() if e.name == "dp_orders_by_customer"
    )
    assert row.lifecycle == "deprecated"
