"""Review: proposals waiting for a reviewer, and one proposal with everything needed to decide
(file, schema and data diff, lineage, impact, tests); approve or reject it with a comment. Its
author sees here why it was rejected. The core decides who may (portal/creation/review.py)."""

from __future__ import annotations

import difflib

import pandas as pd
import streamlit as st

from catalog_db.models import PROPOSAL_STATES
from portal.creation import commits, review
from portal.creation.review_detail import Review, review_of
from portal.project.statuses import plural
from portal.ui.components.badges import ago
from portal.ui.components.context import attempt, current_identity, get_service

STATE_ICON = {
    "open": ":material/construction:",
    "in_review": ":material/rate_review:",
    "published": ":material/check_circle:",
    "failed": ":material/cancel:",
    "rejected": ":material/block:",
    "expired": ":material/timer_off:",
    "stale": ":material/history:",
    "superseded": ":material/layers:",
    "discarded": ":material/delete:",
}
VERB = {"product.created": "Create", "product.edited": "Edit", "product.deprecated": "Deprecate"}

FLASH = "review_decided"  # a decision's message, shown once after the page reruns with its result

st.title("Review")
if flash := st.session_state.pop(FLASH, None):
    st.success(flash, icon=":material/gavel:")
service = attempt(get_service)
if service is None:
    st.stop()
identity = current_identity()
attempt(lambda: review.expire_due(service))  # what waited too long is closed before it is shown

chosen = st.query_params.get("proposal")
left, right = st.columns([1, 1])
state = left.selectbox(
    "State", ["any", *PROPOSAL_STATES], index=1 + PROPOSAL_STATES.index("in_review"), key="review_state"
)
mine = right.toggle("Only mine", key="review_mine", help="Proposals you wrote")
found = attempt(
    lambda: commits.proposals(
        service.sessions, state=None if state == "any" else state, author=identity.user if mine else None
    )
)
if found:
    st.dataframe(
        pd.DataFrame(
            {
                "proposal": [p.id for p in found],
                "state": [p.state for p in found],
                "change": [f"{VERB.get(p.action, p.action)} {p.product}" for p in found],
                "author": [p.author for p in found],
                "submitted": [ago(p.created_at) for p in found],
            }
        ),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(found), 400),
    )
    ids = [p.id for p in found]
    labels = {
        p.id: f"#{p.id} {VERB.get(p.action, p.action)} {p.product} by {p.author} ({p.state})" for p in found
    }
    pick = st.selectbox(
        "Proposal",
        ids,
        index=ids.index(int(chosen)) if chosen and chosen.isdigit() and int(chosen) in ids else None,
        format_func=labels.__getitem__,
        placeholder="pick a proposal",
        key="review_pick",
    )
    if pick is not None and str(pick) != chosen:
        st.query_params["proposal"] = str(pick)
        st.rerun()
elif found is not None:
    st.info(f"No proposal is {state}." if state != "any" else "No product change has been proposed yet.")

if not chosen or not chosen.isdigit():
    st.stop()
seen: Review | None = attempt(lambda: review_of(service, int(chosen), identity))
if seen is None:
    st.stop()
proposal = seen.proposal

st.subheader(
    f"{STATE_ICON.get(proposal.state, '')} Proposal {proposal.id}: {VERB.get(proposal.action, '')} {proposal.product}"
)
st.caption(
    f"by **{proposal.author}** · {ago(proposal.created_at)} · branch `{proposal.branch}` · "
    f"commit `{proposal.commit_sha[:12]}` on main `{proposal.base_sha[:12]}` · state **{proposal.state}**"
)
if proposal.state == "rejected":
    st.error(
        f"Rejected by **{proposal.decided_by}** {ago(proposal.decided_at)}: {proposal.comment}\n\n"
        "Fix it and resubmit: **Resubmit its draft** opens it in the Create form.",
        icon=":material/block:",
    )
elif proposal.state == "published":
    by = f" by **{proposal.decided_by}**" if proposal.decided_by else ""
    said = f": {proposal.comment}" if proposal.comment else ""
    st.success(f"Approved{by} {ago(proposal.decided_at)}{said}", icon=":material/check_circle:")
elif proposal.state == "expired":
    st.warning(
        f"Nobody decided within {service.settings.review_expiry_days:g} days, so it was closed and its "
        "branch removed. Resubmit it to ask again.",
        icon=":material/timer_off:",
    )
if seen.stale:
    st.warning(seen.stale, icon=":material/history:")
# A draft that was not published goes back to its author's form, as they proposed it.
if review.may_resubmit(service, identity, proposal) and st.button(
    "Resubmit its draft", key="review_resubmit", icon=":material/edit:"
):
    st.switch_page(
        "app_pages/create.py", query_params={"edit": proposal.product, "proposal": str(proposal.id)}
    )
for part, why in seen.missing.items():
    if part != "data" or seen.open:
        st.info(f"{part.capitalize()}: {why}", icon=":material/info:")

files, schema, data, lineage, tests = st.tabs(["Files", "Schema", "Data", "Lineage and impact", "Tests"])
with files:
    for change in seen.files:
        diff = difflib.unified_diff(
            (change.before or "").splitlines(),
            (change.after or "").splitlines(),
            fromfile=f"main/{change.path}" if change.before is not None else "/dev/null",
            tofile=f"proposal/{change.path}" if change.after is not None else "/dev/null",
            lineterm="",
        )
        st.markdown(f"**{change.path}** ({change.status})")
        st.code("\n".join(diff) or "(no textual change)", language="diff")
with schema:
    if seen.schema is None:
        st.caption("No schema diff: the proposal's data is not held.")
    else:
        st.dataframe(
            pd.DataFrame(
                [(c.name, c.change, c.before_type or "", c.after_type or "") for c in seen.schema.columns],
                columns=["column", "change", "published type", "proposed type"],
            ),
            hide_index=True,
            width="stretch",
            height=38 + 35 * max(1, len(seen.schema.columns)),
        )
        for sentence in seen.schema.contract or ["The contract is unchanged."]:
            st.markdown(f"- {sentence}")
with data:
    diff = seen.data
    if diff is None:
        st.caption("No data diff: the proposal's data is not held.")
    else:
        metrics = st.columns(5)
        metrics[0].metric("rows published", f"{diff.rows_before:,}")
        metrics[1].metric(
            "rows proposed", f"{diff.rows_after:,}", delta=f"{diff.rows_after - diff.rows_before:+,}"
        )
        for column, label, value in zip(
            metrics[2:],
            ("added", "removed", "changed"),
            (diff.added, diff.removed, diff.changed),
            strict=True,
        ):
            column.metric(label, "n/a" if value is None else f"{value:,}")
        key = ", ".join(diff.key) or "whole rows (no primary key)"
        st.caption(f"Matched on {key}; `{diff.after}` against `{diff.before or 'nothing published yet'}`.")
        for note in diff.notes:
            st.caption(note)
        if diff.samples:
            rows = [
                {
                    "change": s["change"],
                    **(s.get("key") or {}),
                    **{f"{k} (after)": v for k, v in (s.get("after") or {}).items()},
                }
                for s in diff.samples
            ]
            st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, width="stretch")
with lineage:
    if seen.lineage:
        st.dataframe(
            pd.DataFrame(
                [
                    (c.column, ", ".join(c.upstream) or "(computed)", c.untraceable or "")
                    for c in seen.lineage
                ],
                columns=["column", "comes from", "not traced"],
            ),
            hide_index=True,
            width="stretch",
            height=38 + 35 * len(seen.lineage),
        )
    if seen.impact:
        st.markdown(f"**Downstream:** {plural(len(seen.impact), 'node')} read `{proposal.product}`.")
        st.dataframe(
            pd.DataFrame(
                [(i.name, i.kind, i.owner or "", ", ".join(i.consumers), i.distance) for i in seen.impact],
                columns=["reads it", "kind", "owner", "consumers", "hops"],
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption(f"Nothing downstream reads `{proposal.product}` yet.")
with tests:
    if seen.tests:
        st.dataframe(
            pd.DataFrame(
                [(t.name, t.resource_type, t.status, t.message or "") for t in seen.tests],
                columns=["node", "kind", "status", "message"],
            ),
            hide_index=True,
            width="stretch",
            height=38 + 35 * len(seen.tests),
        )
    else:
        st.caption("The audit build recorded no node results.")

if not seen.open:
    st.stop()
st.divider()
comment = st.text_area(
    "Comment",
    key=f"review_comment_{proposal.id}",
    max_chars=review.MAX_COMMENT,
    placeholder="Why (required to reject)",
)
approve_col, reject_col = st.columns(2)
blocked = seen.refusal or (seen.stale if proposal.state == "in_review" and seen.stale else None)
if approve_col.button(
    "Approve and publish",
    type="primary",
    icon=":material/check:",
    disabled=proposal.state != "in_review" or blocked is not None,
    help=blocked,
    key=f"approve_{proposal.id}",
):
    with st.spinner(f"Publishing {proposal.product} …"):
        decided = attempt(lambda: review.approve(service, proposal.id, identity, comment))
    if decided is not None:
        st.session_state[FLASH] = decided.message
        st.rerun()
if reject_col.button(
    "Reject",
    icon=":material/block:",
    disabled=seen.refusal is not None,
    help=seen.refusal or "Rejecting needs a comment: the author reads it.",
    key=f"reject_{proposal.id}",
):
    with st.spinner(f"Rejecting proposal {proposal.id} …"):  # it may wait for a running build
        decided = attempt(lambda: review.reject(service, proposal.id, identity, comment))
    if decided is not None:
        st.session_state[FLASH] = decided.message
        st.rerun()
