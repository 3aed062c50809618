"""Health: every data product's freshness, last run, failing tests and open drift, worst first;
the usage leaderboard; the slowest models."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.observability import refresh, usage
from portal.observability.drift import drift_events
from portal.observability.freshness import describe_age
from portal.observability.health import health_overview
from portal.project.statuses import HEALTH_LEVELS, plural
from portal.runs import slowest_models
from portal.ui.components.badges import HEALTH_ICON, ago, health_text
from portal.ui.components.charts import name_bars
from portal.ui.components.context import attempt, current_identity, get_service
from portal.ui.components.grid import show_grid, wide
from portal.ui.components.observability_shared import FRESHNESS_ICON, render_drift_table, show_chart
from portal.ui.components.runs_tab import run_refresh
from portal.ui.components.usage_tab import period_picker, render_consumers

st.title("Health")
service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()

overview = attempt(lambda: health_overview(service))
if overview is None:
    st.stop()
if not overview:
    st.info("There are no data products yet: create one, or point the portal at a dbt project that has some.")
    st.stop()

levels = [h.level for h in overview]
facts = st.columns(5)
for column, level in zip(facts, HEALTH_LEVELS, strict=True):
    column.metric(f"{HEALTH_ICON[level]} {level}", levels.count(level))

due = attempt(lambda: [c for c in refresh.due_checks(service) if c.due]) or []
left, right = st.columns([3, 1])
left.caption(
    f"{plural(len(due), 'product')} due for a refresh: {', '.join(c.name for c in due)}."
    if due
    else "No product is due for a refresh."
)
refusal = refresh.refresh_due_refusal(current_identity())  # what the core would answer
if right.button(
    "Refresh due products",
    key="health_refresh_due",
    icon=":material/refresh:",
    disabled=not due or refusal is not None,
    help=refusal,
):
    attempt(lambda: run_refresh(service, None))
    st.rerun()

frame = pd.DataFrame(
    {
        "health": [health_text(h.health) for h in overview],
        "product": [h.name for h in overview],
        "freshness": [f"{FRESHNESS_ICON[h.freshness.state]} {h.freshness.state}" for h in overview],
        "age": [describe_age(h.freshness.age) for h in overview],
        "promised": [h.entry.update_frequency or "on demand" for h in overview],
        "last run": [f"{h.health.build_status or 'never'} · {ago(h.last_run_at)}" for h in overview],
        "run (s)": [h.last_run_elapsed_s for h in overview],
        "lifecycle": [h.entry.lifecycle for h in overview],
        "failing tests": [h.health.tests_failed for h in overview],
        "open drift": [h.health.open_drift for h in overview],
        "rows": [h.entry.row_count for h in overview],
        "problems": ["; ".join(h.problems) for h in overview],
        "owner": [h.entry.owner or "" for h in overview],
    }
)
event = show_grid(
    frame,
    key="health_table",
    max_rows=40,
    on_select="rerun",
    selection_mode="single-row",
    column_config={"run (s)": st.column_config.NumberColumn(format="%.1f"), **wide("problems")},
)
st.caption("Worst first. Select a row to open the product.")
chosen = event.selection.rows if event else []
if chosen:
    st.switch_page("app_pages/product.py", query_params={"id": overview[chosen[0]].name})

drift = attempt(lambda: drift_events(service, open_only=True, limit=50)) or []
if drift:
    st.subheader("Open drift events")
    render_drift_table(drift, "health_drift", with_product=True)

st.subheader("Usage leaderboard")
days = period_picker("health_usage_days")
board = attempt(lambda: usage.leaderboard(service, days=days)) or []
if not board:
    st.info("No product has been read through the portal in this period.")
else:
    board_frame = pd.DataFrame(
        {
            "product": [u.product for u in board],
            "queries": [u.queries for u in board],
            "users": [u.users for u in board],
            "rows": [u.rows for u in board],
            "mean ms": [u.mean_duration_ms for u in board],
            "last query": [ago(u.last_at) for u in board],
        }
    )
    left, right = st.columns(2)
    with left:
        figure = name_bars(board_frame, x="queries", y="product", title="Most used products")
        show_chart(figure, "health_usage_chart")
    with right:
        show_grid(
            board_frame,
            key="health_usage_table",
            column_config={"mean ms": st.column_config.NumberColumn(format="%.0f")},
        )
    consumers = attempt(lambda: usage.top_consumers(service, days=days)) or []
    render_consumers(consumers, "health_consumers")

st.subheader("Slowest models")
slowest = attempt(lambda: slowest_models(service)) or []
if not slowest:
    st.info("No model timings are recorded yet: they come from dbt's run_results.json after each build.")
else:
    speed = pd.DataFrame(
        {
            "model": [m.name for m in slowest],
            "mean (s)": [m.mean_s for m in slowest],
            "max (s)": [m.max_s for m in slowest],
            "runs": [m.runs for m in slowest],
        }
    )
    figure = name_bars(speed, x="mean (s)", y="model", title="Mean execution time over recent runs")
    show_chart(figure, "health_slowest_chart")
