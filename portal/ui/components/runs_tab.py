"""The product page's Runs tab: run history with durations, per-model timings and dbt logs, and
refreshing products with a progress bar (the Health page refreshes every due product with it).

Every number comes from portal.runs (the run trail) and portal.observability.refresh (refreshing);
this module only draws.
Widget keys carry the product's name, so two products' tabs never share state.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.auth.access import why_not
from portal.catalog.detail import ProductDetail
from portal.observability import refresh
from portal.project.statuses import UNPUBLISHED_LIFECYCLES, plural
from portal.runs import (
    NodeTiming,
    cancel_obstacle,
    cancel_run,
    may_cancel,
    registration,
    run_history,
    run_log,
    run_timings,
)
from portal.service import PortalService
from portal.ui.components.badges import ago
from portal.ui.components.charts import name_bars, runs_chart
from portal.ui.components.context import attempt, current_identity, product_detail
from portal.ui.components.grid import show_grid, wide
from portal.ui.components.observability_shared import STATUS_COLORS, show_chart
from portal.ui.components.publish import render_publish


def run_refresh(service: PortalService, names: list[str] | None) -> None:
    """Refresh `names` (or every due product when None) inside st.status, with a progress bar."""
    label = f"Refreshing {', '.join(names)} …" if names else "Refreshing every due product …"
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def show(progress: refresh.Progress) -> None:
            bar.progress(progress.fraction, text=refresh.describe_progress(progress))

        def work() -> list[refresh.RefreshResult]:
            identity = current_identity()  # the core decides who may refresh what
            if names is None:
                return refresh.refresh_due(service, identity=identity, on_progress=show).results
            return [
                refresh.refresh_one(service, n, identity=identity, wait=False, on_progress=show)
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
        done = f"Refreshed {plural(len(results), 'product')}" if results else "Nothing was due"
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
    refreshable = detail.entry.lifecycle not in UNPUBLISHED_LIFECYCLES
    # Disabled, saying why, where the core would refuse: not this user's team's, or not published.
    not_theirs = why_not(current_identity(), "run", registration(service, name))
    if refreshable:
        why = not_theirs or f"dbt build --select +{name}, then profile it."
    else:
        why = f"{name} is {detail.entry.lifecycle}: resubmit it on the Create page; only a passing audit publishes it."
    if st.button(
        "Refresh now",
        key=f"{prefix}_refresh",
        icon=":material/refresh:",
        disabled=not refreshable or not_theirs is not None,
        help=why,
    ):
        attempt(lambda: run_refresh(service, [name]))

    runs = attempt(lambda: run_history(service, key)) or []
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
    figure = runs_chart(
        frame,
        run="run",
        at="started",
        y="duration (s)",
        color="status",
        colors=STATUS_COLORS,
        hover=["selector", "by"],
        title="Run durations",
    )
    show_chart(figure, f"{prefix}_chart")
    show_grid(
        frame, key=f"{prefix}_table", column_config=wide("selector", "write-audit-publish", width="medium")
    )

    chosen = st.selectbox(
        "Run",
        [r.id for r in runs],
        format_func=lambda i: next(f"#{r.id} · {r.status} · {ago(r.started_at)}" for r in runs if r.id == i),
        key=f"{prefix}_pick",
    )
    if chosen is None:
        return
    if next(r.status for r in runs if r.id == chosen) in ("queued", "running"):
        render_cancel(service, int(chosen), name, f"{prefix}_cancel")
    record = next(r.publish for r in runs if r.id == chosen)
    if record is not None:
        render_publish(record, f"{prefix}_publish")
    every = attempt(lambda: run_timings(service, int(chosen))) or []
    # A run builds what its selector chose (the demo's build: the whole project); this tab is about
    # the product, so its own nodes: the model and the tests attached to it.
    own = {key, *(t.unique_id for t in detail.tests)}
    timings = [t for t in every if t.unique_id in own]
    if timings:
        render_timings(timings, f"{prefix}_timings")
    else:
        st.caption(f"dbt reported no result for {name} or its tests in this run.")
    if len(every) > len(timings):
        st.caption(
            f"The run also built {plural(len(every) - len(timings), 'other node')} of the project, not shown here."
        )
    text = attempt(lambda: run_log(service, int(chosen)))
    with st.expander("dbt log"):
        st.code(
            text or "No log: this run was read from run_results.json, not started by the portal.",
            language="log",
        )


def render_cancel(service: PortalService, run_id: int, product: str, key: str) -> None:
    """A Cancel button for a running run, to whoever may cancel it (its product's owner or creator,
    or an admin), whichever portal process builds it; why not, when there is no build to stop."""
    identity = current_identity()
    if not may_cancel(identity, registration(service, product)):
        return
    found = attempt(lambda: (cancel_obstacle(service, run_id),))  # a tuple: None is the failure
    if found is None:
        return
    if found[0] is not None:
        st.caption(found[0])
        return
    pressed = st.button(
        "Cancel run",
        key=key,
        icon=":material/cancel:",
        help="Stop its dbt build now: nothing is published, and the run ends as cancelled by you.",
    )
    if pressed and attempt(lambda: cancel_run(service, run_id, identity)) is not None:
        st.success(f"Run #{run_id} is being stopped; it ends within seconds (reload to see it).")


def render_timings(timings: list[NodeTiming], key: str, *, limit: int = 15) -> None:
    slowest = timings[:limit]
    frame = pd.DataFrame(
        {
            "node": [t.name for t in slowest],
            "type": [t.resource_type for t in slowest],
            "seconds": [t.execution_time for t in slowest],
            "status": [t.status for t in slowest],
        }
    )
    figure = name_bars(frame, x="seconds", y="node", color="type", title=f"Slowest {len(slowest)} nodes")
    show_chart(figure, f"{key}_chart")
    show_grid(
        pd.DataFrame(
            {
                "node": [t.name for t in timings],
                "type": [t.resource_type for t in timings],
                "status": [t.status for t in timings],
                "seconds": [t.execution_time for t in timings],
                "message": [t.message or "" for t in timings],
            }
        ),
        key=f"{key}_table",
        column_config=wide("node", "message"),
    )


__all__ = ["render_cancel", "render_runs_tab", "render_timings", "run_refresh"]
