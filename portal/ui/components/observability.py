"""The product page's Quality, Runs and Usage tabs, and the pieces the Health page shares with them.

Every number comes from portal.observability.quality, portal.observability.refresh and portal.observability.usage; this module only draws.
Widget keys carry the product's name, so two products' tabs never share state.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from portal.observability import quality, refresh, usage
from portal.service import PortalService, ProductDetail, TestResult
from portal.ui.components.badges import ago
from portal.ui.components.context import attempt, current_identity, product_detail
from portal.ui.components.publish import render_publish

FRESHNESS_COLOR = {"fresh": "green", "late": "orange", "stale": "red", "unknown": "gray"}
FRESHNESS_ICON = {"fresh": "●", "late": "▲", "stale": "✖", "unknown": "○"}
STATUS_COLORS = {
    "success": "#2e7d32",
    "partial": "#ef6c00",
    "error": "#c62828",
    "running": "#1565c0",
    "queued": "#757575",
}
MAX_NULL_RATE_LINES = 12  # beyond that a line chart is noise; the table has every column


def freshness_label(state: str) -> str:
    """Markdown: a coloured mark and the word, like the catalog's health badge."""
    return f":{FRESHNESS_COLOR[state]}[{FRESHNESS_ICON[state]} {state}]"


def show_chart(figure: go.Figure, key: str) -> None:
    """Every chart of the observability views at one size and margin."""
    figure.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=300)
    st.plotly_chart(figure, key=key)


# --- Quality -------------------------------------------------------------------------------


def render_quality_tab(service: PortalService, product: str | ProductDetail) -> None:
    """Freshness, tests, profile charts (rows, null rates, freshness) and drift events of a product."""
    detail = product_detail(service, product)
    if detail is None:
        return
    key = detail.node.unique_id
    name = detail.entry.name
    prefix = f"quality_{name}"
    if st.button(
        "Profile now",
        key=f"{prefix}_profile",
        icon=":material/query_stats:",
        help="Measure the product in the warehouse now and record any drift.",
    ):
        outcome = attempt(lambda: quality.profile_product(service, key))
        if outcome is not None:
            found = len(outcome.drift)
            st.toast(f"Profiled {name}: {outcome.profile.summary}; {found} drift event(s).")

    fresh = attempt(lambda: quality.freshness(service, key))
    history = attempt(lambda: quality.profile_history(service, key)) or []
    drift = attempt(lambda: quality.drift_events(service, key)) or []
    latest = history[-1] if history else None
    measured = [p for p in history if p.status == "ok"]

    facts = st.columns(4)
    if fresh is not None:
        facts[0].markdown(f"**Freshness**  \n{freshness_label(fresh.state)}")
        facts[0].caption(fresh.reason)
    facts[1].metric("Rows", f"{latest.row_count:,}" if latest and latest.row_count is not None else "unknown")
    keys = latest.duplicate_keys if latest else None
    facts[2].metric(
        "Duplicate keys",
        "n/a" if keys is None else f"{keys:,}",
        help=f"Primary key: {', '.join(latest.primary_key)}"
        if latest and latest.primary_key
        else "No primary key declared (meta.primary_key or a unique test).",
    )
    facts[3].metric("Open drift events", sum(not d.acknowledged for d in drift))

    if latest is None:
        st.info(
            "This product has not been profiled yet. Press **Profile now**, or refresh it "
            "(`python -m portal refresh NAME`).",
            icon=":material/query_stats:",
        )
    elif latest.status != "ok":
        st.warning(
            f"Latest profile ({ago(latest.measured_at)}): **{quality.PROFILE_STATUS_TEXT[latest.status]}**. "
            f"{latest.message or ''}",
            icon=":material/warning:",
        )

    st.subheader("Tests")
    _tests_section(service, key, detail.tests, prefix)

    st.subheader("Over time")
    if measured:
        left, right = st.columns(2)
        with left:
            _row_count_chart(measured, f"{prefix}_rows_chart")
        with right:
            _null_rate_chart(measured, f"{prefix}_nulls_chart")
    if fresh is not None:
        _freshness_chart(service, key, detail.entry.update_frequency, f"{prefix}_fresh_chart")
        if fresh.sources:
            st.caption("Upstream sources (dbt `loaded_at_field` against the source's freshness promise)")
            st.dataframe(
                pd.DataFrame(
                    {
                        "source": [s.label for s in fresh.sources],
                        "freshness": [s.state for s in fresh.sources],
                        "age": [quality.describe_age(s.age) for s in fresh.sources],
                        "warn after": [
                            quality.describe_age(s.warn_after) if s.warn_after else "" for s in fresh.sources
                        ],
                        "error after": [
                            quality.describe_age(s.error_after) if s.error_after else ""
                            for s in fresh.sources
                        ],
                        "problem": [s.error or "" for s in fresh.sources],
                    }
                ),
                hide_index=True,
                width="stretch",
                key=f"{prefix}_sources",
            )

    if measured:
        st.subheader("Columns (latest profile)")
        _columns_table(measured[-1], f"{prefix}_columns")

    st.subheader("Drift")
    _drift_section(service, drift, prefix)


def _tests_section(service: PortalService, key: str, tests: list[TestResult], prefix: str) -> None:
    if not tests:
        st.info("No tests are attached to this product.")
        return
    counts: dict[str, int] = {}
    for test in tests:
        counts[test.status or "not run"] = counts.get(test.status or "not run", 0) + 1
    st.markdown(" · ".join(f"**{n}** {status}" for status, n in sorted(counts.items())))
    failing = [t for t in tests if t.status in {"fail", "error", "warn"}]
    if failing:
        st.dataframe(
            pd.DataFrame(
                {
                    "status": [t.status for t in failing],
                    "test": [t.name for t in failing],
                    "column": [t.column_name or "" for t in failing],
                    "failures": [t.failures for t in failing],
                    "message": [t.message or "" for t in failing],
                }
            ),
            hide_index=True,
            width="stretch",
            key=f"{prefix}_failing_tests",
        )
    runs = attempt(lambda: quality.test_history(service, key)) or []
    if len(runs) > 1:
        frame = pd.DataFrame(
            [
                {"run": f"#{r.run_id}", "at": r.at, "outcome": outcome, "tests": n}
                for r in runs
                for outcome, n in (("pass", r.passed), ("warn", r.warned), ("fail", r.failed + r.errored))
                if n
            ]
        )
        figure = px.bar(
            frame,
            x="at",
            y="tests",
            color="outcome",
            title="Test results per run",
            color_discrete_map={"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828"},
            hover_data=["run"],
        )
        show_chart(figure, f"{prefix}_tests_chart")


def _row_count_chart(profiles: list[quality.Profile], key: str) -> None:
    frame = pd.DataFrame(
        {"measured": [p.measured_at for p in profiles], "rows": [p.row_count for p in profiles]}
    )
    show_chart(px.line(frame, x="measured", y="rows", markers=True, title="Row count"), key)


def _null_rate_chart(profiles: list[quality.Profile], key: str) -> None:
    frame = pd.DataFrame(
        [
            {"measured": p.measured_at, "column": c.name, "null rate": c.null_rate}
            for p in profiles
            for c in p.columns
            if c.null_rate is not None
        ]
    )
    if frame.empty:
        st.caption("No null rates measured yet.")
        return
    # The columns that ever had nulls, worst first: a flat line at zero for every column says nothing.
    worst = frame.groupby("column")["null rate"].max().sort_values(ascending=False)
    chosen = [c for c, rate in worst.items() if rate > 0][:MAX_NULL_RATE_LINES]
    if not chosen:
        st.caption("Null rates: no column has ever had a null.")
        return
    figure = px.line(
        frame[frame["column"].isin(chosen)],
        x="measured",
        y="null rate",
        color="column",
        markers=True,
        title="Null rate (columns with nulls)",
    )
    figure.update_yaxes(tickformat=".0%")
    show_chart(figure, key)


def _freshness_chart(service: PortalService, key: str, frequency: str | None, chart_key: str) -> None:
    points = attempt(lambda: quality.freshness_history(service, key)) or []
    known = [p for p in points if p.age_hours is not None]
    if not known:
        return
    frame = pd.DataFrame(
        {
            "at": [p.at for p in known],
            "age (hours)": [p.age_hours for p in known],
            "state": [p.state for p in known],
        }
    )
    figure = px.line(
        frame, x="at", y="age (hours)", markers=True, title="Age of the data", hover_data=["state"]
    )
    period = quality.frequency_period(frequency)
    if period is not None:
        hours = period / timedelta(hours=1)
        stale = hours * service.settings.freshness_stale_factor
        figure.add_hline(
            y=hours, line_dash="dash", line_color="orange", annotation_text=f"late ({frequency})"
        )
        figure.add_hline(y=stale, line_dash="dot", line_color="red", annotation_text="stale")
    show_chart(figure, chart_key)


def _columns_table(profile: quality.Profile, key: str) -> None:
    def top_values(column: quality.ColumnProfile) -> str:
        if not column.values:
            return ""
        return ", ".join(f"{v if v is not None else 'null'} ({n:,})" for v, n in column.values[:5])

    columns = profile.columns
    st.dataframe(
        pd.DataFrame(
            {
                "column": [c.name for c in columns],
                "type": [c.type for c in columns],
                "nulls": [c.nulls for c in columns],
                "null rate": [c.null_rate for c in columns],
                "distinct": [c.distinct for c in columns],
                "min": [None if c.minimum is None else str(c.minimum) for c in columns],
                "max": [None if c.maximum is None else str(c.maximum) for c in columns],
                "mean": [c.mean for c in columns],
                "std dev": [c.stddev for c in columns],
                "top values": [top_values(c) for c in columns],
                "note": [
                    "type not profiled beyond nulls" if c.kind == quality.OTHER else "" for c in columns
                ],
            }
        ),
        hide_index=True,
        width="stretch",
        key=key,
        column_config={"null rate": st.column_config.NumberColumn(format="percent")},
    )


def _drift_section(service: PortalService, drift: list[quality.DriftRecord], prefix: str) -> None:
    if not drift:
        st.success("No drift detected between successive profiles.", icon=":material/check_circle:")
        return
    render_drift_table(drift, f"{prefix}_drift")
    open_events = [d for d in drift if not d.acknowledged]
    if not open_events:
        return
    left, right = st.columns([3, 1])
    chosen = left.selectbox(
        "Acknowledge a drift event",
        [d.id for d in open_events],
        format_func=lambda i: next(f"#{d.id} {d.description}" for d in open_events if d.id == i),
        key=f"{prefix}_ack_pick",
    )
    clicked = right.button("Acknowledge", key=f"{prefix}_ack", icon=":material/done:")
    if clicked and chosen is not None:
        acknowledged = attempt(lambda: quality.acknowledge_drift(service, int(chosen), current_identity()))
        if acknowledged is not None:
            st.rerun()


def render_drift_table(drift: list[quality.DriftRecord], key: str, *, with_product: bool = False) -> None:
    frame = pd.DataFrame(
        {
            "product": [d.product for d in drift],
            "detected": [d.detected_at for d in drift],
            "kind": [d.kind for d in drift],
            "column": [d.column or "" for d in drift],
            "what changed": [d.description for d in drift],
            "state": [f"acknowledged by {d.acknowledged_by}" if d.acknowledged else "open" for d in drift],
        }
    )
    if not with_product:
        frame = frame.drop(columns="product")
    st.dataframe(frame, hide_index=True, width="stretch", key=key)


# --- Runs ----------------------------------------------------------------------------------


def run_refresh(service: PortalService, names: list[str] | None) -> None:
    """Refresh `names` (or every due product when None) inside st.status, with a progress bar."""
    label = f"Refreshing {', '.join(names)} …" if names else "Refreshing every due product …"
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def show(progress: refresh.Progress) -> None:
            bar.progress(progress.fraction, text=refresh.describe_progress(progress))

        def work() -> list[refresh.RefreshResult]:
            user = current_identity().user
            if names is None:
                return refresh.refresh_due(service, triggered_by=user, on_progress=show).results
            return [
                refresh.refresh_one(service, n, triggered_by=user, wait=False, on_progress=show)
                for n in names
            ]

        try:
            results = work()
        except (refresh.RefreshBusy, refresh.NotRefreshable) as exc:
            status.update(label=str(exc), state="error")
            return
        for result in results:
            (st.success if result.ok else st.error)(f"{result.product}: {result.status}. {result.message}")
        failed = [r for r in results if not r.ok]
        state = "error" if failed else "complete"
        done = f"Refreshed {len(results)} product(s)" if results else "Nothing was due"
        status.update(
            label=done + (f", {len(failed)} failed" if failed else ""), state=state, expanded=bool(failed)
        )


def render_runs_tab(service: PortalService, product: str | ProductDetail) -> None:
    """Run history with durations, each run's per-model timings and dbt log, and a refresh button."""
    detail = product_detail(service, product)
    if detail is None:
        return
    key = detail.node.unique_id
    name = detail.entry.name
    prefix = f"runs_{name}"
    refreshable = detail.entry.status not in refresh.UNPUBLISHED_STATUSES
    if st.button(
        "Refresh now",
        key=f"{prefix}_refresh",
        icon=":material/refresh:",
        disabled=not refreshable,
        help=f"dbt build --select +{name}, then profile it."
        if refreshable
        else f"{name} is {detail.entry.status}: resubmit it on the Create page; only a passing audit publishes it.",
    ):
        attempt(lambda: run_refresh(service, [name]))

    runs = attempt(lambda: refresh.run_history(service, key)) or []
    if not runs:
        st.info("No runs of this product are recorded yet. Press **Refresh now** to build it.")
        return
    frame = pd.DataFrame(
        {
            "run": [r.id for r in runs],
            "started": [r.started_at for r in runs],
            "status": [r.status for r in runs],
            "duration (s)": [r.elapsed_s for r in runs],
            "models": [r.models for r in runs],
            "tests": [r.tests for r in runs],
            "failed": [r.failed for r in runs],
            "selector": [r.selector or "(everything)" for r in runs],
            "by": [r.triggered_by for r in runs],
        }
    )
    if any(r.publish for r in runs):  # creation runs: where they were audited and what became of them
        frame["write-audit-publish"] = [r.publish.summary() if r.publish else "" for r in runs]
    figure = px.bar(
        frame.sort_values("started"),
        x="started",
        y="duration (s)",
        color="status",
        color_discrete_map=STATUS_COLORS,
        hover_data=["run", "selector", "by"],
        title="Run durations",
    )
    show_chart(figure, f"{prefix}_chart")
    st.dataframe(frame, hide_index=True, width="stretch", key=f"{prefix}_table")

    chosen = st.selectbox(
        "Run",
        [r.id for r in runs],
        format_func=lambda i: next(f"#{r.id} · {r.status} · {ago(r.started_at)}" for r in runs if r.id == i),
        key=f"{prefix}_pick",
    )
    if chosen is None:
        return
    record = next(r.publish for r in runs if r.id == chosen)
    if record is not None:
        render_publish(record, f"{prefix}_publish")
    timings = attempt(lambda: refresh.run_timings(service, int(chosen))) or []
    if timings:
        render_timings(timings, f"{prefix}_timings")
    else:
        st.caption("dbt reported no node results for this run.")
    text = attempt(lambda: refresh.run_log(service, int(chosen)))
    with st.expander("dbt log"):
        st.code(
            text or "No log: this run was read from run_results.json, not started by the portal.",
            language="log",
        )


def render_timings(timings: list[refresh.NodeTiming], key: str, *, limit: int = 15) -> None:
    slowest = timings[:limit]
    frame = pd.DataFrame(
        {
            "node": [t.name for t in slowest],
            "type": [t.resource_type for t in slowest],
            "seconds": [t.execution_time for t in slowest],
            "status": [t.status for t in slowest],
        }
    )
    figure = px.bar(
        frame.iloc[::-1],
        x="seconds",
        y="node",
        color="type",
        orientation="h",
        title=f"Slowest {len(slowest)} nodes",
    )
    show_chart(figure, f"{key}_chart")
    st.dataframe(
        pd.DataFrame(
            {
                "node": [t.name for t in timings],
                "type": [t.resource_type for t in timings],
                "status": [t.status for t in timings],
                "seconds": [t.execution_time for t in timings],
                "message": [t.message or "" for t in timings],
            }
        ),
        hide_index=True,
        width="stretch",
        key=f"{key}_table",
    )


# --- Usage ---------------------------------------------------------------------------------

PERIODS = {7: "last 7 days", 30: "last 30 days", 90: "last 90 days"}


def period_picker(key: str) -> int:
    return int(st.selectbox("Period", list(PERIODS), index=1, format_func=PERIODS.get, key=key) or 30)


def render_usage_tab(service: PortalService, product: str | ProductDetail) -> None:
    """Queries over time by face, and the top consumers of one product."""
    detail = product_detail(service, product)
    if detail is None:
        return
    name = detail.entry.name
    prefix = f"usage_{name}"
    days = period_picker(f"{prefix}_days")
    by_day = attempt(lambda: usage.usage_by_day(service, name, days=days)) or []
    consumers = attempt(lambda: usage.top_consumers(service, name, days=days)) or []
    facts = st.columns(3)
    facts[0].metric("Queries", f"{sum(d.queries for d in by_day):,}")
    facts[1].metric("Rows read", f"{sum(d.rows for d in by_day):,}")
    facts[2].metric("Users", len(consumers))
    if not by_day:
        st.info(
            f"Nobody has read {name} through the portal in the {PERIODS[days]}. Previews in the UI and "
            "queries through the API are counted here."
        )
        return
    frame = pd.DataFrame(
        {
            "day": [d.day for d in by_day],
            "face": [d.face for d in by_day],
            "queries": [d.queries for d in by_day],
        }
    )
    show_chart(px.bar(frame, x="day", y="queries", color="face", title="Queries per day"), f"{prefix}_chart")
    render_consumers(consumers, f"{prefix}_consumers")


def render_consumers(consumers: list[usage.Consumer], key: str) -> None:
    st.caption("Top consumers")
    st.dataframe(
        pd.DataFrame(
            {
                "user": [c.user for c in consumers],
                "queries": [c.queries for c in consumers],
                "rows": [c.rows for c in consumers],
                "products": [c.products for c in consumers],
                "last query": [ago(c.last_at) for c in consumers],
            }
        ),
        hide_index=True,
        width="stretch",
        key=key,
    )


__all__ = [
    "freshness_label",
    "period_picker",
    "render_consumers",
    "render_drift_table",
    "render_quality_tab",
    "render_runs_tab",
    "render_timings",
    "render_usage_tab",
    "run_refresh",
    "show_chart",
]
