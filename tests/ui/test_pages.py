"""Streamlit pages driven headlessly with AppTest, over the real demo build."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.settings import ROOT

APP = str(ROOT / "portal" / "ui" / "app.py")
PRODUCTS = {"dp_customer_360", "dp_product_performance", "dp_revenue_analytics"}


@pytest.fixture
def app(use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str]) -> Callable[..., AppTest]:
    def start(page: str | None = None, environ: dict[str, str] | None = None, **params: str) -> AppTest:
        use_env(environ or demo_env)
        st.cache_resource.clear()  # the service is cached per process; each test gets its own settings
        at = AppTest.from_file(APP, default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        if page:
            at.switch_page(page)
            at.run()
        assert not at.exception, at.exception
        return at

    return start


def frame_with(at: AppTest, column: str):
    """The dataframe shown with `column` (display elements have no keys in AppTest)."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert frames, f"no dataframe with a {column!r} column"
    return frames[-1]


def graph_nodes(at: AppTest, key: str) -> set[str]:
    """The node ids handed to the lineage graph component (React Flow) under `key`."""
    (component,) = [c for c in at.get("component_instance") if c.key == key]
    return {node["id"] for node in json.loads(component.proto.json_args)["nodes"]}


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [str(getattr(link, "label", "")) for link in at.get("page_link")]
    return "\n".join(parts)


def test_catalog_smoke_lists_the_products_with_health(app: Callable[..., AppTest]) -> None:
    at = app()
    assert at.title[0].value == "Data product catalog"
    labels = {str(link.proto.label).strip("*") for link in at.get("page_link")}
    assert labels >= PRODUCTS
    assert ":green[● healthy]" in text_of(at)
    assert not at.error


def test_catalog_search_finds_a_product_by_column_name(app: Callable[..., AppTest]) -> None:
    at = app()
    at.text_input(key="catalog_search").input("recency_score").run()
    labels = {str(link.proto.label).strip("*") for link in at.get("page_link")}
    assert labels == {"dp_customer_360"}


def test_catalog_filter_by_owner(app: Callable[..., AppTest]) -> None:
    at = app()
    owners = at.multiselect(key="filter_owner").options
    assert owners
    at.multiselect(key="filter_owner").select(owners[0]).run()
    shown = {str(link.proto.label).strip("*") for link in at.get("page_link")}
    assert shown and shown <= PRODUCTS
    captions = [c.value for c in at.caption if "owner **" in c.value]
    assert len(captions) == len(shown)
    assert all(f"owner **{owners[0]}**" in c for c in captions)


def test_catalog_filters_lifecycle_and_health_apart(app: Callable[..., AppTest]) -> None:
    at = app()
    assert at.multiselect(key="filter_lifecycle").options == ["published"]
    assert at.multiselect(key="filter_health").options == [
        "failing",
        "stale",
        "warning",
        "unknown",
        "healthy",
    ]
    at.multiselect(key="filter_health").select("failing").run()
    assert not at.get("page_link") and "Nothing matches" in at.info[0].value
    at.multiselect(key="filter_health").unselect("failing").select("healthy").run()
    at.multiselect(key="filter_lifecycle").select("published").run()
    assert {str(link.proto.label).strip("*") for link in at.get("page_link")} == PRODUCTS
    assert all("lifecycle published" in c.value for c in at.caption if "owner **" in c.value)


def test_catalog_all_models_toggle_shows_a_table(app: Callable[..., AppTest]) -> None:
    at = app()
    at.toggle(key="all_models").set_value(True).run()
    frame = at.dataframe[0].value
    assert {"stg_orders", "dp_customer_360"} <= set(frame["name"])


def test_product_page_smoke(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/product.py", id="dp_customer_360", tab="History")
    assert at.title[0].value == "dp_customer_360"
    assert len(at.tabs) >= 5
    columns = frame_with(at, "description")
    assert "data_product_updated_at" in set(columns["column"])
    assert all(columns["type"] != "unknown")
    tests = frame_with(at, "failures")
    assert set(tests["status"]) == {"pass"}
    assert any("select" in c.value.lower() for c in at.code)
    history = frame_with(at, "teams")  # the History tab: its registration by the sync, at least
    assert "registered" in set(history["what"])


def test_product_page_without_id_offers_a_choice(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/product.py")
    picker = at.selectbox(key="product_pick")
    assert set(picker.options) >= PRODUCTS
    picker.select("dp_revenue_analytics").run()
    assert at.title[0].value == "dp_revenue_analytics"


def test_unknown_product_says_what_exists(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/product.py", id="customer_360")
    assert "Did you mean dp_customer_360" in at.warning[0].value


def test_preview_page_returns_rows_and_respects_the_limit(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/preview.py", id="dp_customer_360")
    assert len(at.dataframe[0].value) == 100
    assert "100 of" in text_of(at)
    at.number_input(key="preview_limit").set_value(7).run()
    assert len(at.dataframe[0].value) == 7
    assert "7 of" in text_of(at)


def test_preview_page_filters_and_columns(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/preview.py", id="dp_revenue_analytics")
    names = at.multiselect(key="preview_columns").options
    at.multiselect(key="preview_columns").select(names[0]).run()
    assert list(at.dataframe[0].value.columns) == [names[0]]
    at.selectbox(key="preview_filter_column_0").select(names[0]).run()
    at.selectbox(key="preview_filter_op_0").select("is null").run()
    assert len(at.dataframe[0].value) == 0


def test_missing_warehouse_shows_the_actionable_message(
    app: Callable[..., AppTest], demo_env: dict[str, str], tmp_path
) -> None:
    environ = {**demo_env, "PORTAL_DUCKDB_PATH": str(tmp_path / "not-built.duckdb")}
    at = app("app_pages/preview.py", environ=environ, id="dp_customer_360")
    assert any("make demo" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.exception


def test_missing_artifacts_show_the_actionable_message(
    app: Callable[..., AppTest], demo_env: dict[str, str], tmp_path
) -> None:
    environ = {
        **demo_env,
        "PORTAL_DBT_TARGET_DIR": str(tmp_path / "no-target"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{tmp_path}/c.db",
    }
    at = app(environ=environ)
    assert any("make demo" in e.value for e in at.error)
    assert not at.exception


def test_lineage_page_smoke_and_focus_search(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/lineage.py")
    assert at.title[0].value == "Lineage"
    at.text_input(key="lineage_find").input("dp_customer_360").run()
    focus = at.selectbox(key="lineage_focus")
    assert focus.value == "model.asgard.dp_customer_360"
    assert graph_nodes(at, "lineage_graph") >= {"model.asgard.dp_customer_360"}, "the graph is drawn"
    assert "nodes" in text_of(at)
    at.number_input(key="lineage_up").set_value(5).run()
    assert not at.exception


def test_lineage_selector_and_bad_selector(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/lineage.py")
    at.text_input(key="lineage_selector").input("+dp_revenue_analytics").run()
    assert "model.asgard.stg_orders" in graph_nodes(at, "lineage_graph") and not at.warning
    at.text_input(key="lineage_selector").input("tag:").run()
    assert at.warning, "an invalid selector says what is wrong"
    assert not at.exception


def test_product_page_lineage_tab_answers_impact_and_columns(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/product.py", id="dp_customer_360", tab="Lineage")
    assert "model.asgard.dp_customer_360" in graph_nodes(at, "product_lineage_graph")
    column = at.selectbox(key="product_lineage_column_model.asgard.dp_customer_360")
    column.select("lifetime_value").run()
    frame = frame_with(at, "derives from")
    assert any("order" in value for value in frame["derives from"]), frame
    assert not at.exception


def test_the_review_page_without_proposals_says_so(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/review.py")
    assert at.title[0].value == "Review"
    assert any("No proposal is in_review" in i.value for i in at.info), [i.value for i in at.info]
    at.selectbox(key="review_state").select("any").run()
    assert not at.exception and not at.error


def test_the_catalogs_search_and_filters_live_in_the_url(app: Callable[..., AppTest]) -> None:
    at = app(catalog_search="recency_score", filter_type="CUSTOMER_360")  # a shared link
    assert at.text_input(key="catalog_search").value == "recency_score"
    labels = {str(link.proto.label).strip("*") for link in at.get("page_link")}
    assert labels == {"dp_customer_360"}
    assert "1 data product" in [c.value for c in at.caption]  # one, not "1 data products"
    at.text_input(key="catalog_search").input("").run()
    at.multiselect(key="filter_type").set_value([]).run()
    assert any(c.value.startswith("3 data products") for c in at.caption), [c.value for c in at.caption]


def test_dbt_tags_and_labels_are_told_apart(app: Callable[..., AppTest]) -> None:
    at = app(filter_label="pii")  # "pii" is a label (meta.tags), not a dbt tag: `tag:pii` selects nothing
    labels = {str(link.proto.label).strip("*") for link in at.get("page_link")}
    assert labels == {"dp_customer_360"}
    card = text_of(at)
    assert "`tag:data-product`" in card and "**pii**" in card
    assert "pii" not in at.multiselect(key="filter_tag").options  # dbt's tags only
    at.multiselect(key="filter_label").set_value([]).run()
    at.multiselect(key="filter_tag").set_value(["rfm"]).run()
    assert {str(link.proto.label).strip("*") for link in at.get("page_link")} == {"dp_customer_360"}
