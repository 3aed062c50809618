"""The lineage graph in a real Chromium: drawn with arrows, a click picks a node, focus follows."""

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


def test_click_a_node_for_its_details_then_focus_on_it(portal_url: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{portal_url}/lineage", wait_until="networkidle")
    page.get_by_role("heading", name="Lineage").wait_for(timeout=60_000)
    graph = page.frame_locator("iframe[title*='streamlit_flow']").first
    # React Flow draws each node as an element with its label and each edge as an SVG path with
    # the arrowhead marker: the picture is there, not a blank frame.
    graph.get_by_text("dp_customer_360", exact=True).wait_for(timeout=30_000)
    assert graph.locator(".react-flow__edge").count() >= 4
    assert graph.locator("marker").count() >= 1
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
