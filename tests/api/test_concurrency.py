"""Concurrency against a real server: one name claimed by 20 parallel creates, 50 parallel queries."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from catalog_db.models import DataProduct
from tests.api.conftest import serving, wait_for_run

pytestmark = pytest.mark.slow

BODY = {
    "name": "Race Winner",
    "description": "Whoever claims the name first builds it.",
    "data_product_type": "CUSTOM",
    "owner": "race-team",
    "source_query": "select order_id, ordered_at from silver.orders",
    "primary_key": ["order_id"],
}


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Any:
    with serving(app) as base:
        yield base


def test_twenty_parallel_creates_of_one_name(base_url: str, app: FastAPI) -> None:
    def create(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=300) as http:
            return http.post("/api/v1/data-products/", json=BODY)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(create, range(20)))

    assert Counter(r.status_code for r in responses) == {202: 1, 409: 19}, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "name"
        assert "dp_race_winner" in refused.json()["detail"]
    winner = next(r for r in responses if r.status_code == 202).json()
    with httpx.Client(base_url=base_url, timeout=60) as http:
        assert wait_for_run(http.get, winner["run"]["id"])["status"] == "success"
    with app.state.service.sessions() as session:
        rows = session.scalars(sa.select(DataProduct).where(DataProduct.name == "dp_race_winner")).all()
    assert [row.status for row in rows] == ["published"]


def test_fifty_parallel_queries(base_url: str) -> None:
    def query(index: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            return http.get(f"/api/v1/data-products/dp_customer_360/query?limit={index + 1}")

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(query, range(50)))
    assert [r.status_code for r in responses] == [200] * 50, [
        r.text for r in responses if r.status_code != 200
    ]
    assert [len(r.json()["rows"]) for r in responses] == list(range(1, 51))
