"""`GET /api/v1/data-products/{id}/export` and the query's sort on a private copy of the demo: the
whole filtered, sorted result streamed as CSV or Parquet, cut at the maximum rows (and saying so),
recorded as a read; a wrong format or too many filters is a 4xx problem that says what to send."""

from __future__ import annotations

import io
from typing import Any

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog_db.models import UsageEvent
from portal.settings import Settings
from portal.warehouse.base import MAX_FILTERS
from tests.api.conftest import bearer

BASE = "/api/v1/data-products/dp_customer_360"
BOUND = 40  # the maximum rows here: the demo has more customers than that
FILTERS = [("filter", "order_count:ge:1"), ("filter", "email:notnull")]


@pytest.fixture(scope="module")
def api_settings(api_env: dict[str, str]) -> Settings:
    return Settings.from_env(
        {**api_env, "PORTAL_PREVIEW_MAX_ROWS": str(BOUND), "PORTAL_PREVIEW_DEFAULT_ROWS": "10"}
    )


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert "SELECT" not in body["detail"].upper()
    return body


def streamed(client: TestClient, token: str, *params: tuple[str, str]) -> tuple[Any, bytes, int]:
    """The export's response, its body, and how many chunks it came in."""
    with client.stream("GET", f"{BASE}/export", params=list(params), headers=bearer(token)) as response:
        chunks = list(response.iter_bytes())
    return response, b"".join(chunks), len(chunks)


def test_the_query_sorts_every_matching_row_by_any_column(client: TestClient, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["viewer"])
    up = client.get(
        f"{BASE}/query", params=[("sort", "lifetime_value"), ("limit", "40")], headers=headers
    ).json()
    down = client.get(
        f"{BASE}/query",
        params=[("sort", "lifetime_value"), ("descending", "true"), ("limit", "40")],
        headers=headers,
    ).json()
    values = [float(r["lifetime_value"]) for r in up["rows"]]
    highest = [float(r["lifetime_value"]) for r in down["rows"]]
    assert values == sorted(values) and highest == sorted(highest, reverse=True) and highest[0] > values[0]
    unknown = problem(client.get(f"{BASE}/query", params={"sort": "shoe_size"}, headers=headers), 400)
    assert "shoe_size" in unknown["detail"] and "lifetime_value" in unknown["detail"]


def test_a_csv_export_streams_the_whole_filtered_sorted_result_cut_at_the_bound(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response, body, _ = streamed(
        client, tokens["viewer"], *FILTERS, ("sort", "customer_id"), ("descending", "true")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "content-length" not in response.headers  # streamed, not assembled first
    assert response.headers["content-disposition"] == 'attachment; filename="dp_customer_360.csv"'
    total = int(response.headers["x-total-rows"])
    assert total > BOUND and response.headers["x-exported-rows"] == str(BOUND)
    assert response.headers["x-truncated"] == "true" and response.headers["x-row-limit"] == str(BOUND)
    table = pa_csv.read_csv(io.BytesIO(body))
    ids = table.column("customer_id").to_pylist()
    assert len(ids) == BOUND and ids == sorted(ids, reverse=True)  # more than the default 10 of a query
    assert all(n >= 1 for n in table.column("order_count").to_pylist())


def test_a_parquet_export_holds_what_the_query_returns(client: TestClient, tokens: dict[str, str]) -> None:
    params = [
        *FILTERS,
        ("sort", "customer_id"),
        ("filter", "customer_id:le:30"),
        ("columns", "customer_id,segment"),
    ]
    response, body, _ = streamed(client, tokens["viewer"], ("format", "parquet"), *params)
    assert (
        response.status_code == 200 and response.headers["content-type"] == "application/vnd.apache.parquet"
    )
    assert response.headers["x-truncated"] == "false"
    table = pq.read_table(io.BytesIO(body))
    queried = client.get(
        f"{BASE}/query", params=[*params, ("limit", str(BOUND))], headers=bearer(tokens["viewer"])
    )
    rows = queried.json()["rows"]
    assert 0 < len(rows) < BOUND and table.column_names == ["customer_id", "segment"]
    assert table.to_pylist() == rows
    assert response.headers["x-exported-rows"] == response.headers["x-total-rows"] == str(len(rows))


def test_an_export_is_a_recorded_read_of_the_api_face(
    client: TestClient, tokens: dict[str, str], app: Any
) -> None:
    response, _, _ = streamed(client, tokens["creator"], ("format", "parquet"))
    assert response.status_code == 200
    with app.state.service.sessions() as session:
        events = session.scalars(sa.select(UsageEvent).where(UsageEvent.user == "carl")).all()
    exports = [e for e in events if e.detail.get("export") == "parquet"]
    assert len(exports) == 1 and exports[0].face == "api" and exports[0].product == "dp_customer_360"
    assert exports[0].rows == BOUND and exports[0].detail["cut"] is True


def test_an_unknown_format_is_a_422_naming_the_formats(client: TestClient, tokens: dict[str, str]) -> None:
    body = problem(client.get(f"{BASE}/export?format=xlsx", headers=bearer(tokens["viewer"])), 422)
    assert body["errors"][0]["field"] == "format"
    assert "'csv'" in body["detail"] and "'parquet'" in body["detail"]


def test_more_filters_than_the_cap_are_a_400_naming_it(client: TestClient, tokens: dict[str, str]) -> None:
    too_many = [("filter", "order_count:ge:1")] * (MAX_FILTERS + 1)
    body = problem(client.get(f"{BASE}/export", params=too_many, headers=bearer(tokens["viewer"])), 400)
    assert f"at most {MAX_FILTERS} filters (got {MAX_FILTERS + 1})" in body["detail"]


def test_an_export_needs_a_caller_and_a_product(client: TestClient, tokens: dict[str, str]) -> None:
    problem(client.get(f"{BASE}/export"), 401)
    problem(client.get("/api/v1/data-products/dp_nothing/export", headers=bearer(tokens["viewer"])), 404)
    bad = problem(
        client.get(f"{BASE}/export?filter=order_count:gt:many", headers=bearer(tokens["viewer"])), 400
    )
    assert "order_count" in bad["detail"]
