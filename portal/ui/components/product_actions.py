"""The actions of a product, on its own page, for those who may use them: Edit, Refresh now,
Profile now, Deprecate, Discard. Each button is there only when the product's lifecycle allows
it, and disabled, saying why, when the core would refuse this user (portal/auth/access.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from portal.auth.access import why_not
from portal.catalog.detail import ProductDetail
from portal.creation.flow import EDITABLE
from portal.creation.lifecycle import Refused, deprecate, discard
from portal.observability.history import profile_product
from portal.project.statuses import LIVE_LIFECYCLES, plural
from portal.runs import registration
from portal.service import PortalService
from portal.ui.components.context import attempt, current_identity
from portal.ui.components.runs_tab import run_refresh

DISCARDABLE = ("failed", "draft", "in_review", "rejected")  # never published: nobody reads it
DONE = "product_action_done"  # a finished action's message, shown once after the page reruns
CATALOG_FLASH = "catalog_flash"  # the same, for the catalog page a discarded product's page goes to


def render_actions(service: PortalService, detail: ProductDetail) -> None:
    """The product's action bar (see the module docstring)."""
    if message := st.session_state.pop(DONE, None):
        st.success(message, icon=":material/task_alt:")
    identity = current_identity()
    name, lifecycle = detail.entry.name, detail.entry.lifecycle
    row = registration(service, name)
    portal_product = row is not None and row.origin == "portal"
    live = lifecycle in LIVE_LIFECYCLES
    # The actions shown take the first slots, left to right: no gap where one is not offered.
    slots = iter(st.columns(5))

    edit_why = (
        why_not(identity, "edit", row)
        if portal_product
        else "Written by hand in the dbt project: change it there."
    )
    if (
        portal_product
        and lifecycle in EDITABLE
        and next(slots).button(
            "Edit", key="action_edit", icon=":material/edit:", disabled=edit_why is not None, help=edit_why
        )
    ):
        st.switch_page("app_pages/create.py", query_params={"edit": name})
    refresh_why = why_not(identity, "run", row)
    if live and next(slots).button(
        "Refresh now",
        key="action_refresh",
        icon=":material/refresh:",
        disabled=refresh_why is not None,
        help=refresh_why or f"dbt build --select +{name}, then profile it.",
    ):
        attempt(lambda: run_refresh(service, [name]))
    if live and next(slots).button(
        "Profile now",
        key="action_profile",
        icon=":material/query_stats:",
        help="Measure it in the warehouse now (rows, nulls, distinct values) and record any drift.",
    ):
        outcome = attempt(lambda: profile_product(service, detail.node.unique_id))
        if outcome is not None:
            _done(f"Profiled {name}: {outcome.profile.summary}; {plural(len(outcome.drift), 'drift event')}.")
    if portal_product and lifecycle in ("published", "failed"):
        with next(slots).popover(
            "Deprecate", icon=":material/archive:", disabled=edit_why is not None, help=edit_why
        ):
            st.caption(f"{name} stays readable for its consumers, marked deprecated, while they move off it.")
            if st.button("Deprecate it", key="action_deprecate", type="primary") and run_lifecycle(
                lambda: deprecate(service, name, identity)
            ):
                _done(f"{name} is deprecated. Its table stays for its consumers.")
    if portal_product and lifecycle in DISCARDABLE:
        with next(slots).popover(
            "Discard", icon=":material/delete:", disabled=edit_why is not None, help=edit_why
        ):
            st.caption(f"{name} was never published: its files, its audit data and its proposals go.")
            if st.button("Discard it", key="action_discard", type="primary") and run_lifecycle(
                lambda: discard(service, name, identity)
            ):
                st.session_state[CATALOG_FLASH] = (
                    f"Discarded {name}: its files are removed and the name is free again."
                )
                st.switch_page("app_pages/catalog.py")


def run_lifecycle(action: Callable[[], Any]) -> bool:
    """A lifecycle change (discard, deprecate): its refusal's problems as warnings, anything else
    through attempt(); True when it was done."""

    def guarded() -> bool:
        try:
            action()
        except Refused as refusal:
            for problem in refusal.problems:
                st.warning(problem.message, icon=":material/block:")
            return False
        return True

    return bool(attempt(guarded))


def _done(message: str) -> None:
    st.session_state[DONE] = message
    st.rerun()
