"""The product page as its owner and its readers use it: the actions where the product is, and
a page view that reads (and counts) only what was opened."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit import dataframe_util
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.testing.v1 import AppTest, local_script_runner

from catalog_db.models import UsageEvent
from portal.auth.identity import Identity
from portal.creation.flow import create
from portal.creation.spec import ProductSpec
from portal.observability.refresh import refresh_one
from portal.service import PortalService
from portal.settings import ROOT, Settings
from portal.ui.components.grid import HEADER_PX, ROW_PX
from tests.conftest import copy_demo
from tests.failing_products import lines_by_customer

APP = str(ROOT / "portal" / "ui" / "app.py")


def page(use_env: Callable[[dict[str, str]], None], environ: dict[str, str], **params: str) -> AppTest:
    use_env(environ)
    st.cache_resource.clear()  # the service is cached per process; each test gets its own settings
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("app_pages/product.py")
    at.run()
    assert not at.exception, at.exception
    return at


def reads(environ: dict[str, str], product: str) -> int:
    engine = sa.create_engine(environ["PORTAL_CATALOG_DB_URL"])
    with engine.connect() as connection:
        count = connection.scalar(sa.select(sa.func.count()).where(UsageEvent.product == product))
    engine.dispose()
    return int(count or 0)


def test_a_page_view_counts_a_read_only_when_the_preview_is_opened(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    for _ in range(3):
        page(use_env, environ, id="dp_customer_360")
    assert reads(environ, "dp_customer_360") == 0  # three views of the Overview read no data
    at = page(use_env, environ, id="dp_customer_360", tab="Preview")
    assert at.dataframe, "the Preview tab shows rows"
    assert reads(environ, "dp_customer_360") == 1


def test_a_failed_products_page_offers_edit_and_discard(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    service = PortalService(Settings.from_env(environ))
    local = Identity(service.settings.local_user)
    spec = lines_by_customer("dp_lines_failing")  # its audit fails: Edit and Discard, no Refresh
    assert create(service, spec, local).status == "failed"
    at = page(use_env, environ, id="dp_lines_failing")
    labels = {b.label for b in at.button}
    assert {"Edit"} <= labels and "Refresh now" not in labels  # not published: nothing to refresh
    at.button(key="action_discard").click().run()
    assert not at.exception
    assert any("Discarded dp_lines_failing" in s.value for s in at.success), [s.value for s in at.success]


def test_the_actions_offered_are_packed_from_the_left(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    # a product written by hand in the project: no Edit, Deprecate or Discard here, so Refresh
    # and Profile take the first two places rather than leaving a hole where Edit would be
    at = page(use_env, environ=copy_demo(demo_env, tmp_path / "portal"), id="dp_customer_360")
    bar = at.columns[:5]
    assert [[b.label for b in column.button] for column in bar] == [
        ["Refresh now"],
        ["Profile now"],
        [],
        [],
        [],
    ]


# A product made from SQL over int_orders, as creators make them: no column described.
UNDOCUMENTED = ProductSpec(
    name="dp_order_channels",
    description="Orders and their channel: **one row per order**, see `int_orders`.",
    data_product_type="CUSTOM",
    owner="sales-team",
    sql="select order_id, channel as sales_channel, order_value * 2 as doubled_value from int_orders",
    primary_key=("order_id",),
)


def test_the_columns_grid_shows_inherited_descriptions_and_where_from(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    service = PortalService(Settings.from_env(environ))
    assert create(service, UNDOCUMENTED, Identity(service.settings.local_user)).status == "published"
    assert refresh_one(service, UNDOCUMENTED.name).ok  # compiles it: column lineage reads compiled SQL
    at = page(use_env, environ, id=UNDOCUMENTED.name, tab="Columns")
    grid = next(d.value for d in at.dataframe if "inherited" in d.value.columns).set_index("column")
    assert grid.loc["order_id", "description"] == "The order."
    assert grid.loc["order_id", "inherited"] == "from int_orders.order_id"
    assert grid.loc["sales_channel", "description"] == "Channel code of the order."  # a rename
    assert grid.loc["sales_channel", "inherited"] == "from int_orders.channel"
    assert grid.loc["doubled_value", "description"] == ""  # derived: nothing to inherit
    assert grid.loc["doubled_value", "inherited"] == ""
    assert grid.loc["doubled_value", "type"] == "DECIMAL(18,2)"  # DuckDB's name, from the warehouse
    # The formatted descriptions say the same, as Markdown.
    assert any("_from `int_orders.channel`_" in m.value for m in at.markdown)
    # The product's description is rendered as Markdown, not shown as typed.
    assert any(m.value == UNDOCUMENTED.description for m in at.markdown)


def _dataframes(messages: list[ForwardMsg]) -> list[tuple[pd.DataFrame, Any]]:
    """(rows, element) of every st.dataframe a run sent to the browser, with its layout config."""
    found = []
    for message in messages:
        if message.HasField("delta") and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            if element.WhichOneof("type") == "dataframe":
                rows = dataframe_util.convert_arrow_bytes_to_pandas_df(element.dataframe.arrow_data.data)
                found.append((rows, element))
    return found


def test_every_grid_is_sized_to_its_rows(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[ForwardMsg] = []  # what the last run sent, as the browser would receive it
    parse = local_script_runner.parse_tree_from_messages

    def keep(messages: list[ForwardMsg]) -> Any:
        sent[:] = messages
        return parse(messages)

    monkeypatch.setattr(local_script_runner, "parse_tree_from_messages", keep)
    seen: dict[str, int] = {}  # each grid by its first columns: its number of rows
    for tab in ["Overview", "Columns", "Tests", "Quality", "Runs", "Usage", "History", "health"]:
        if tab == "health":
            at = page(use_env, demo_env)
            at.switch_page("app_pages/health.py").run()
            assert not at.exception, at.exception
        else:
            page(use_env, demo_env, id="dp_customer_360", tab=tab)
        for rows, element in _dataframes(sent):
            name = f"{tab}: {', '.join(map(str, rows.columns[:3]))}"
            spec = element.height_config.WhichOneof("height_spec")
            if spec == "pixel_height":  # a long table: a capped box that scrolls, over no empty space
                assert element.height_config.pixel_height < HEADER_PX + ROW_PX * len(rows), (name, len(rows))
            else:  # no default 10-row box (Streamlit's "auto", which sends no height)
                assert spec == "use_content", (name, spec)
            seen[name] = len(rows)
    # The grids of the page were all there to check: columns, tests, profile, runs, health.
    assert seen["Columns: column, type, description"] == 21, seen  # dp_customer_360's columns, all shown
    assert seen["Tests: status, test, column"] > 20, seen  # its tests, more than Streamlit's 10-row box
    assert {
        "Quality: column, type, nulls",
        "Runs: run, started, status",
        "health: health, product, freshness",
    } <= set(seen), seen


def test_long_test_names_get_a_wide_column(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str]
) -> None:
    at = page(use_env, demo_env, id="dp_customer_360", tab="Tests")
    grid = next(d for d in at.dataframe if "message" in d.value.columns and "ran" in d.value.columns)
    config = json.loads(grid.proto.columns)
    assert config["test"]["width"] == "large" and config["message"]["width"] == "large"
    assert "accepted_values" in set(grid.value["test"])


def test_the_access_tab_lets_the_owners_decide_and_shows_every_request(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    from portal.auth.identity import Principal
    from portal.catalog import access_requests

    environ = copy_demo(demo_env, tmp_path / "portal")
    service = PortalService(Settings.from_env(environ))
    consumer = Principal("carol", "oidc", "creator", groups=("marketing-team",))
    asked = access_requests.request_access(
        service, consumer, "dp_revenue_analytics", reason="Campaign ROI dashboard", days=7
    )
    at = page(use_env, environ, id="dp_revenue_analytics", tab="Access")  # the local user: an admin
    assert "Campaign ROI dashboard" in [t.value for t in at.text]
    assert any("You decide on dp_revenue_analytics's requests" in c.value for c in at.caption)
    overview = at.table[0].value["value"]
    assert overview["Read access"] == "restricted: ask its owners on the Access tab"
    assert overview["dbt access"] == "public"  # dbt's own `access`: who may ref() it
    at.button(key=f"access_refuse_{asked.id}").click().run()
    said = [e.value for e in (*at.error, *at.warning)]
    assert any("Say why the request is refused" in s for s in said), said
    at.text_input(key=f"access_comment_{asked.id}").input("ok for the campaign").run()
    at.button(key=f"access_approve_{asked.id}").click().run()
    assert any(f"Approved request {asked.id} of carol" in s.value for s in at.success)
    (shown,) = access_requests.requests(service, product="dp_revenue_analytics")
    assert shown.live and shown.decided_by == service.settings.local_user
    assert not at.exception
