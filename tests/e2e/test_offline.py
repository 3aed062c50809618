"""The portal works offline: every page of the UI, each tab of a product's page and the API's /docs
render in a real Chromium without the browser asking any host but 127.0.0.1 for anything. The
`browser` fixture's guard (tests/browser.py) records and aborts each off-host request and fails
the test naming it; these tests visit every page so that no page escapes it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest

from portal.api import create_app
from portal.settings import ROOT, Settings
from tests.api.conftest import serving
from tests.browser import is_off_host, started_portal

pytestmark = pytest.mark.e2e
PRODUCT = "dp_customer_360"
PRODUCT_TABS = [
    "Overview",
    "Columns",
    "SQL",
    "Tests",
    "Lineage",
    "Quality",
    "Runs",
    "Usage",
    "History",
    "Preview",
]
# Every page of portal/ui/app.py's PAGES (by url_path; the catalog is the default, at /) and the
# heading it shows (a test holds this list to app.py's).
PAGES = {
    "catalog": ("/", "Data product catalog"),
    "product": (f"/product?id={PRODUCT}", PRODUCT),
    "preview": (f"/preview?id={PRODUCT}", "Preview"),
    "workspace": ("/workspace", "SQL workspace"),
    "create": ("/create", "Create a data product"),
    "review": ("/review", "Review"),
    "lineage": ("/lineage", "Lineage"),
    "health": ("/health", "Health"),
}


@pytest.fixture(scope="module")
def portal_url(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with started_portal(demo_env, tmp_path_factory.mktemp("offline") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def api_url(demo_env: dict[str, str]) -> Iterator[str]:
    # On 127.0.0.1, as `python -m portal api` binds by default: this browser is the local user.
    with serving(create_app(Settings.from_env(demo_env), host="127.0.0.1")) as url:
        yield url


def open_page(browser, url: str, heading: str | re.Pattern[str]):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="networkidle")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")  # what the page asks for once drawn: icons, fonts, charts
    return page


def assert_local_icons(page) -> None:
    """The page's icons (the favicon a browser shows in its tab), each a local or in-page URL."""
    icons = page.eval_on_selector_all("link[rel~='icon']", "links => links.map(link => link.href)")
    assert icons, "the page names no icon"
    assert not [icon for icon in icons if is_off_host(icon)], icons


def url_paths_of_the_app() -> set[str]:
    """The url_path of every st.Page in portal/ui/app.py."""
    tree = ast.parse((ROOT / "portal" / "ui" / "app.py").read_text())
    return {
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page"
        for keyword in node.keywords
        if keyword.arg == "url_path" and isinstance(keyword.value, ast.Constant)
    }


def test_every_page_of_the_app_is_visited() -> None:
    assert url_paths_of_the_app() == set(PAGES), "add the new page (and its heading) to PAGES"


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_from_this_host_only(portal_url: str, browser, name: str) -> None:
    path, heading = PAGES[name]
    page = open_page(browser, portal_url + path, heading)
    # The favicon, set from page_config once the app runs: ours, not one from a font CDN.
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"link[rel~='icon']\")].some(l => l.href.startsWith('data:'))",
        timeout=30_000,
    )
    assert_local_icons(page)
    # The navigation's Material icons are drawn from Streamlit's own copy of the font.
    page.locator("[data-testid='stSidebarNav']").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => [...document.fonts].some(f => f.family.includes('Material Symbols') && f.status === 'loaded')",
        timeout=30_000,
    )


@pytest.mark.parametrize("tab", PRODUCT_TABS)
def test_every_tab_of_a_product_renders_from_this_host_only(portal_url: str, browser, tab: str) -> None:
    page = open_page(browser, f"{portal_url}/product?id={PRODUCT}&tab={tab}", PRODUCT)
    page.get_by_role("tab", name=tab, selected=True).wait_for(timeout=30_000)
    page.locator("[data-testid='stSpinner']").first.wait_for(state="detached", timeout=60_000)
    page.wait_for_load_state("networkidle")


def test_the_api_docs_render_from_this_host_only(api_url: str, browser) -> None:
    page = open_page(browser, f"{api_url}/docs", re.compile("Asgard data product portal"))
    # the operations, from /openapi.json (Swagger UI writes the paths with zero-width spaces)
    page.locator("[data-path='/api/v1/version']").first.wait_for(timeout=30_000)
    assert_local_icons(page)


def test_the_guard_records_and_aborts_off_host_requests(browser) -> None:
    """The guard itself: a fetched image, a web socket and a load a Content-Security-Policy refused."""
    page = browser.new_page()
    # A page "served" from 127.0.0.1 by the route itself: no server, and nothing leaves the machine.
    html = (
        '<img src="https://fonts.gstatic.com/icon.svg">'
        '<iframe src="http://127.0.0.1:9/strict"></iframe>'
        '<script>new WebSocket("wss://socket.example/")</script>'
    )
    strict = '<img src="https://cdn.example/refused.png">'
    page.route(
        "http://127.0.0.1:9/",
        lambda route: route.fulfill(body=html, content_type="text/html"),
    )
    page.route(
        "http://127.0.0.1:9/strict",
        lambda route: route.fulfill(
            body=strict, content_type="text/html", headers={"Content-Security-Policy": "img-src 'self'"}
        ),
    )
    page.goto("http://127.0.0.1:9/", wait_until="networkidle")
    page.wait_for_timeout(500)  # the socket's refusal and the policy's report are events
    recorded = set(browser.guard.urls)
    browser.guard.urls.clear()  # what this test provoked is not a failure of the portal
    assert recorded == {
        "https://fonts.gstatic.com/icon.svg",
        "wss://socket.example/",
        "https://cdn.example/refused.png",
    }
    assert page.evaluate("document.images[0].complete && document.images[0].naturalWidth") == 0  # aborted
