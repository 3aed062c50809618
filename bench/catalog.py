"""How long the catalog takes to open on a large real project (spellbook_dex: 1,900 models).

Prints the first catalog load (manifest read, sync, entries) as a ratio to a bare json.load of
the same manifest measured in the same run, and the time of a warm search.
Run: .venv/bin/python bench/catalog.py
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.catalog.browse import CatalogQuery, browse
from portal.service import PortalService
from portal.settings import ROOT, Settings

FIXTURE = ROOT.parent / "shared" / "fixtures" / "spellbook_dex"


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(repeat: int = 3) -> None:
    data = gzip.decompress((FIXTURE / "manifest.json.gz").read_bytes())
    baseline = statistics.median(timed(lambda: json.loads(data)) for _ in range(repeat))
    loads, searches = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as scratch:
            settings = Settings.from_env(
                {"PORTAL_DBT_TARGET_DIR": str(FIXTURE), "PORTAL_CATALOG_DB_URL": f"sqlite:///{scratch}/c.db"}
            )
            service = PortalService(settings)
            loads.append(timed(partial(browse, service, CatalogQuery(include_all_models=True))))
            query = CatalogQuery(text="dex_trades", include_all_models=True)
            searches.append(timed(partial(browse, service, query)))
    load = statistics.median(loads)
    print(f"bare json.load of the manifest: {baseline:.2f} s")
    print(
        f"first catalog load (gunzip, read, sync, entries): {load:.2f} s = {load / baseline:.1f}x json.load"
    )
    print(f"warm search over all models: {statistics.median(searches) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
