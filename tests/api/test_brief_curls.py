"""The product brief's three curl calls, as HTTP calls against a real started server.

The brief writes the source query with Trino's names (`nessie.silver.my_table`); on the embedded
default the same silver tables have DuckDB's names, so the call reads `silver.orders`. Like the
brief's curls it sends no token: on the embedded default, calls from 127.0.0.1 act as the local
user. Between the calls the client follows the runs, as any script must: a 202 means "started".
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import serving, wait_for_run

pytestmark = pytest.mark.slow


def test_the_briefs_three_calls(app: FastAPI) -> None:
    with serving(app) as base, httpx.Client(base_url=base, timeout=120) as http:
        created = http.post(
            "/api/v1/data-products/",
            headers={"Content-Type": "application/json"},
            json={
                "name": "My Data Product",
                "description": "Custom analytics dataset",
                "data_product_type": "CUSTOM",
                "source_query": "SELECT * FROM silver.orders",
                "owner": "my-team",
            },
        )
        assert created.status_code in {201, 202}, created.text
        body = created.json()
        product_id = body["product"]["name"]
        assert product_id == "dp_my_data_product"
        assert body["primary_key"] == ["order_id"]  # inferred: the brief's call names none
        if created.status_code == 202:
            assert wait_for_run(http.get, body["run"]["id"])["status"] == "success"

        run = http.post(f"/api/v1/data-products/{product_id}/run")
        assert run.status_code == 202, run.text
        run_id = run.json()["run"]["id"]
        assert isinstance(run_id, int)
        assert wait_for_run(http.get, run_id)["status"] == "success"

        query = http.get(f"/api/v1/data-products/{product_id}/query?limit=100")
        assert query.status_code == 200, query.text
        rows = query.json()["rows"]
        assert len(rows) == 100
        assert {"order_id", "customer_id", "status"} <= set(rows[0])
