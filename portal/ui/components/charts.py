"""The figures of the observability views (Quality, Runs and Usage tabs, the Health page), built
one way so that each is honest with 1, 2 or 500 points.

Plotly's defaults go wrong on little data: a single point on a date axis gets a range of a few
milliseconds (ticks like "19:32:40.7225"), a single rate gets an axis around it (down to -50 %),
a single bar on a date axis is as wide as the axis, and a horizontal bar chart of 15 names at a
fixed height labels every other one. So time axes get a range and tick labels of the data's grain,
rates a fixed 0-100 % axis, few runs one category each, and name bars a row each.

Pure plotly, no streamlit: the figures are tested as objects (tests/ui/test_charts.py);
observability_shared.show_chart draws them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

CHART_HEIGHT = 300  # for figures that do not size themselves
FEW_RUNS = 12  # up to this many runs are a bar each; beyond, a bar per run is too thin to read
RUN_SLOTS = 6  # fewer runs still leave room for this many bars, so one bar is not a wall
NAME_SLOTS = 8  # the same for rows of names: a bar keeps its thickness however few there are
ROW_PX = 26  # one name's row in a horizontal bar chart
MAX_LABEL = 50  # characters of a name's label: longer ones would leave the bars no room
FRAME_PX = 100  # a chart's title, axis and margins around its rows
SINGLE_POINT_WINDOW = timedelta(days=1)  # a lone moment has no span: show the day around it
MIN_WINDOW = timedelta(minutes=1)  # points seconds apart: seconds are the finest honest grain
PAD = 0.05  # of the span, each side, so the first and last markers are not cut by the frame
SMALL_COUNT = 10  # whole numbers up to this get a tick each, not plotly's halves
DAY_MS = 86_400_000
HOVER_TIME = "%Y-%m-%d %H:%M:%S"

# Tick labels by the distance between ticks (which plotly picks for the range, and again on zoom):
# never finer than the ticks, so no two labels read alike, and never milliseconds.
TIME_TICK_FORMATS: tuple[tuple[Any, Any, str], ...] = (
    (None, 60_000, "%H:%M:%S"),
    (60_000, DAY_MS, "%H:%M\n%b %d"),
    (DAY_MS, "M1", "%b %d"),
    ("M1", "M12", "%b %Y"),
    ("M12", None, "%Y"),
)
DAY_STEPS = (1, 2, 7, 14, 28, 91, 182, 364)  # days between a daily chart's ticks: the first that fits
MAX_DAY_TICKS = 10


def framed(figure: go.Figure) -> go.Figure:
    """Every chart's frame: one narrow margin that grows to fit the tick labels and axis titles
    (a fixed one cuts long numbers and two-line time labels), one height unless the figure sized
    itself (name bars grow a row per name)."""
    figure.update_layout(
        margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=figure.layout.height or CHART_HEIGHT
    )
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    return figure


def naive_utc(values: Iterable[Any]) -> pd.Series:
    """Times as naive UTC: plotly.js reads a time's wall clock and cannot parse an offset in a
    range, so data and range must both be offset-free (the catalog stores UTC)."""
    return pd.to_datetime(pd.Series(list(values)), utc=True).dt.tz_localize(None)


def time_range(times: Iterable[Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The x range for these moments: their span and a little more, at least a minute, and the
    day around a single moment."""
    known = naive_utc(times).dropna()
    first, last = known.min(), known.max()
    span = last - first
    window = SINGLE_POINT_WINDOW if span == pd.Timedelta(0) else max(span * (1 + 2 * PAD), MIN_WINDOW)
    middle = first + span / 2
    return middle - window / 2, middle + window / 2


def time_axis(figure: go.Figure, times: Iterable[Any]) -> go.Figure:
    """The x axis of a time series: the range of `time_range`, tick labels of the ticks' grain."""
    figure.update_xaxes(
        type="date",
        range=list(time_range(times)),
        tickformatstops=[{"dtickrange": [low, high], "value": fmt} for low, high, fmt in TIME_TICK_FORMATS],
        hoverformat=HOVER_TIME,
    )
    return figure


def rate_axis(figure: go.Figure) -> go.Figure:
    """A y axis of fractions shown as 0-100 %: a rate's axis never goes below 0 % or above 100 %."""
    figure.update_yaxes(range=[0, 1], tickformat=".0%", hoverformat=".1%")
    # A marker at exactly 0 % or 100 % sits on the frame: draw it whole.
    figure.update_traces(cliponaxis=False, selector={"type": "scatter"})
    return figure


def count_axis(
    figure: go.Figure, values: pd.Series | None = None, *, axis: Literal["x", "y"] = "y"
) -> go.Figure:
    """An axis of counts or durations from zero: one point is not centred in a range of ±1.
    Given the `values` drawn (stacks summed), whole numbers up to SMALL_COUNT get a tick each:
    "2.5 queries" is not a thing."""
    update = figure.update_yaxes if axis == "y" else figure.update_xaxes
    update(rangemode="tozero")
    if values is not None and pd.api.types.is_integer_dtype(values) and values.max() <= SMALL_COUNT:
        update(tick0=0, dtick=1)
    return figure


def line_over_time(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    color: str | None = None,
    hover: Sequence[str] = (),
    rate: bool = False,
) -> go.Figure:
    """A line with markers over time; `rate` puts y on 0-100 % (fractions), else from zero."""
    frame = frame.assign(**{x: naive_utc(frame[x]).to_numpy()})
    figure = px.line(frame, x=x, y=y, color=color, markers=True, title=title, hover_data=list(hover))
    time_axis(figure, frame[x])
    return rate_axis(figure) if rate else count_axis(figure, frame[y])


def runs_chart(
    frame: pd.DataFrame,
    *,
    run: str,
    at: str,
    y: str,
    title: str,
    color: str | None = None,
    colors: dict[str, str] | None = None,
    hover: Sequence[str] = (),
    many: Literal["markers", "lines"] = "markers",
) -> go.Figure:
    """A value per run (stacked by `color`): up to FEW_RUNS runs a bar each, one category per run
    labelled by its id and start, oldest left; more as a time series (`many`: markers for a value
    per run, lines for a few series across runs)."""
    frame = frame.assign(**{at: naive_utc(frame[at]).to_numpy()})
    runs = frame[[run, at]].drop_duplicates(run).sort_values([at, run])  # oldest first, ties by id
    frame = frame.assign(**{run: [f"#{r}" for r in frame[run]]})  # a label, not a number to scale
    if len(runs) > FEW_RUNS:
        figure = px.scatter(
            frame.sort_values(at, kind="stable"),
            x=at,
            y=y,
            color=color,
            color_discrete_map=colors or {},
            hover_data=[run, *hover],
            title=title,
        )
        if many == "lines":
            figure.update_traces(mode="lines+markers")
        time_axis(figure, frame[at])
        return count_axis(figure, frame[y])
    names = [f"#{r}" for r in runs[run]]
    figure = px.bar(
        frame,
        x=run,
        y=y,
        color=color,
        color_discrete_map=colors or {},
        hover_data={at: "|" + HOVER_TIME, **dict.fromkeys(hover, True)},
        category_orders={run: names},
        title=title,
    )
    figure.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=names,
        tickmode="array",  # every run labelled, with when it started
        tickvals=names,
        ticktext=[f"{n}<br>{s:%b %d %H:%M}" for n, s in zip(names, runs[at], strict=True)],
        range=_slots(len(names), RUN_SLOTS, centred=True),
    )
    return count_axis(figure, frame.groupby(run)[y].sum())


def daily_bars(
    frame: pd.DataFrame, *, day: str, y: str, title: str, first: date, last: date, color: str | None = None
) -> go.Figure:
    """Counts per day from `first` to `last` (the whole period, quiet days included), a day's
    width each, a tick every few days."""
    frame = frame.assign(**{day: pd.to_datetime(frame[day]).to_numpy()})
    figure = px.bar(frame, x=day, y=y, color=color, title=title)
    figure.update_traces(width=0.8 * DAY_MS)  # a day, not the whole axis when there is one day
    days = (last - first).days + 1
    step = next((s for s in DAY_STEPS if days / s <= MAX_DAY_TICKS), DAY_STEPS[-1])
    half_day = timedelta(hours=12)
    start, end = pd.Timestamp(first), pd.Timestamp(last)
    figure.update_xaxes(
        type="date",
        range=[start - half_day, end + half_day],
        tick0=end,  # counted back from the last day, so the last day is labelled
        dtick=step * DAY_MS,
        tickformat="%b %d",
        hoverformat="%Y-%m-%d",
    )
    return count_axis(figure, frame.groupby(day)[y].sum())


def name_bars(frame: pd.DataFrame, *, x: str, y: str, title: str, color: str | None = None) -> go.Figure:
    """Horizontal bars, one row per name in `frame`'s order (first on top), every name labelled:
    the chart grows a row per name instead of squeezing them. A long name (dbt's generated test
    names run to 90 characters) is cut in its label, whole in its hover."""
    names = _distinct(frame[y].astype(str))
    frame = frame.assign(**{y: names})
    figure = px.bar(frame, x=x, y=y, color=color, orientation="h", title=title, category_orders={y: names})
    slots = max(len(names), NAME_SLOTS)
    low, high = _slots(len(names), NAME_SLOTS)
    figure.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=names,
        tickmode="array",  # a label for every bar, never every other one
        tickvals=names,
        ticktext=[n if len(n) <= MAX_LABEL else n[: MAX_LABEL - 1] + "…" for n in names],
        range=[high, low],  # reversed: the first name on top, empty rows below
        title_text="",
    )
    figure.update_layout(height=FRAME_PX + ROW_PX * slots)
    return count_axis(figure, frame.groupby(y)[x].sum(), axis="x")


def _slots(count: int, minimum: int, *, centred: bool = False) -> list[float]:
    """A category axis's range holding at least `minimum` categories' room (centred or from the
    first), so a few bars keep the width they would have among many."""
    slots = max(count, minimum)
    start = -(slots - count) / 2 if centred else 0.0
    return [start - 0.5, start + slots - 0.5]


def _distinct(names: Iterable[str]) -> list[str]:
    """Names as category labels, a repeated one numbered: equal labels would share one bar."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels


__all__ = [
    "CHART_HEIGHT",
    "FEW_RUNS",
    "count_axis",
    "daily_bars",
    "framed",
    "line_over_time",
    "naive_utc",
    "name_bars",
    "rate_axis",
    "runs_chart",
    "time_axis",
    "time_range",
]
