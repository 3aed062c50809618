"""The portal behind a sign-in proxy, in a real Chromium: `python -m portal ui` in proxy mode,
the browser sending the proxy's user headers. From the proxy's address the user is signed in
with their team and role; from any other address the same headers are ignored and only the
sign-in page shows."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog_db.models import AuditEvent
from tests.browser import started_portal

pytestmark = pytest.mark.e2e
SAM = {"X-Auth-Request-Email": "sam@example.com", "X-Auth-Request-Groups": "team-sales,portal-creators"}
VERA = {"X-Auth-Request-Email": "vera@example.com", "X-Auth-Request-Groups": "team-readers"}


def portal(demo_env: dict[str, str], log: Path, proxy_addresses: str) -> AbstractContextManager[str]:
    """The portal in proxy mode, the proxy being at `proxy_addresses`."""
    return started_portal(
        {
            **demo_env,
            "PORTAL_AUTH": "proxy",
            "PORTAL_REVIEW": "off",
            "PORTAL_AUTH_PROXY_ADDRESSES": proxy_addresses,
            "PORTAL_ROLE_MAP": "portal-creators=creator,team-*=viewer",
        },
        log,
    )


def test_the_proxy_signs_people_in(demo_env: dict[str, str], browser, tmp_path: Path) -> None:
    with portal(demo_env, tmp_path / "proxied.log", "127.0.0.1") as url:
        page = browser.new_page(extra_http_headers=SAM)
        page.goto(url, wait_until="networkidle")
        page.get_by_text("Data product catalog").wait_for(timeout=60_000)
        page.get_by_text("sam@example.com (team-sales, portal-creators)").wait_for(timeout=30_000)
        assert page.get_by_role("link", name="Create").count() == 1  # a creator
        page.close()
        engine = sa.create_engine(demo_env["PORTAL_CATALOG_DB_URL"])
        with engine.connect() as connection:
            signed_in = (
                connection.execute(
                    sa.select(AuditEvent.detail).where(
                        AuditEvent.action == "user.signed_in", AuditEvent.actor == "sam@example.com"
                    )
                )
                .scalars()
                .all()
            )
        engine.dispose()
        assert signed_in and signed_in[-1] == {
            "via": "proxy",
            "teams": ["team-sales", "portal-creators"],
            "role": "creator",
        }
        viewer = browser.new_page(extra_http_headers=VERA)
        viewer.goto(url, wait_until="networkidle")
        viewer.get_by_text("Data product catalog").wait_for(timeout=60_000)
        viewer.get_by_text("vera@example.com (team-readers)").wait_for(timeout=30_000)
        assert viewer.get_by_role("link", name="Create").count() == 0  # viewers see no Create
        viewer.close()


def test_headers_from_anyone_but_the_proxy_are_ignored(
    demo_env: dict[str, str],
    browser,
    tmp_path: Path,
) -> None:
    # The proxy is elsewhere: this browser, on 127.0.0.1, is not it, whatever headers it sends.
    with portal(demo_env, tmp_path / "direct.log", "10.255.0.1") as url:
        page = browser.new_page(extra_http_headers=SAM)
        page.goto(url, wait_until="networkidle")
        page.get_by_text("You are not signed in").wait_for(timeout=60_000)
        assert page.get_by_text("Data product catalog").count() == 0
        assert page.get_by_text("sam@example.com").count() == 0
        page.close()
