"""The product page's Access tab: ask for access (a consumer), decide on requests (its owners),
and see every request and decision (portal/catalog/access_requests.py does the deciding)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.catalog import access_requests
from portal.catalog.access_requests import Access
from portal.service import PortalService
from portal.ui.components.badges import ago
from portal.ui.components.context import attempt, current_identity
from portal.ui.components.grid import show_grid, wide

DONE = "access_done"  # a decision's message, shown once after the rerun


def render_access_tab(service: PortalService, name: str) -> None:
    if message := st.session_state.pop(DONE, None):
        st.success(message, icon=":material/task_alt:")
    identity = current_identity()
    restricted = bool(attempt(lambda: access_requests.is_restricted(service, name)))
    enforced = restricted and bool(service.settings.trino_access_rules_file)
    if enforced:
        st.caption("Restricted: Trino lets only its owning team and consumers with a live grant read it.")
    elif restricted:
        st.caption("Restricted in its YAML; this warehouse does not enforce grants (only Trino's rules do).")
    else:
        st.caption("Open to every reader; a request records who uses it and why, and its owners decide.")
    owners = attempt(lambda: access_requests.may_decide(service, identity, name))
    if owners is None:
        return
    found = attempt(
        lambda: access_requests.requests(service, product=name, requester=None if owners else identity.user)
    )
    if found is None:
        return
    if not owners:
        _ask(service, identity, name)
    else:
        st.caption(
            f"You decide on {name}'s requests (its owning team, or an admin); its consumers ask here, "
            "and their requests wait for you below."
        )
    for request in (r for r in found if r.state == "pending" and owners):
        _decide(service, identity, request)
    _mine = [r for r in found if r.requester == identity.user and r.state in ("pending", "approved")]
    for request in _mine:
        left, right = st.columns([4, 1])
        left.info(
            f"Your request {request.id}: {request.shown_state}" + _until(request), icon=":material/key:"
        )
        if right.button("Withdraw", key=f"access_end_{request.id}", icon=":material/undo:"):
            ended = attempt(lambda request=request: access_requests.end(service, identity, request.id))
            if ended is not None:
                st.session_state[DONE] = f"Withdrew request {request.id}."
                st.rerun()
    if found:
        show_grid(_table(found), key="access_requests", column_config=wide("reason", "comment"))
    else:
        st.caption("No access request yet.")


def _until(request: Access) -> str:
    return f", until {request.expires_at:%Y-%m-%d %H:%M} UTC" if request.live and request.expires_at else ""


def _ask(service: PortalService, identity, name: str) -> None:
    most = service.settings.access_max_days
    with st.form("access_ask", clear_on_submit=True, border=True):
        st.markdown("**Ask for access**")
        reason = st.text_area(
            "What for", key="access_reason", placeholder="the dashboard or analysis, and why"
        )
        days = st.number_input(f"Days (at most {most})", 1, most, min(30, most), key="access_days")
        if st.form_submit_button("Ask", icon=":material/key:"):
            asked = attempt(
                lambda: access_requests.request_access(service, identity, name, reason=reason, days=int(days))
            )
            if asked is not None:
                st.session_state[DONE] = (
                    f"Asked for {asked.days} days of {name}; its owners decide (request {asked.id})."
                )
                st.rerun()


def _decide(service: PortalService, identity, request: Access) -> None:
    with st.container(border=True):
        st.markdown(f"**{request.requester}** asks for {request.days} days, {ago(request.created_at)}:")
        st.text(request.reason)  # their words as written: no Markdown from a requester
        comment = st.text_input(
            "Comment", key=f"access_comment_{request.id}", placeholder="required to refuse"
        )
        approve, refuse, _ = st.columns([1, 1, 3])
        for column, label, yes in ((approve, "Approve", True), (refuse, "Refuse", False)):
            if column.button(label, key=f"access_{label.lower()}_{request.id}"):
                decided = attempt(
                    lambda yes=yes: access_requests.decide(
                        service, identity, request.id, approve=yes, comment=comment
                    )
                )
                if decided is not None:
                    st.session_state[DONE] = (
                        f"{decided.shown_state.capitalize()} request {request.id} of {request.requester}."
                    )
                    st.rerun()


def _table(found: list[Access]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request": [r.id for r in found],
            "requester": [r.requester for r in found],
            "state": [r.shown_state for r in found],
            "days": [r.days for r in found],
            "reason": [r.reason for r in found],
            "decided by": [r.decided_by or "—" for r in found],
            "comment": [r.comment or "—" for r in found],
            "until": [f"{r.expires_at:%Y-%m-%d %H:%M}" if r.expires_at else "—" for r in found],
        }
    )
