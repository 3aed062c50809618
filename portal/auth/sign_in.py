"""Whether the UI may start as configured: nobody reaches the portal without an identity.

The embedded default's single local user signs nobody in, which is right on a loopback address
(one person, their own machine) and wrong anywhere else: there, anyone who reached the page
would be the local admin. So the UI refuses to serve a non-loopback address in `local` mode, and
refuses to start a sign-in mode that lacks what it needs, each time saying what to set. Both
the launcher (`python -m portal ui`, `make run`) and the app itself ask (streamlit run by hand).

This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

from portal.auth.access import is_loopback
from portal.auth.oidc import missing_settings
from portal.settings import Settings, env_of


def ui_start_problem(settings: Settings, address: str) -> str | None:
    """Why the UI must not serve `address` with these settings, or None."""
    if settings.auth == "local":
        if is_loopback(address):
            return None
        return (
            f"The UI would listen on {address}, but {env_of('auth')}=local signs nobody in: whoever "
            "reached it would be the local admin. Listen on 127.0.0.1, or sign people in: "
            f"{env_of('auth')}=oidc (with {env_of('oidc_issuer')}, {env_of('oidc_client_id')}, "
            f"{env_of('oidc_client_secret')} and {env_of('oidc_redirect_uri')}) or {env_of('auth')}=proxy "
            f"(with {env_of('auth_proxy_addresses')})."
        )
    if settings.auth == "oidc":
        missing = missing_settings(settings)
        if missing:
            return f"{env_of('auth')}=oidc needs {', '.join(missing)}."
        return None
    if not settings.auth_proxy_addresses:
        return (
            f"{env_of('auth')}=proxy needs {env_of('auth_proxy_addresses')}: the addresses of the sign-in "
            "proxy, whose user headers are honoured from there only."
        )
    return None


__all__ = ["ui_start_problem"]
