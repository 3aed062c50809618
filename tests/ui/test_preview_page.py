"""The Preview page over the real demo build: a sort over every matching row, filter rows added
and removed up to the API's cap, a summary of each column, and the two downloads, which say when
they are cut at the maximum rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.settings import ROOT, Settings
from portal.warehouse.base import MAX_FILTERS

APP = str(ROOT / "portal" / "ui" / "app.py")


def preview_page(
    use_env: Callable[[dict[str, str]], None], environ: dict[str, str], **state: object
) -> AppTest:
    use_env(environ)
    st.cache_resource.clear()  # the service is cached per process; each test gets its own settings
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["id"] = "dp_customer_360"
    at.run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("app_pages/preview.py")
    at.run()
    assert not at.exception, at.exception
    return at


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The dataframe shown with `column` (display elements have no keys in AppTest)."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) == 1, f"{len(frames)} dataframes with a {column!r} column"
    return frames[0]


def rows(at: AppTest) -> pd.DataFrame:
    return frame_with(at, "customer_id")


def summary(at: AppTest) -> pd.DataFrame:
    return frame_with(at, "distinct").set_index("column")


def warehouse_count(environ: dict[str, str], where: str) -> int:
    with duckdb.connect(environ["PORTAL_DUCKDB_PATH"], read_only=True) as con:
        (table,) = con.execute(
            "select table_schema from information_schema.tables where table_name = 'dp_customer_360'"
        ).fetchone() or ("",)
        return int(con.execute(f'select count(*) from "{table}".dp_customer_360 where {where}').fetchone()[0])


def test_filter_rows_are_added_and_removed_and_all_hold(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str]
) -> None:
    at = preview_page(use_env, demo_env)
    at.button(key="preview_filter_add").click().run()
    at.button(key="preview_filter_add").click().run()
    assert [s.key for s in at.selectbox if "filter_column" in str(s.key)] == [
        "preview_filter_column_0",
        "preview_filter_column_1",
        "preview_filter_column_2",
    ]
    at.selectbox(key="preview_filter_column_0").select("order_count").run()
    at.selectbox(key="preview_filter_op_0").select(">=").run()
    at.text_input(key="preview_filter_value_0").input("2").run()
    at.selectbox(key="preview_filter_column_2").select("segment").run()
    at.selectbox(key="preview_filter_op_2").select("!=").run()
    at.text_input(key="preview_filter_value_2").input("Champions").run()
    assert not at.exception and not at.error
    shown = rows(at)
    assert len(shown) and (shown["order_count"] >= 2).all() and "Champions" not in set(shown["segment"])
    expected = warehouse_count(demo_env, "order_count >= 2 and segment != 'Champions'")
    assert f"of {expected:,} rows" in " ".join(c.value for c in at.caption)
    assert summary(at).loc["customer_id", "distinct"] == f"{expected:,}"  # every matching row, not the page

    at.button(key="preview_filter_remove_0").click().run()
    assert [s.key for s in at.selectbox if "filter_column" in str(s.key)] == [
        "preview_filter_column_1",
        "preview_filter_column_2",
    ]
    expected = warehouse_count(demo_env, "segment != 'Champions'")
    assert f"of {expected:,} rows" in " ".join(c.value for c in at.caption)


def test_at_the_cap_no_filter_row_can_be_added_and_the_page_says_so(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str]
) -> None:
    at = preview_page(use_env, demo_env, preview_filter_ids=list(range(MAX_FILTERS)))
    assert at.button(key="preview_filter_add").disabled
    assert any(f"At most {MAX_FILTERS} filters, the same cap as the API's" in c.value for c in at.caption)
    at.button(key="preview_filter_remove_3").click().run()
    assert not at.button(key="preview_filter_add").disabled


def test_the_sort_orders_every_matching_row_and_the_summary_is_shown(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str]
) -> None:
    at = preview_page(use_env, demo_env)
    at.selectbox(key="preview_sort").select("lifetime_value").run()
    at.radio(key="preview_order").set_value("descending").run()
    values = list(rows(at)["lifetime_value"])
    assert values == sorted(values, reverse=True)
    with duckdb.connect(demo_env["PORTAL_DUCKDB_PATH"], read_only=True) as con:
        (schema,) = con.execute(
            "select table_schema from information_schema.tables where table_name = 'dp_customer_360'"
        ).fetchone() or ("",)
        (highest, nulls) = con.execute(
            f'select max(lifetime_value), count(*) - count(last_order_date) from "{schema}".dp_customer_360'
        ).fetchone() or (None, None)
    assert values[0] == highest  # the highest of all rows, not of the page
    table = summary(at)
    assert set(table.columns) == {"type", "nulls", "distinct", "min", "max"}
    assert table.loc["lifetime_value", "max"] == str(highest)
    assert table.loc["last_order_date", "nulls"] == nulls
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(label.startswith("Download CSV") for label in labels)
    assert any(label.startswith("Download Parquet") for label in labels)
    assert not at.warning  # the demo's customers are fewer than the default maximum


def test_the_downloads_say_when_they_are_cut_at_the_maximum(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = {**demo_env, "PORTAL_PREVIEW_MAX_ROWS": "40"}
    assert Settings.from_env(environ).preview_max_rows == 40
    at = preview_page(use_env, environ)
    assert len(rows(at)) == 40  # the default rows, within the maximum
    total = warehouse_count(demo_env, "true")
    assert any(f"cut at the first 40 of {total:,} matching rows" in w.value for w in at.warning)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download CSV (40 rows)" in labels and "Download Parquet (40 rows)" in labels
