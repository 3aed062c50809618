"""A real browser (Debian's Chromium, driven by Playwright) against a started portal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.settings import ROOT
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portal_url(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, **demo_env}
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "portal/ui/app.py",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the portal did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


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
    assert "100 of" in caption.inner_text()
    # The grid is drawn on a canvas, so read the rows the way a user takes them away: the CSV.
    grid = page.locator("[data-testid='stDataFrame']").last
    grid.wait_for(state="visible", timeout=30_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("customer_id,") and "segment" in lines[0]
    assert len(lines) == 101  # the header and the default 100 rows
    page.screenshot(path=str(tmp_path / "preview.png"))
    page.close()
