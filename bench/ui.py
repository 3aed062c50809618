"""Page speed in a real Chromium, on the demo and on spellbook_dex, as ratios measured in this run.

    .venv/bin/python bench/ui.py [--repeat 3]

Starts two portals (`python -m portal ui`): the demo (built at a small scale in a temporary
folder) and spellbook_dex's real artifacts (1,900 models). For each, times from navigation until
the page is fully rendered: Streamlit's script run has finished (`stApp` says `notRunning`) and the
page's own content is on screen (the catalog's cards, the product's columns, every React Flow node
of the lineage graph, the plotly overview, the SQL editor). Each time is printed as a ratio to the
demo's catalog page timed in the same run, so a slower or busier machine moves all rows together.

The product page on the big project should cost no more than the demo's plus the manifest read
(printed too: a cold `load_manifest` of the same file in this process).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from portal.project.artifacts import load_manifest  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, started_portal  # noqa: E402
from tests.conftest import demo_environ  # noqa: E402

SPELLBOOK = ROOT.parent / "shared" / "fixtures" / "spellbook_dex"
TIMEOUT_MS = 180_000


def settled(page: Page) -> None:
    """Streamlit's script run is over (a component's first value can ask for one more run)."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=TIMEOUT_MS)


def graph_drawn(page: Page) -> None:
    """Every node React Flow was handed is on screen, and the caption says how many that is."""
    frame = page.frame_locator("iframe[title*='streamlit_flow']").first
    frame.locator(".react-flow__node").first.wait_for(timeout=TIMEOUT_MS)
    settled(page)


def overview_drawn(page: Page) -> None:
    page.locator(".js-plotly-plot .scatterlayer .point").first.wait_for(state="attached", timeout=TIMEOUT_MS)
    settled(page)


def heading(text: str) -> Callable[[Page], None]:
    def wait(page: Page) -> None:
        page.get_by_role("heading", name=text).first.wait_for(timeout=TIMEOUT_MS)
        settled(page)

    return wait


def product_drawn(name: str) -> Callable[[Page], None]:
    def wait(page: Page) -> None:
        page.get_by_role("heading", name=name).first.wait_for(timeout=TIMEOUT_MS)
        page.get_by_role("tab", name="Overview").first.wait_for(timeout=TIMEOUT_MS)
        settled(page)

    return wait


def timed(page: Page, url: str, ready: Callable[[Page], None], repeat: int) -> float:
    """Median seconds from navigation to `ready`, after one unmeasured warm-up visit."""
    times = []
    for attempt in range(repeat + 1):
        page.goto("about:blank")
        start = time.perf_counter()
        page.goto(url)
        ready(page)
        if attempt:  # the first visit warms the server's caches (manifest, graph, artifacts)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def portals(base: Path) -> Iterator[dict[str, str]]:
    from portal.demo.build import build_demo
    from portal.settings import Settings

    demo = demo_environ(base / "demo")
    (base / "demo").mkdir()
    print("building the demo …", flush=True)
    build_demo(Settings.from_env(demo), say=lambda line: None)
    spellbook = {
        "PORTAL_DBT_TARGET_DIR": str(SPELLBOOK),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'spellbook.db'}",
        "PORTAL_DUCKDB_PATH": str(base / "spellbook.duckdb"),
    }
    with ExitStack() as stack:
        yield {
            "demo": stack.enter_context(started_portal(demo, base / "demo.log")),
            "spellbook_dex": stack.enter_context(started_portal(spellbook, base / "spellbook.log")),
        }


PAGES: dict[str, dict[str, tuple[str, Callable[[Page], None]]]] = {
    "demo": {
        "catalog": ("/", heading("Data product catalog")),
        "product page": ("/product?id=dp_customer_360", product_drawn("dp_customer_360")),
        "lineage, default view": ("/lineage", graph_drawn),
        "lineage, whole graph (graph)": (
            "/lineage?lineage_selector=*&lineage_budget=1000&lineage_drawing=Graph",
            graph_drawn,
        ),
        "lineage, whole graph (overview)": (
            "/lineage?lineage_selector=*&lineage_budget=1000&lineage_drawing=Overview",
            overview_drawn,
        ),
        "SQL workspace": ("/workspace", heading("SQL workspace")),
    },
    "spellbook_dex": {
        "catalog": ("/", heading("Data product catalog")),
        "product page": ("/product?id=dex_trades", product_drawn("dex_trades")),
        "lineage, default view": ("/lineage?lineage_find=dex_trades", graph_drawn),
        "lineage, 1,000 nodes (graph)": (
            "/lineage?lineage_selector=%2Bdex_trades&lineage_budget=1000&lineage_drawing=Graph",
            graph_drawn,
        ),
        "lineage, 1,000 nodes (overview)": (
            "/lineage?lineage_selector=%2Bdex_trades&lineage_budget=1000&lineage_drawing=Overview",
            overview_drawn,
        ),
        "SQL workspace": ("/workspace", heading("SQL workspace")),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, portals(Path(tmp)) as urls, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        results: dict[tuple[str, str], float] = {}
        for project, pages in PAGES.items():
            for name, (path, ready) in pages.items():
                results[project, name] = timed(page, urls[project] + path, ready, args.repeat)
        browser.close()
    manifest_read = min(_seconds(lambda: load_manifest(SPELLBOOK / "manifest.json.gz")) for _ in range(3))
    baseline = results["demo", "catalog"]
    print(f"\nbaseline: the demo's catalog page, {baseline:.2f} s (median of {args.repeat})\n")
    print(f"{'project':<15}{'page':<34}{'seconds':>9}{'ratio':>8}")
    for (project, name), seconds in results.items():
        print(f"{project:<15}{name:<34}{seconds:9.2f}{seconds / baseline:7.2f}x")
    extra = results["spellbook_dex", "product page"] - results["demo", "product page"]
    print(
        f"\nproduct page: spellbook_dex − demo = {extra:+.2f} s; spellbook_dex's manifest read = "
        f"{manifest_read:.2f} s ({'within' if extra <= manifest_read else 'OVER'} the manifest read)"
    )


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
