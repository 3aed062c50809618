"""What every page needs: the shared service, the current identity, and error rendering.

Errors from the core already say what went wrong and what to do; this module only decides
how they look. Unexpected exceptions are logged with their traceback on the server and
shown to the user as one sentence, never as a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from portal.auth.identity import Identity
from portal.catalog import access_requests
from portal.catalog.detail import ProductDetail
from portal.catalog.detail import product_detail as find_product
from portal.errors import Kind, PortalError
from portal.project.artifacts import ArtifactError
from portal.service import PortalService
from portal.settings import SettingError, Settings
from portal.ui.components.sign_in import session_identity
from portal.warehouse import WarehouseUnavailable

log = logging.getLogger("portal.ui")
T = TypeVar("T")


@st.cache_resource(show_spinner="Opening the catalog …")
def get_service() -> PortalService:
    service = PortalService(Settings.from_env())
    access_requests.resume(service)  # this process, too, closes tables when their grants end
    return service


def current_identity() -> Identity:
    """This session's identity (the app's `gate` has let only sessions with one through)."""
    identity = session_identity(get_service().settings)
    if identity is None:
        st.stop()  # signed out meanwhile (a page run on its own): show nothing
    return identity


# How each kind of refusal looks: the caller's to fix (a warning) or the platform's (an error).
_STYLE_OF_KIND: dict[Kind, tuple[Callable[..., object], str]] = {
    Kind.NOT_FOUND: (st.warning, ":material/search_off:"),
    Kind.INVALID: (st.warning, ":material/edit:"),
    Kind.CONFLICT: (st.warning, ":material/block:"),
    Kind.FORBIDDEN: (st.warning, ":material/lock:"),
    Kind.UNAUTHENTICATED: (st.warning, ":material/login:"),
    Kind.BUSY: (st.info, ":material/hourglass_top:"),
    Kind.TIMEOUT: (st.error, ":material/timer_off:"),
    Kind.UNAVAILABLE: (st.error, ":material/cloud_off:"),
    Kind.UPSTREAM: (st.error, ":material/error:"),
}
# The parts whose failure has a picture of its own.
_ICON_OF_HEADLINE = {
    ArtifactError.headline: ":material/folder_off:",
    WarehouseUnavailable.headline: ":material/database:",
    SettingError.headline: ":material/settings:",
}


def show_error(exc: PortalError) -> None:
    """Render a refusal: its headline (if it has one) in bold, then its message."""
    render, icon = _STYLE_OF_KIND[exc.kind]
    icon = _ICON_OF_HEADLINE.get(exc.headline, icon)
    render(f"**{exc.headline}** {exc}" if exc.headline else str(exc), icon=icon)


def attempt(action: Callable[[], T]) -> T | None:
    """Run `action`; on a known failure show its actionable message and return None."""
    try:
        return action()
    except PortalError as exc:
        show_error(exc)
    except Exception as exc:  # the UI must never show a traceback
        log.exception("unexpected error in the portal UI")
        st.error(
            f"Something unexpected went wrong ({type(exc).__name__}: {exc}). The details are in the portal's "
            "log; please report it.",
            icon=":material/bug_report:",
        )
    return None


def product_detail(service: PortalService, product: str | ProductDetail) -> ProductDetail | None:
    """A component's product: the detail a page already has (the product page passes it to all
    its tabs, saving each a lookup), or found by name or unique id, with a message if unknown."""
    if isinstance(product, ProductDetail):
        return product
    return attempt(lambda: find_product(service, product))
