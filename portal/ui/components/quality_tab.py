"""The product page's Quality tab: freshness, tests, profile charts and drift events.

Every number comes from portal.observability (freshness, history, drift); this module only draws.
Widget keys carry the product's name, so two products' tabs never share state.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from portal.catalog.detail import ProductDetail, TestResult
from portal.observability.drift import DriftRecord, acknowledge_drift, drift_events
from portal.observability.freshness import describe_age, frequency_period, freshness, freshness_history
from portal.observability.history import profile_history, profile_product, test_history
from portal.observability.profile import OTHER, ColumnProfile, Profile
from portal.project.statuses import PROFILE_STATUS_TEXT, plural
from portal.service import PortalService
from portal.ui.components.badges import ago
from portal.ui.components.charts import line_over_time, runs_chart
from portal.ui.components.context import attempt, current_identity, product_detail
from portal.ui.components.grid import show_grid, wide
from portal.ui.components.observability_shared import freshness_label, render_drift_table, show_chart

MAX_NULL_RATE_LINES = 12  # beyond that a line chart is noise; the table has every column


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
        outcome = attempt(lambda: profile_product(service, key))
        if outcome is not None:
            found = len(outcome.drift)
            st.toast(f"Profiled {name}: {outcome.profile.summary}; {plural(found, 'drift event')}.")

    fresh = attempt(lambda: freshness(service, key))
    history = attempt(lambda: profile_history(service, key)) or []
    drift = attempt(lambda: drift_events(service, key)) or []
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
            f"Latest profile ({ago(latest.measured_at)}): **{PROFILE_STATUS_TEXT[latest.status]}**. "
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
            show_grid(
                pd.DataFrame(
                    {
                        "source": [s.label for s in fresh.sources],
                        "freshness": [s.state for s in fresh.sources],
                        "age": [describe_age(s.age) for s in fresh.sources],
                        "warn after": [
                            describe_age(s.warn_after) if s.warn_after else "" for s in fresh.sources
                        ],
                        "error after": [
                            describe_age(s.error_after) if s.error_after else "" for s in fresh.sources
                        ],
                        "problem": [s.error or "" for s in fresh.sources],
                    }
                ),
                key=f"{prefix}_sources",
                column_config=wide("source", "problem"),
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
        show_grid(
            pd.DataFrame(
                {
                    "status": [t.status for t in failing],
                    "test": [t.name for t in failing],
                    "column": [t.column_name or "" for t in failing],
                    "failures": [t.failures for t in failing],
                    "message": [t.message or "" for t in failing],
                }
            ),
            key=f"{prefix}_failing_tests",
            column_config=wide("test", "message"),
        )
    runs = attempt(lambda: test_history(service, key)) or []
    if len(runs) > 1:
        outcomes = {
            "pass": [r.passed for r in runs],
            "warn": [r.warned for r in runs],
            "fail": [r.failed + r.errored for r in runs],
        }
        # Every run has a row per outcome it ever had, zeros too: a line across runs needs each run.
        frame = pd.DataFrame(
            [
                {"run": r.run_id, "at": r.at, "outcome": outcome, "tests": counts[i]}
                for outcome, counts in outcomes.items()
                if any(counts)
                for i, r in enumerate(runs)
            ]
        )
        figure = runs_chart(
            frame,
            run="run",
            at="at",
            y="tests",
            color="outcome",
            colors={"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828"},
            title="Test results per run",
            many="lines",
        )
        show_chart(figure, f"{prefix}_tests_chart")


def _row_count_chart(profiles: list[Profile], key: str) -> None:
    frame = pd.DataFrame(
        {"measured": [p.measured_at for p in profiles], "rows": [p.row_count for p in profiles]}
    )
    show_chart(line_over_time(frame, x="measured", y="rows", title="Row count"), key)


def _null_rate_chart(profiles: list[Profile], key: str) -> None:
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
    figure = line_over_time(
        frame[frame["column"].isin(chosen)],
        x="measured",
        y="null rate",
        color="column",
        title="Null rate (columns with nulls)",
        rate=True,
    )
    show_chart(figure, key)


def _freshness_chart(service: PortalService, key: str, frequency: str | None, chart_key: str) -> None:
    points = attempt(lambda: freshness_history(service, key)) or []
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
    figure = line_over_time(frame, x="at", y="age (hours)", title="Age of the data", hover=["state"])
    period = frequency_period(frequency)
    if period is not None:
        hours = period / timedelta(hours=1)
        stale = hours * service.settings.freshness_stale_factor
        figure.add_hline(
            y=hours, line_dash="dash", line_color="orange", annotation_text=f"late ({frequency})"
        )
        figure.add_hline(y=stale, line_dash="dot", line_color="red", annotation_text="stale")
    show_chart(figure, chart_key)


def _columns_table(profile: Profile, key: str) -> None:
    def top_values(column: ColumnProfile) -> str:
        if not column.values:
            return ""
        return ", ".join(f"{v if v is not None else 'null'} ({n:,})" for v, n in column.values[:5])

    columns = profile.columns
    show_grid(
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
                "note": ["type not profiled beyond nulls" if c.kind == OTHER else "" for c in columns],
            }
        ),
        key=key,
        max_rows=60,
        column_config={
            "null rate": st.column_config.NumberColumn(format="percent"),
            **wide("column", "top values", width="medium"),
        },
    )


def _drift_section(service: PortalService, drift: list[DriftRecord], prefix: str) -> None:
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
        acknowledged = attempt(lambda: acknowledge_drift(service, int(chosen), current_identity()))
        if acknowledged is not None:
            st.rerun()


__all__ = ["render_quality_tab"]
