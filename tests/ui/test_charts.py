"""The observability views' figures (portal/ui/components/charts.py) with 1, 2 and 500 points, as
plotly figure objects; and the product page's Quality and Runs tabs over the real demo."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.catalog.detail import product_detail
from portal.service import PortalService
from portal.settings import ROOT, Settings
from portal.ui.components import charts

APP = str(ROOT / "portal" / "ui" / "app.py")
START = datetime(2025, 11, 3, 19, 32, 40, 722500, tzinfo=UTC)  # the tick: 19:32:40.7225
COUNTS = (1, 2, 500)


def moments(n: int, step: timedelta = timedelta(hours=3)) -> list[datetime]:
    return [START + i * step for i in range(n)]


def window(figure: go.Figure) -> pd.Timedelta:
    low, high = figure.layout.xaxis.range
    return pd.Timestamp(high) - pd.Timestamp(low)


def no_milliseconds(axis: Any) -> None:
    formats = [stop.dtickrange for stop in axis.tickformatstops]
    assert formats, "a time axis formats its ticks by their grain"
    assert all("%L" not in stop.value and "%f" not in stop.value for stop in axis.tickformatstops)
    assert formats[0][0] is None and formats[-1][1] is None  # every tick distance has a format


# --- time axes --------------------------------------------------------------------------------


def test_a_single_moment_gets_the_day_around_it() -> None:
    low, high = charts.time_range([START])
    assert high - low == pd.Timedelta(days=1)
    assert low + (high - low) / 2 == pd.Timestamp(START).tz_localize(None)


def test_moments_seconds_apart_get_at_least_a_minute() -> None:
    low, high = charts.time_range(moments(2, timedelta(seconds=3)))
    assert high - low == pd.Timedelta(minutes=1)
    assert low < pd.Timestamp(START).tz_localize(None) < high


@pytest.mark.parametrize("n", [2, 500])
def test_a_span_gets_itself_and_a_margin(n: int) -> None:
    times = moments(n, timedelta(days=2))
    low, high = charts.time_range(times)
    span = pd.Timestamp(times[-1]) - pd.Timestamp(times[0])
    assert high - low == span * (1 + 2 * charts.PAD)
    assert low < pd.Timestamp(times[0]).tz_localize(None) and pd.Timestamp(times[-1]).tz_localize(None) < high


@pytest.mark.parametrize("n", COUNTS)
def test_time_series_have_a_date_axis_of_the_data_grain(n: int) -> None:
    frame = pd.DataFrame({"measured": moments(n), "rows": range(1000, 1000 + n)})
    figure = charts.line_over_time(frame, x="measured", y="rows", title="Row count")
    axis = figure.layout.xaxis
    assert axis.type == "date"
    assert axis.hoverformat == "%Y-%m-%d %H:%M:%S"
    no_milliseconds(axis)
    assert list(axis.range) == list(charts.time_range(frame["measured"]))
    if n == 1:
        assert window(figure) == pd.Timedelta(days=1)
    # Range and data without an offset (plotly.js cannot read one in a range), the data as UTC.
    shown = json.loads(figure.to_json())
    assert all("+" not in str(v) for v in shown["layout"]["xaxis"]["range"])
    assert shown["data"][0]["x"][0].startswith("2025-11-03T19:32:40")
    assert figure.layout.yaxis.rangemode == "tozero"


def test_small_whole_counts_tick_by_one_and_large_ones_as_plotly_likes() -> None:
    small = charts.line_over_time(
        pd.DataFrame({"at": moments(2), "rows": [3, 5]}), x="at", y="rows", title="Row count"
    )
    assert (small.layout.yaxis.tick0, small.layout.yaxis.dtick) == (0, 1)
    large = charts.line_over_time(
        pd.DataFrame({"at": moments(2), "rows": [3, 5000]}), x="at", y="rows", title="Row count"
    )
    assert large.layout.yaxis.dtick is None
    hours = charts.line_over_time(
        pd.DataFrame({"at": moments(2), "age": [0.5, 2.0]}), x="at", y="age", title="Age"
    )
    assert hours.layout.yaxis.dtick is None  # not whole numbers


# --- rates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", COUNTS)
def test_rates_are_always_on_0_to_100_percent(n: int) -> None:
    frame = pd.DataFrame(
        {
            "measured": moments(n) * 2,
            "column": ["email"] * n + ["phone"] * n,
            "null rate": [0.25] * n + [0.0] * n,
        }
    )
    figure = charts.line_over_time(
        frame, x="measured", y="null rate", color="column", title="Null rate", rate=True
    )
    assert list(figure.layout.yaxis.range) == [0, 1]
    assert figure.layout.yaxis.tickformat == ".0%"
    assert {trace.name for trace in figure.data} == {"email", "phone"}
    assert all(trace.cliponaxis is False for trace in figure.data)  # a marker at 0 % is drawn whole
    assert figure.layout.xaxis.type == "date"


# --- runs ---------------------------------------------------------------------------------------


def durations(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": list(range(100, 100 + n))[::-1],  # newest first, as run_history gives them
            "started": moments(n)[::-1],
            "duration (s)": [1.5 + i for i in range(n)],
            "status": ["success"] * n,
            "by": ["dbt-sync"] * n,
        }
    )


def run_durations(n: int) -> go.Figure:
    return charts.runs_chart(
        durations(n),
        run="run",
        at="started",
        y="duration (s)",
        color="status",
        colors={"success": "#2e7d32"},
        hover=["by"],
        title="Run durations",
    )


@pytest.mark.parametrize("n", [1, 2, charts.FEW_RUNS])
def test_few_runs_are_a_labelled_bar_each_oldest_first(n: int) -> None:
    figure = run_durations(n)
    axis = figure.layout.xaxis
    assert axis.type == "category"
    assert all(trace.type == "bar" for trace in figure.data)
    runs = [f"#{r}" for r in range(100, 100 + n)]
    assert list(axis.categoryarray) == runs and list(axis.tickvals) == runs  # oldest left, all labelled
    assert axis.ticktext[0] == "#100<br>Nov 03 19:32"  # the run and when it started, to the minute
    low, high = axis.range
    assert high - low >= charts.RUN_SLOTS  # one run is one narrow bar, not a wall
    assert low <= -0.5 and high >= n - 0.5  # every bar inside the frame
    assert figure.layout.yaxis.rangemode == "tozero"


@pytest.mark.parametrize("n", [charts.FEW_RUNS + 1, 500])
def test_many_runs_are_a_time_series(n: int) -> None:
    figure = run_durations(n)
    assert figure.layout.xaxis.type == "date"
    assert all(trace.type == "scatter" and trace.mode == "markers" for trace in figure.data)
    no_milliseconds(figure.layout.xaxis)
    assert sum(len(trace.x) for trace in figure.data) == n


@pytest.mark.parametrize("n", COUNTS)
def test_test_results_per_run_stack_by_outcome(n: int) -> None:
    frame = pd.DataFrame(
        [
            {"run": i, "at": at, "outcome": outcome, "tests": count}
            for outcome, count in (("pass", 5), ("fail", 1))
            for i, at in enumerate(moments(n))
        ]
    )
    figure = charts.runs_chart(
        frame, run="run", at="at", y="tests", color="outcome", title="Tests", many="lines"
    )
    assert {trace.name for trace in figure.data} == {"pass", "fail"}
    if n <= charts.FEW_RUNS:
        assert figure.layout.xaxis.type == "category" and len(figure.layout.xaxis.tickvals) == n
        assert figure.layout.yaxis.dtick == 1  # six tests: a tick per test, no halves
    else:
        assert figure.layout.xaxis.type == "date"
        assert all(trace.mode == "lines+markers" for trace in figure.data)


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", COUNTS)
def test_name_bars_label_every_name_first_on_top(n: int) -> None:
    names = [f"not_null_dp_customer_360_column_{i}" for i in range(n)]
    frame = pd.DataFrame({"node": names, "seconds": [n - i for i in range(n)], "type": ["test"] * n})
    figure = charts.framed(charts.name_bars(frame, x="seconds", y="node", color="type", title="Slowest"))
    axis = figure.layout.yaxis
    assert axis.type == "category" and axis.tickmode == "array"
    assert list(axis.tickvals) == names and list(axis.categoryarray) == names
    assert list(axis.ticktext) == names  # short enough to show whole
    assert axis.automargin is True  # the longest name fits
    top, bottom = axis.range
    assert top > bottom and bottom == -0.5  # reversed: the first (slowest) name on top
    slots = max(n, charts.NAME_SLOTS)
    assert figure.layout.height == charts.FRAME_PX + charts.ROW_PX * slots  # a row per name
    assert top - bottom == slots


def test_name_bars_cut_a_long_label_but_keep_its_bar_apart() -> None:
    long = "accepted_values_dp_customer_360_segment__Champions__Loyal__New__Promising__At_Risk"
    frame = pd.DataFrame({"node": [long, long[:60]], "seconds": [2.0, 1.0]})
    figure = charts.name_bars(frame, x="seconds", y="node", title="Slowest")
    assert list(figure.layout.yaxis.tickvals) == [long, long[:60]]  # two bars, the whole name on hover
    assert all(len(t) == charts.MAX_LABEL and t.endswith("…") for t in figure.layout.yaxis.ticktext)


def test_name_bars_keep_two_nodes_of_one_name_apart() -> None:
    frame = pd.DataFrame({"model": ["orders", "customers", "orders"], "mean (s)": [3.0, 2.0, 1.0]})
    figure = charts.name_bars(frame, x="mean (s)", y="model", title="Slowest")
    assert list(figure.layout.yaxis.tickvals) == ["orders", "customers", "orders (2)"]


def test_name_bars_of_few_queries_tick_by_one() -> None:
    frame = pd.DataFrame({"product": ["dp_customer_360", "dp_revenue_analytics"], "queries": [2, 1]})
    figure = charts.name_bars(frame, x="queries", y="product", title="Most used products")
    assert (figure.layout.xaxis.dtick, figure.layout.xaxis.rangemode) == (1, "tozero")


# --- days ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", COUNTS)
def test_daily_bars_show_the_whole_period_a_day_wide(n: int) -> None:
    last = date(2025, 11, 3)
    first = last - timedelta(days=max(30, n))
    frame = pd.DataFrame(
        {"day": [last - timedelta(days=i) for i in range(n)], "face": ["ui"] * n, "queries": [2] * n}
    )
    figure = charts.daily_bars(
        frame, day="day", y="queries", color="face", title="Queries", first=first, last=last
    )
    axis = figure.layout.xaxis
    assert axis.type == "date" and axis.tickformat == "%b %d"
    low, high = (pd.Timestamp(v) for v in axis.range)
    assert (low, high) == (
        pd.Timestamp(first) - timedelta(hours=12),
        pd.Timestamp(last) + timedelta(hours=12),
    )
    assert all(trace.width == 0.8 * charts.DAY_MS for trace in figure.data)  # one day, not the axis
    assert axis.dtick % charts.DAY_MS == 0 and (high - low) / timedelta(milliseconds=axis.dtick) <= 12
    assert sum(len(trace.x) for trace in figure.data) == n


def test_a_quiet_week_ticks_every_day() -> None:
    last = date(2025, 11, 3)
    frame = pd.DataFrame({"day": [last], "face": ["api"], "queries": [1]})
    figure = charts.daily_bars(
        frame,
        day="day",
        y="queries",
        color="face",
        title="Queries",
        first=last - timedelta(days=7),
        last=last,
    )
    assert figure.layout.xaxis.dtick == charts.DAY_MS
    assert figure.layout.yaxis.dtick == 1


def test_framed_keeps_a_height_the_figure_chose() -> None:
    assert charts.framed(go.Figure()).layout.height == charts.CHART_HEIGHT
    assert charts.framed(go.Figure(layout={"height": 500})).layout.height == 500


# --- the product page over the real demo ----------------------------------------------------------


@pytest.fixture
def app(use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str]) -> Callable[..., AppTest]:
    def start(**params: str) -> AppTest:
        use_env(demo_env)
        st.cache_resource.clear()  # the service is cached per process; each test gets its own settings
        at = AppTest.from_file(APP, default_timeout=60)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        at.switch_page("app_pages/product.py")
        at.run()
        assert not at.exception, at.exception
        return at

    return start


def figures(at: AppTest) -> dict[str, dict[str, Any]]:
    """The page's plotly figures by title."""
    shown = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in shown}


def test_product_page_quality_and_runs_charts_over_the_demo(
    app: Callable[..., AppTest], demo_env: dict[str, str]
) -> None:
    name = "dp_customer_360"
    # The demo profiled every product once: a day around that moment, and rates on 0-100 %.
    quality = app(id=name, tab="Quality")
    assert not quality.error
    shown = figures(quality)
    rows = shown["Row count"]["layout"]["xaxis"]
    assert rows["type"] == "date"
    assert pd.Timestamp(rows["range"][1]) - pd.Timestamp(rows["range"][0]) == pd.Timedelta(days=1)
    assert shown["Age of the data"]["layout"]["xaxis"]["type"] == "date"
    for title, figure in shown.items():
        if title.startswith("Null rate"):
            assert figure["layout"]["yaxis"]["range"] == [0, 1]

    runs = app(id=name, tab="Runs")
    assert not runs.error
    shown = figures(runs)
    # The demo's one build: one bar, a category labelled by the run, not a wall across a time axis.
    durations = shown["Run durations"]
    assert durations["layout"]["xaxis"]["type"] == "category"
    assert [trace["type"] for trace in durations["data"]] == ["bar"]
    assert len(durations["layout"]["xaxis"]["tickvals"]) == 1
    # The nodes of that run are the product's own (the model and its tests), each labelled, though
    # the demo's build built the whole project.
    service = PortalService(Settings.from_env(demo_env))
    manifest = service.artifacts().manifest
    own = {name, *(manifest.nodes[t.unique_id].name for t in product_detail(service, name).tests)}
    (slowest,) = [f for title, f in shown.items() if title.startswith("Slowest")]
    labels = slowest["layout"]["yaxis"]["tickvals"]
    assert name in labels and set(labels) <= own
    assert slowest["layout"]["yaxis"]["categoryarray"] == labels
    assert any("other nodes of the project" in c.value for c in runs.caption)
