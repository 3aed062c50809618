"""Previews keep answering while a creation's dbt build writes the embedded DuckDB warehouse.

A real uvicorn server over a private copy of the demo, a real, deliberately slow dbt build (the
one issue 12 found holding the warehouse for minutes), real previews of another product while it
runs, and a cancel to end it. Before the build kept a copy for readers, each of these answered
503 "the warehouse is busy".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from fastapi import FastAPI

from portal.settings import Settings
from tests.api.conftest import serving, wait_for_run
from tests.integration.test_build_timeout import SLOW_SQL

pytestmark = pytest.mark.slow
PRODUCT = {
    "name": "dp_long_build",
    "description": "A build slow enough to preview other products during it.",
    "data_product_type": "CUSTOM",
    "owner": "bench-team",
    "source_query": SLOW_SQL,
    "primary_key": ["id"],
    "materialization": "view",
}


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Any:
    with serving(app) as base:
        yield base


def _held_for_writing(path: Path) -> bool:
    """Whether a process (dbt) has the warehouse file open for writing: DuckDB then refuses readers."""
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException:
        return True
    return False


def test_previews_answer_while_a_build_writes_the_warehouse(base_url: str, api_settings: Settings) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as http:
        before = http.get("/api/v1/data-products/dp_customer_360/query?limit=5")
        assert before.status_code == 200, before.text
        accepted = http.post("/api/v1/data-products/", json=PRODUCT)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["run"]["id"]
        deadline = time.monotonic() + 120
        while not _held_for_writing(api_settings.duckdb_path):
            assert time.monotonic() < deadline, "the audit build never opened the warehouse"
            time.sleep(0.1)
        answers = []
        for _ in range(5):
            answers.append(http.get("/api/v1/data-products/dp_customer_360/query?limit=5"))
            time.sleep(0.3)
        # The build held the file before the previews and still runs after them, so they overlapped.
        # (Not the file's hold at this instant: dbt-duckdb lets go of it for a moment between the
        # model and its tests, and a loaded machine once caught that moment.)
        assert http.get(f"/api/v1/runs/{run_id}").json()["status"] == "running", (
            "the build ended during the previews"
        )
        assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
        assert all(a.json()["rows"] == before.json()["rows"] for a in answers)  # the same data
        assert http.post(f"/api/v1/runs/{run_id}/cancel", json={}).status_code == 202
        assert wait_for_run(http.get, run_id)["status"] == "error"
        after = http.get("/api/v1/data-products/dp_customer_360/query?limit=5")
        assert after.status_code == 200, after.text
    assert not Path(str(api_settings.duckdb_path) + ".reading").exists()  # the copy went with the build
