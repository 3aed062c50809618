"""A real browser (Debian's Chromium, driven by Playwright) against a started portal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import started_portal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portal_url(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with started_portal(demo_env, tmp_path_factory.mktemp("streamlit") / "streamlit.log") as url:
        yield url


def test_catalog_to_product_to_preview_rows(portal_url: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(portal_url, wait_until="networkidle")
    page.get_by_text("Data product catalog").wait_for(timeout=60_000)
    for name in ("dp_customer_360", "dp_product_performance", "dp_revenue_analytics"):
        page.get_by_role("link", name=name).wait_for(timeout=30_000)
    if os.environ.get("ASGARD_SCREENSHOT"):
        page.screenshot(path=os.environ["ASGARD_SCREENSHOT"], full_page=False)

    page.get_by_role("link", name="dp_customer_360").click()
    page.get_by_role("heading", name="dp_customer_360").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Preview").click()
    caption = page.get_by_text("rows · ").first
    caption.wait_for(timeout=30_000)
    text = caption.inner_text()
    assert "100 of" in text
    total = int(text.split(" of ")[1].split(" rows")[0].replace(",", ""))
    # The grid is drawn on a canvas, so read the rows the way a user takes them away: the CSV,
    # which holds the whole result (within the maximum), not the 100 rows on screen.
    grid = page.locator("[data-testid='stDataFrame']").last  # the column summary, under the rows
    grid.wait_for(state="visible", timeout=30_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("customer_id,") and "segment" in lines[0]
    assert len(lines) == total + 1 > 101  # the header and every row
    page.screenshot(path=str(tmp_path / "preview.png"))
    page.close()


def test_click_a_node_for_its_details_then_focus_on_it(portal_url: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{portal_url}/lineage", wait_until="networkidle")
    page.get_by_role("heading", name="Lineage").wait_for(timeout=60_000)
    graph = page.frame_locator("iframe[title*='streamlit_flow']").first
    # React Flow draws each node as an element with its label and each edge as an SVG path with
    # the arrowhead marker: the picture is there, not a blank frame.
    graph.get_by_text("dp_customer_360", exact=True).wait_for(timeout=30_000)
    # edges are drawn once the nodes they join are measured, a frame after the nodes: wait for them
    graph.locator(".react-flow__edge").nth(3).wait_for(timeout=30_000)
    graph.locator("marker").first.wait_for(state="attached", timeout=30_000)
    box = graph.locator(".react-flow__node", has_text="dp_customer_360").first.bounding_box()
    assert box and box["width"] > 100  # the label has its room
    if os.environ.get("ASGARD_LINEAGE_SCREENSHOT"):
        page.screenshot(path=os.environ["ASGARD_LINEAGE_SCREENSHOT"])

    graph.get_by_text("int_orders", exact=True).click()
    page.get_by_role("heading", name="int_orders").wait_for(timeout=30_000)
    page.get_by_role("button", name="Focus here").click()
    page.get_by_text("Focus (1 matching)").wait_for(timeout=30_000)  # the search found it, the focus is it
    graph.get_by_text("stg_orders", exact=True).wait_for(timeout=30_000)  # its parents are drawn
    page.screenshot(path=str(tmp_path / "lineage.png"))
    page.close()
