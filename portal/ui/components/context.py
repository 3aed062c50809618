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

from portal.artifacts import ArtifactError
from portal.products import Identity, NotFound, PortalService, ProductDetail
from portal.settings import SettingError, Settings
from portal.warehouse import BadRequest, WarehouseError, WarehouseUnavailable

log = logging.getLogger("portal.ui")
T = TypeVar("T")


@st.cache_resource(show_spinner="Opening the catalog …")
def get_service() -> PortalService:
    return PortalService(Settings.from_env())


def current_identity() -> Identity:
    return Identity(user=get_service().settings.local_user, kind="local")


def attempt(action: Callable[[], T]) -> T | None:
    """Run `action`; on a known failure show its actionable message and return None."""
    try:
        return action()
    except ArtifactError as exc:
        st.error(f"**The dbt project's artifacts cannot be read.** {exc}", icon=":material/folder_off:")
    except WarehouseUnavailable as exc:
        st.error(f"**The warehouse is not available.** {exc}", icon=":material/database:")
    except BadRequest as exc:
        st.warning(str(exc), icon=":material/edit:")
    except WarehouseError as exc:
        st.error(str(exc), icon=":material/error:")
    except NotFound as exc:
        st.warning(str(exc), icon=":material/search_off:")
    except SettingError as exc:
        st.error(f"**A setting is wrong.** {exc}", icon=":material/settings:")
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
    return attempt(lambda: service.product(product))
