"""Signing in through Keycloak's own login page, in a real Chromium, to a portal started with
`python -m portal ui` in OpenID Connect mode: the creator sees their name and team and the Create
page; a product of their team is one the other team's creator may not edit (the page says why);
the viewer sees no Create; signing out ends the session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sso_stack import CLIENT, CLIENT_SECRET, ISSUER, PASSWORDS

from portal.auth.identity import Principal
from portal.creation import flow as creation
from portal.creation.spec import ProductSpec
from portal.service import PortalService
from portal.settings import Settings
from tests.browser import started_portal
from tests.conftest import copy_demo

pytestmark = pytest.mark.sso
ROLE_MAP = "analytics-admins=admin,portal-creators=creator,*=viewer"


@pytest.fixture(scope="module")
def portal(
    demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    base = tmp_path_factory.mktemp("sso-ui")
    environ = copy_demo(demo_env, base / "portal")
    log = base / "streamlit.log"
    # The redirect URI names the portal's port, so it is chosen here rather than by started_portal.
    settings_env = {
        **environ,
        "PORTAL_AUTH": "oidc",
        "PORTAL_REVIEW": "off",
        "PORTAL_OIDC_ISSUER": ISSUER,
        "PORTAL_OIDC_CLIENT_ID": CLIENT,
        "PORTAL_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "PORTAL_ROLE_MAP": ROLE_MAP,
    }
    with started_portal(settings_env, log, redirect_path="/oauth2callback") as url:
        yield url, environ


def sign_in(browser: Any, url: str, user: str) -> Any:
    """A fresh browser context (no cookies), signed in as `user` through Keycloak's login page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url, wait_until="networkidle")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{ISSUER}/**", timeout=60_000)  # Keycloak's own page, not the portal's
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("#kc-login")
    page.wait_for_url(f"{url}/**", timeout=60_000)
    page.get_by_text("Data product catalog").wait_for(timeout=60_000)
    return page


def test_sign_in_teams_and_sign_out(portal: tuple[str, dict[str, str]], browser: Any) -> None:
    url, environ = portal
    # a product of team-sales, created by sam through the core (as the API or the form would)
    sam_identity = Principal(
        "sam@example.com", kind="oidc", groups=("team-sales", "portal-creators"), role="creator"
    )
    spec = ProductSpec(
        name="dp_sales_accounts",
        description="Customers of the sales team.",
        data_product_type="CUSTOM",
        owner="team-sales",
        sql="select customer_id, count(*) as orders from silver.orders group by 1",
        primary_key=("customer_id",),
    )
    service = PortalService(Settings.from_env({**environ, "PORTAL_ROLE_MAP": ROLE_MAP}))
    assert creation.create(service, spec, sam_identity).status == "published"

    sam = sign_in(browser, url, "sam")
    sam.get_by_text(re.compile(r"sam@example\.com \(.*team-sales.*\) · creator")).wait_for(timeout=30_000)
    assert sam.get_by_role("link", name="Create").count() == 1
    sam.get_by_role("button", name="Sign out").click()
    sam.get_by_role("button", name="Sign in").wait_for(timeout=60_000)  # back to the sign-in page
    assert sam.get_by_text("Data product catalog").count() == 0
    sam.goto(url, wait_until="networkidle")  # and a reload does not bring the session back
    sam.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    sam.context.close()

    maria = sign_in(browser, url, "maria")
    maria.get_by_text(re.compile(r"maria@example\.com \(.*team-marketing.*\)")).wait_for(timeout=30_000)
    maria.goto(f"{url}/create?edit=dp_sales_accounts", wait_until="networkidle")
    maria.get_by_text("only products of their teams").wait_for(timeout=60_000)  # why she may not
    assert maria.get_by_role("button", name="Save changes").is_disabled()
    maria.context.close()

    vera = sign_in(browser, url, "vera")
    vera.get_by_text("vera@example.com").first.wait_for(timeout=30_000)
    assert vera.get_by_role("link", name="Create").count() == 0  # viewers see no Create
    vera.context.close()
