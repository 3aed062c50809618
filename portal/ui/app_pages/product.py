"""Product: everything about one data product (or any model), and a preview of its data."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.catalog import access_requests
from portal.catalog.detail import product_detail
from portal.contracts.odcs import MEDIA_TYPE, product_contract
from portal.creation import commits, review
from portal.project.versions import versions_text
from portal.ui.components.access_tab import render_access_tab
from portal.ui.components.badges import ago, health_label, tests_label
from portal.ui.components.consumers import render_consumers_tab
from portal.ui.components.context import attempt, current_identity, get_service
from portal.ui.components.grid import show_grid, wide
from portal.ui.components.history_tab import render_history_tab
from portal.ui.components.lineage_view import render_lineage
from portal.ui.components.markdown import escape, show_description
from portal.ui.components.preview import render_preview
from portal.ui.components.product_actions import render_actions
from portal.ui.components.quality_tab import render_quality_tab
from portal.ui.components.runs_tab import render_runs_tab
from portal.ui.components.usage_tab import render_usage_tab

service = attempt(get_service)
if service is None or attempt(service.artifacts) is None:
    st.stop()

TABS = [
    "Overview",
    "Columns",
    "SQL",
    "Tests",
    "Lineage",
    "Consumers",
    "Quality",
    "Runs",
    "Usage",
    "History",
    "Preview",
    "Access",
]
key = st.query_params.get("id")
if not key:
    st.title("Product")
    names = [e.name for e in service.entries()]
    key = st.selectbox(
        "Data product", names, index=None, key="product_pick", placeholder="pick a data product"
    )
    if not key:
        st.stop()
    st.query_params["id"] = key
    st.rerun()

detail = attempt(lambda: product_detail(service, key))
if detail is None:
    st.page_link("app_pages/catalog.py", label="Back to the catalog", icon=":material/arrow_back:")
    st.stop()

entry, node, health = detail.entry, detail.node, detail.health.health
st.title(entry.name)
st.caption(
    f"{entry.data_product_type or node.resource_type} · `{node.unique_id}` · {health_label(health)} · {entry.lifecycle}"
)
if entry.versions:  # one page per model, this page's version in bold; relations on hover
    named = [escape(versions_text((v,))) for v in entry.versions]
    st.caption(
        "dbt versions: "
        + ", ".join(
            f"**{n}**" if v.unique_id == node.unique_id else n
            for v, n in zip(entry.versions, named, strict=True)
        )
        + " · an older version opens by its unique id",
        help="\n\n".join(f"{v.label}: {v.relation_name or v.unique_id}" for v in entry.versions),
    )
render_actions(service, detail)
latest = attempt(lambda: commits.proposals(service.sessions, product=entry.name, limit=1))
if latest and latest[0].state in ("in_review", "stale", "rejected", "expired"):
    proposal = latest[0]
    said = {
        "in_review": "waits for a reviewer; consumers read the published version meanwhile"
        if entry.lifecycle == "published"
        else "waits for a reviewer",
        "stale": "is stale: main changed what it was built on; resubmit it",
        "rejected": f"was rejected by {proposal.decided_by}: {proposal.comment}",
        "expired": "expired: nobody decided in time; resubmit it",
    }[proposal.state]
    left, right = st.columns([4, 1])
    left.info(f"Proposal {proposal.id} by {proposal.author} {said}", icon=":material/rate_review:")
    if right.button("Open the review", key="product_review", icon=":material/rate_review:"):
        st.switch_page("app_pages/review.py", query_params={"proposal": str(proposal.id)})
    # Its draft is on its branch, not main: Edit would start from the published version.
    if review.may_resubmit(service, current_identity(), proposal) and right.button(
        "Resubmit its draft", key="product_resubmit", icon=":material/edit:"
    ):
        st.switch_page("app_pages/create.py", query_params={"edit": entry.name, "proposal": str(proposal.id)})

(
    overview,
    columns_tab,
    sql_tab,
    tests_tab,
    lineage_tab,
    consumers_tab,
    quality_tab,
    runs_tab,
    usage_tab,
    history_tab,
    preview_tab,
    access_tab,
) = st.tabs(
    TABS,
    # Bound to ?tab= (a link opens, and shares, a tab). The costly tabs below run only when open,
    # so a page view reads nothing from the warehouse that nobody asked for (a preview counts as
    # a read in Usage).
    key="tab",
    bind="query-params",
)

with overview:
    show_description(node.description)
    if health.problems:
        st.warning("Problems: " + "; ".join(health.problems), icon=":material/report:")
    facts = st.columns(4)
    facts[0].metric("Last build", health.build_status or "never")
    facts[1].metric("Tests", tests_label(health))
    facts[2].metric("Refreshed", ago(detail.health.last_refreshed))
    rows = entry.row_count
    facts[3].metric("Rows", f"{rows:,}" if rows is not None else "unknown")
    metadata = {
        "Owner": entry.owner,
        "Group": f"{node.group} (owner: {detail.group_owner})" if node.group else None,
        "Consumers": ", ".join(entry.consumers) or None,
        "Update frequency": entry.update_frequency,
        "Lifecycle": entry.lifecycle,
        "Freshness": detail.health.freshness.reason,
        "dbt access": node.access,  # who may ref() it in dbt, not who may read it
        "Read access": (
            "restricted: ask its owners on the Access tab"
            if access_requests.is_restricted(service, entry.unique_id)
            else "open to every reader"
        ),
        "Contract enforced": "yes" if node.contract_enforced else "no",
        "Materialization": node.materialized,
        "Relation": node.relation_name,
        "dbt tags (tag:)": ", ".join(entry.tags) or None,
        "Labels (meta.tags)": ", ".join(entry.labels) or None,
        "File": node.original_file_path,
    }
    st.table(pd.DataFrame({"": list(metadata), "value": [v or "—" for v in metadata.values()]}).set_index(""))
    contract = attempt(lambda: product_contract(service, entry.unique_id, detail))
    if contract is not None:
        contract_name, contract_text = contract
        st.download_button(
            "Data contract (ODCS YAML)",
            contract_text,
            file_name=contract_name,
            mime=MEDIA_TYPE,
            key="product_contract",
            icon=":material/contract:",
            on_click="ignore",
            help="Columns, key, quality rules, owner, SLA and server as an Open Data Contract Standard v3 "
            "file: `datacontract lint` and `datacontract test` take it as it is.",
        )

with columns_tab:
    if not detail.columns:
        st.info("This model declares no columns and the catalog has none yet: run `dbt docs generate`.")
    else:
        show_grid(
            pd.DataFrame(
                {
                    "column": [c.name for c in detail.columns],
                    # The warehouse's name for the type; the YAML's only where it says otherwise.
                    "type": [
                        f"{c.type or 'unknown'} (declared: {c.declared_type})"
                        if c.declared_type
                        else c.type or "unknown"
                        for c in detail.columns
                    ],
                    "description": [c.description for c in detail.columns],
                    "inherited": [
                        f"from {c.description_from}" if c.inherited else "" for c in detail.columns
                    ],
                    "tests": [", ".join(c.tests) for c in detail.columns],
                }
            ),
            key="columns_table",
            max_rows=60,  # the columns are the page: show them all but for very wide models
            column_config={
                **wide("description"),
                **wide("column", "tests", width="medium"),
                "inherited": st.column_config.TextColumn(
                    help="No description of its own: this is the description of the upstream column it "
                    "passes through unchanged (selected as is or renamed)."
                ),
            },
        )
        described = [c for c in detail.columns if c.description]
        if described:
            # A grid shows text as typed; descriptions are Markdown (code, lists, tables, links).
            with st.expander("Descriptions, formatted"):
                for column in described:
                    origin = f" · _from `{column.description_from}`_" if column.inherited else ""
                    st.markdown(f"**`{column.name}`**{origin}")
                    show_description(column.description)

with sql_tab:
    raw, compiled = st.tabs(["Raw (dbt)", "Compiled"])
    raw.code(detail.raw_sql or "-- no SQL in the manifest", language="sql")
    compiled.code(
        detail.compiled_sql or "-- not compiled yet: run `dbt compile` or `dbt build`", language="sql"
    )

with tests_tab:
    if not detail.tests:
        st.info("No tests are attached to this model.")
    else:
        show_grid(
            pd.DataFrame(
                {
                    "status": [t.status or "not run" for t in detail.tests],
                    "test": [t.name for t in detail.tests],
                    "column": [t.column_name or "" for t in detail.tests],
                    "failures": [t.failures for t in detail.tests],
                    "ran": [ago(t.executed_at) if t.executed_at else "never" for t in detail.tests],
                    "message": [t.message or "" for t in detail.tests],
                }
            ),
            key="tests_table",
            max_rows=40,
            column_config=wide("test", "message"),
        )

if lineage_tab.open:
    with lineage_tab:
        render_lineage(service, prefix="product_lineage", focus=node.unique_id)

if consumers_tab.open:
    with consumers_tab:
        if entry.is_data_product:
            render_consumers_tab(service, detail)
        else:
            st.info("Consumers are registered on data products; this is a plain dbt model.")

if quality_tab.open:
    with quality_tab:
        render_quality_tab(service, detail)

if runs_tab.open:
    with runs_tab:
        render_runs_tab(service, detail)

if usage_tab.open:
    with usage_tab:
        render_usage_tab(service, detail)

if history_tab.open:
    with history_tab:
        render_history_tab(service, detail)

if preview_tab.open:
    with preview_tab:
        render_preview(service, detail, prefix="product_preview")

if access_tab.open:
    with access_tab:
        render_access_tab(service, entry.name)
