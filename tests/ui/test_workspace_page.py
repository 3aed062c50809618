"""The SQL workspace page driven headlessly through the app's router, over a private copy of the
demo build: run a query, see the grid and the history, promote it to Create."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.settings import ROOT
from tests.conftest import copy_demo

APP = ROOT / "portal" / "ui" / "app.py"
PAGE = "app_pages/workspace.py"
SQL = "select customer_id, count(*) as order_count\nfrom stg_orders\ngroup by customer_id"


@pytest.fixture
def page(
    use_env: Callable[[dict[str, str]], None],
    demo_env: dict[str, str],
    tmp_path: Path,
) -> Callable[[], AppTest]:
    def start() -> AppTest:
        use_env(copy_demo(demo_env, tmp_path / "portal"))
        st.cache_resource.clear()  # the service is cached per process; each test gets its own copy
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        at.switch_page(PAGE)
        at.run()
        assert not at.exception, at.exception
        return at

    return start


def test_run_shows_the_grid_then_promote_opens_create_filled_in(page: Callable[[], AppTest]) -> None:
    at = page()
    assert at.title[0].value == "SQL workspace"
    at.text_area(key="workspace_sql").input(SQL)
    at.button(key="workspace_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    grid = next(d.value for d in at.dataframe if "order_count" in d.value.columns)
    assert list(grid.columns) == ["customer_id", "order_count"] and len(grid) == 100  # the default rows
    history = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(history["status"]) == ["ok"]

    at.button(key="workspace_promote").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Create a data product"
    assert at.text_area(key="create_sql").value == SQL
    note = at.text_area(key="create_description").value
    assert "`stg_orders`" in note and "`order_count` (BIGINT)" in note
    assert "workspace_promotion" not in at.session_state  # taken once: the form is the user's now


def test_a_refusal_points_at_the_line_and_column(page: Callable[[], AppTest]) -> None:
    at = page()
    at.text_area(key="workspace_sql").input("select customer_id\nfrom stg_orderz")
    at.button(key="workspace_run").click().run()
    assert not at.exception, at.exception
    assert any("line 2, column 6" in e.value and "stg_orders" in e.value for e in at.error)
    assert any("stg_orderz" in c.value and "^" in c.value for c in at.code)
    assert "workspace_promote" not in {button.key for button in at.button}  # nothing ran to promote


def test_a_past_query_reopens_in_the_editor(page: Callable[[], AppTest]) -> None:
    at = page()
    at.text_area(key="workspace_sql").input(SQL)
    at.button(key="workspace_run").click().run()
    at.text_area(key="workspace_sql").input("select 1 as one").run()
    at.button(key="workspace_reopen").click().run()
    assert not at.exception, at.exception
    assert at.text_area(key="workspace_sql").value == SQL


def test_what_you_can_query_lists_the_relations_and_starts_a_select_from_one(
    page: Callable[[], AppTest],
) -> None:
    at = page()
    assert any(e.label.startswith("What you can query (") for e in at.expander)
    offered = at.selectbox(key="workspace_relation").options
    assert len(offered) == 3 and all(o.startswith("dp_") for o in offered)  # nothing typed: the products
    at.text_input(key="workspace_find").input("stg_").run()
    assert all("stg_" in o for o in at.selectbox(key="workspace_relation").options)
    at.text_input(key="workspace_find").input("customer_360").run()
    at.selectbox(key="workspace_relation").select("dp_customer_360").run()
    columns = next(d.value for d in at.dataframe if "type" in d.value.columns)
    assert "customer_id" in list(columns["column"]) and "BIGINT" in list(columns["type"])
    at.button(key="workspace_start").click().run()
    sql = at.text_area(key="workspace_sql").value
    assert sql.startswith("select\n  customer_id,") and sql.endswith("from dp_customer_360")
    at.button(key="workspace_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("customer_id" in d.value.columns and "segment" in d.value.columns for d in at.dataframe)
