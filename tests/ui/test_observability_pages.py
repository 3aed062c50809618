"""The Health page and the product page's Quality, Runs and Usage tabs, driven with AppTest over a
private copy of the real demo build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from catalog_db.models import ProductProfile
from portal import audit
from portal.auth.identity import Identity
from portal.observability import history
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo

HEALTH = str(ROOT / "portal" / "ui" / "app_pages" / "health.py")
PRODUCTS = {"dp_customer_360", "dp_product_performance", "dp_revenue_analytics"}


def tabs_script(name: str) -> None:
    """The three tabs as the product page shows them (AppTest runs this function's source)."""
    import streamlit as st

    from portal.ui.components.context import attempt, get_service
    from portal.ui.components.quality_tab import render_quality_tab
    from portal.ui.components.runs_tab import render_runs_tab
    from portal.ui.components.usage_tab import render_usage_tab

    service = attempt(get_service)
    if service is None:
        st.stop()
    quality_tab, runs_tab, usage_tab = st.tabs(["Quality", "Runs", "Usage"])
    with quality_tab:
        render_quality_tab(service, name)
    with runs_tab:
        render_runs_tab(service, name)
    with usage_tab:
        render_usage_tab(service, name)


@pytest.fixture
def environ(demo_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return copy_demo(demo_env, tmp_path / "demo")


@pytest.fixture
def service(environ: dict[str, str]) -> PortalService:
    return PortalService(Settings.from_env(environ))


@pytest.fixture
def start(use_env: Callable[[dict[str, str]], None], environ: dict[str, str]) -> Callable[..., AppTest]:
    def run(
        target: str | None = None, *, product: str = "dp_customer_360", env: dict[str, str] | None = None
    ) -> AppTest:
        use_env(env or environ)
        st.cache_resource.clear()  # the service is cached per process
        if target is None:
            at = AppTest.from_function(tabs_script, args=(product,), default_timeout=120)
        else:
            at = AppTest.from_file(target, default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        return at

    return run


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(parts)


def frame_with(at: AppTest, column: str):
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert frames, f"no dataframe with a {column!r} column"
    return frames[-1]


def test_health_page_lists_every_product_worst_first(
    start: Callable[..., AppTest], service: PortalService
) -> None:
    history.profile_products(service)
    # Make one product worse than the others: its table disappears from the warehouse.
    con = duckdb.connect(service.settings.duckdb_path.as_posix())
    con.execute("drop table gold.dp_revenue_analytics")
    con.close()
    history.profile_product(service, "dp_revenue_analytics")
    for user in ("ann", "bob", "ann"):
        audit.record_read(service, Identity(user), "dp_customer_360", face="ui", rows=100, duration_ms=12.0)
    audit.record_read(
        service, Identity("carl", "oidc"), "dp_product_performance", face="api", rows=7, duration_ms=3.0
    )

    at = start(HEALTH)
    assert at.title[0].value == "Health"
    assert not at.error
    table = frame_with(at, "freshness")
    assert set(table["product"]) == PRODUCTS
    assert table["product"].iloc[0] == "dp_revenue_analytics"
    assert table["health"].iloc[0] == "✖ failing"
    assert "profile: the table does not exist in the warehouse" in table["problems"].iloc[0]
    assert set(table["freshness"]) == {"● fresh"}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["✖ failing"] == "1" and metrics["● healthy"] == "2"
    board = frame_with(at, "users")
    assert list(board["product"]) == ["dp_customer_360", "dp_product_performance"]
    assert list(board["queries"]) == [3, 1]
    consumers = frame_with(at, "last query")
    assert list(consumers["user"])[:1] == ["ann"]
    assert len(at.get("plotly_chart")) == 2  # usage leaderboard and slowest models
    assert "No product is due for a refresh." in texts(at)


def test_health_page_when_the_warehouse_is_down(
    start: Callable[..., AppTest], environ: dict[str, str], tmp_path: Path
) -> None:
    at = start(HEALTH, env={**environ, "PORTAL_DUCKDB_PATH": str(tmp_path / "gone.duckdb")})
    assert set(frame_with(at, "freshness")["product"]) == PRODUCTS  # read from the catalog, not the warehouse
    assert not at.error


def test_quality_tab_before_and_after_profiling(
    start: Callable[..., AppTest], environ: dict[str, str]
) -> None:
    # The demo build profiles every product; forget those profiles to see the "not yet" state.
    engine = sa.create_engine(environ["PORTAL_CATALOG_DB_URL"])
    with engine.begin() as con:
        con.execute(sa.delete(ProductProfile))
    engine.dispose()
    at = start()
    assert "has not been profiled yet" in texts(at)
    at.button(key="quality_dp_customer_360_profile").click().run()
    assert not at.exception
    at.button(key="quality_dp_customer_360_profile").click().run()  # a second point on each chart
    assert "**Freshness**  \n:green[● fresh]" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Duplicate keys"] == "0"
    assert metrics["Open drift events"] == "0"
    assert int(metrics["Rows"].replace(",", "")) > 0
    columns = frame_with(at, "top values")
    assert "data_product_updated_at" in set(columns["column"])
    assert "No drift detected between successive profiles." in texts(at)
    titles = {chart.proto.spec for chart in at.get("plotly_chart")}
    assert any("Row count" in t for t in titles) and any("Age of the data" in t for t in titles)
    assert set(frame_with(at, "warn after")["freshness"]) == {"fresh"}


def test_quality_tab_lists_and_acknowledges_drift(
    start: Callable[..., AppTest], service: PortalService
) -> None:
    history.profile_product(service, "dp_revenue_analytics")
    con = duckdb.connect(service.settings.duckdb_path.as_posix())
    con.execute("alter table gold.dp_revenue_analytics add column surprise integer")
    con.close()
    history.profile_product(service, "dp_revenue_analytics")

    at = start(product="dp_revenue_analytics")
    drift = frame_with(at, "what changed")
    assert "Column surprise was added (INTEGER)." in set(drift["what changed"])
    assert set(drift["state"]) == {"open"}
    assert {m.label: m.value for m in at.metric}["Open drift events"] == "1"
    at.button(key="quality_dp_revenue_analytics_ack").click().run()
    assert not at.exception
    assert set(frame_with(at, "what changed")["state"]) == {"acknowledged by local-user"}


def test_quality_tab_when_the_table_is_missing(start: Callable[..., AppTest], service: PortalService) -> None:
    con = duckdb.connect(service.settings.duckdb_path.as_posix())
    con.execute("drop table gold.dp_product_performance")
    con.close()
    at = start(product="dp_product_performance")
    at.button(key="quality_dp_product_performance_profile").click().run()
    assert not at.exception
    assert any("the table does not exist in the warehouse" in w.value for w in at.warning)


def test_tabs_of_an_unknown_product_say_what_exists(start: Callable[..., AppTest]) -> None:
    at = start(product="customer_360")
    assert at.warning and all("Did you mean dp_customer_360" in w.value for w in at.warning)


def test_runs_tab_shows_history_timings_and_refreshes(start: Callable[..., AppTest]) -> None:
    at = start(product="dp_product_performance")
    runs = frame_with(at, "duration (s)")
    assert len(runs) == 1 and runs["by"].iloc[0] == "dbt-sync"  # the demo's build
    timings = frame_with(at, "message")
    assert "dp_product_performance" in set(timings["node"])
    at.button(key="runs_dp_product_performance_refresh").click().run()
    assert not at.exception
    assert any("dp_product_performance: success" in s.value for s in at.success)
    runs = frame_with(at, "duration (s)")
    assert len(runs) == 2
    assert runs["selector"].iloc[0] == "+dp_product_performance" and runs["by"].iloc[0] == "local-user"
    at.selectbox(key="runs_dp_product_performance_pick").select(int(runs["run"].iloc[0])).run()
    assert any("Done. PASS=" in c.value for c in at.code)  # the dbt log of a portal-started run


def test_usage_tab_counts_queries_and_consumers(
    start: Callable[..., AppTest], service: PortalService
) -> None:
    at = start()
    assert "Nobody has read dp_customer_360 through the portal" in texts(at)
    for user, face in (("ann", "ui"), ("ann", "api"), ("bob", "ui")):
        audit.record_read(service, Identity(user), "dp_customer_360", face=face, rows=10, duration_ms=5.0)
    at = start()
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Queries"], metrics["Rows read"], metrics["Users"]) == ("3", "30", "2")
    consumers = frame_with(at, "last query")
    assert list(consumers["user"]) == ["ann", "bob"] and list(consumers["queries"]) == [2, 1]
    assert len(at.get("plotly_chart")) >= 1
