"""Who this browser session is, and the page a signed-out visitor sees instead of the portal.

`session_identity` asks the configured sign-in (portal/auth/): the local user (`local`), the
user the sign-in proxy vouches for (`proxy`: its headers, from its own address only), or the
user Streamlit's `st.login` signed in (`oidc`: the ID token's claims in `st.user`). `gate` runs
before any page: a visitor without an identity sees the sign-in page and nothing else.
"""

from __future__ import annotations

import streamlit as st

from portal.audit import record_event
from portal.auth.access import role_of
from portal.auth.identity import Identity
from portal.auth.oidc import identity_from_claims
from portal.auth.proxy import proxy_identity
from portal.auth.sign_in import ui_start_problem
from portal.errors import PortalError
from portal.service import PortalService
from portal.settings import Settings


def _peer() -> str:
    # Streamlit reports a loopback peer as None (and gives no context outside a browser session).
    return st.context.ip_address or "127.0.0.1"


def session_identity(settings: Settings) -> Identity | None:
    """This session's identity; None when signed out. NoRole / SignInFailed (and the proxy's
    ProxySignInFailed) when the provider vouches for someone the portal cannot let in."""
    if settings.auth == "local":
        return Identity(user=settings.local_user, kind="local")
    if settings.auth == "proxy":
        return proxy_identity(settings, client_host=_peer(), headers=st.context.headers.items())
    if not st.user.is_logged_in:
        return None
    return identity_from_claims(settings, st.user.to_dict())


def gate(service: PortalService) -> Identity:
    """The session's identity, or (stopping the script) the sign-in page or the reason it cannot be.
    A sign-in is recorded in the audit trail once per browser session, with the user's teams."""
    settings = service.settings
    problem = ui_start_problem(settings, str(st.get_option("server.address") or "127.0.0.1"))
    if problem:
        st.error(f"The portal will not serve this address as configured. {problem}", icon=":material/lock:")
        st.stop()
    try:
        identity = session_identity(settings)
    except PortalError as refused:
        st.title("Asgard data products")
        st.warning(str(refused), icon=":material/no_accounts:")
        if settings.auth == "oidc" and st.button("Sign out", icon=":material/logout:"):
            st.logout()
        st.stop()
    if identity is None:
        sign_in_page(settings)
        st.stop()
    if identity.signed_in and st.session_state.get("asgard_signed_in") != identity.user:
        detail = {"via": identity.kind, "role": role_of(identity)}  # (and the teams: audit adds them)
        record_event(service, identity, "user.signed_in", "user", identity.user, detail)
        st.session_state["asgard_signed_in"] = identity.user
    return identity


def sign_in_page(settings: Settings) -> None:
    st.title("Asgard data products")
    st.write("The data product portal of this platform: browse, preview and create governed datasets.")
    if settings.auth == "proxy":
        st.info(
            "You are not signed in: this portal signs people in through the company's sign-in proxy, and "
            "this request did not come through it. Open the portal at its public address.",
            icon=":material/login:",
        )
        return
    st.info("Sign in with your company account to continue.", icon=":material/login:")
    if st.button("Sign in", type="primary", icon=":material/login:", key="sign_in"):
        st.login()


def sign_out_control(settings: Settings, identity: Identity) -> None:
    """The sidebar's line about who is signed in, with a way out where there is one."""
    role = f" · {role_of(identity)}" if identity.signed_in else ""
    st.caption(f":material/person: Signed in as **{identity.label}**{role}")
    if settings.auth == "oidc" and st.button("Sign out", icon=":material/logout:", key="sign_out"):
        st.logout()
