"""The product page's Consumers tab: the dbt exposures that read the product, a small form to
register one (anyone who may read the product), and Remove for those who may (its registrant, the
product's owners, an admin). The rules and the writing are portal/creation/consumers.py's."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from portal.catalog.detail import ProductDetail
from portal.creation.consumers import (
    EXPOSURE_TYPES,
    MATURITIES,
    Consumer,
    ConsumerExists,
    ConsumerRefused,
    ConsumerRequest,
    consumers_of,
    derived_name,
    register,
    removal_refusal,
    remove,
)
from portal.service import PortalService
from portal.ui.components.context import attempt, current_identity
from portal.ui.components.grid import show_grid, wide

DONE = "consumers_done"  # a finished registration's or removal's message, shown once after the rerun


def render_consumers_tab(service: PortalService, detail: ProductDetail) -> None:
    """The tab (see the module docstring)."""
    if message := st.session_state.pop(DONE, None):
        st.success(message, icon=":material/task_alt:")
    name = detail.entry.name
    found = attempt(lambda: consumers_of(service, name))
    if found is None:
        return
    if not found:
        named = detail.entry.consumers
        said = (
            f" Its YAML names its consumers as {', '.join(named)} (`meta.consumers`), but dbt knows none "
            "of them as an exposure."
            if named
            else ""
        )
        st.info(f"No consumer has registered {name} yet.{said} A team that reads it can register below.")
    else:
        show_grid(
            pd.DataFrame(
                {
                    "exposure": [c.name for c in found],
                    "team": [c.owner_name or "" for c in found],
                    "contact": [c.owner_email or "" for c in found],
                    "type": [c.type for c in found],
                    "maturity": [c.maturity or "" for c in found],
                    "url": [c.url or "" for c in found],
                    "what for": [c.description for c in found],
                    "registered by": [c.registered_by or "by hand in the project" for c in found],
                }
            ),
            key="consumers_table",
            max_rows=50,
            column_config={**wide("what for"), "url": st.column_config.LinkColumn()},
        )
        identity = current_identity()
        removable = [c for c in found if removal_refusal(service, c, identity) is None]
        if removable:
            with st.popover("Remove a consumer", icon=":material/delete:"):
                chosen = st.selectbox("Consumer", [c.name for c in removable], key="consumer_remove_pick")
                pressed = chosen and st.button("Remove it", key="consumer_remove", type="primary")
                if pressed and attempt(lambda: remove(service, name, chosen, identity)) is not None:
                    _done(f"Removed {chosen}: its exposure is gone from the project (a commit on main).")
    _register_form(service, name)


def _register_form(service: PortalService, product: str) -> None:
    with st.form("consumer_register", clear_on_submit=False, border=True):
        st.markdown(
            f"**Register a consumer of {product}**: your team reads it; dbt will know it as an exposure."
        )
        left, right = st.columns(2)
        team = left.text_input("Consuming team", key="consumer_team", placeholder="finance-bi")
        email = right.text_input("Contact e-mail", key="consumer_email", placeholder="finance-bi@example.com")
        url = st.text_input(
            "Dashboard or job URL", key="consumer_url", placeholder="https://bi.example.com/d/42"
        )
        what_for = st.text_area("What for", key="consumer_description", height=80)
        kind, maturity, exposure = st.columns(3)
        exposure_type = kind.selectbox("Type", EXPOSURE_TYPES, key="consumer_type")
        level = maturity.selectbox("Maturity", MATURITIES, index=1, key="consumer_maturity")
        exposure_name = exposure.text_input(
            "Exposure name (optional)",
            key="consumer_name",
            help=f"A dbt identifier, unique in the project; empty: derived, e.g. {derived_name('finance-bi', product)}.",
        )
        submitted = st.form_submit_button("Register", icon=":material/add_link:", type="primary")
    if not submitted:
        return
    request = ConsumerRequest(
        owner_name=team.strip(),
        owner_email=email.strip(),
        description=what_for,
        url=url.strip(),
        type=exposure_type,
        maturity=level,
        name=exposure_name.strip() or None,
    )
    identity = current_identity()

    def registered() -> Consumer | None:
        try:
            return register(service, product, request, identity)
        except (ConsumerRefused, ConsumerExists) as refused:  # one warning per field to fix
            for problem in refused.problems:
                st.warning(problem.message, icon=":material/edit:")
            return None

    with st.spinner(f"Registering the consumer of {product} …"):  # it may wait for a running build
        consumer = attempt(registered)
    if consumer is None:
        return
    _done(
        f"Registered {consumer.name}: dbt now lists it downstream of {product} (`+exposure:{consumer.name}`)."
    )


def _done(message: str) -> None:
    st.session_state[DONE] = message
    st.rerun()
