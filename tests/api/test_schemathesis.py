"""schemathesis against the app's own OpenAPI document: no 500s, every response as documented.

Bounded: a few dozen examples per operation and no deadline (a query hits the real warehouse).
Read operations get valid and invalid data; the writes get only schema-violating bodies, which
are refused before anything is built, so the run stays quick and leaves the demo as it was.

Two of schemathesis's checks are left out where they cannot hold:
- `positive_data_acceptance`: a schema-valid request may still name a product, column or filter
  that does not exist, and the right answer to that is a 4xx;
- `negative_data_rejection` on reads: a query string cannot tell a one-item array (`?tag=x`) from
  a string, so "array became string" is not invalid there. Invalid write bodies are still checked.

Each operation is its own test, driven through `as_strategy()` with Hypothesis: schemathesis's
pytest fixture loader (`schemathesis.pytest.from_fixture`) does not work with pytest 9.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import bearer

pytestmark = pytest.mark.slow

EXAMPLES = 30
READS = [
    "/health",
    "/api/v1/version",
    "/api/v1/data-products/",
    "/api/v1/data-products/{id}",
    "/api/v1/data-products/{id}/runs",
    "/api/v1/data-products/{id}/history",
    "/api/v1/data-products/{id}/query",
    "/api/v1/data-products/{id}/export",
    "/api/v1/data-products/{id}/lineage",
    "/api/v1/data-products/{id}/quality",
    "/api/v1/data-products/{id}/schema",
    "/api/v1/data-products/{id}/consumers",
    "/api/v1/data-products/{id}/contract",
    "/api/v1/runs/{run_id}",
    "/api/v1/proposals/",
    "/api/v1/proposals/{proposal_id}",
    "/api/v1/data-products/{id}/access-requests",
    "/api/v1/access-requests",
]
WRITES = [
    ("POST", "/api/v1/data-products/"),
    ("POST", "/api/v1/data-products/from-contract"),
    ("PATCH", "/api/v1/data-products/{id}"),
    ("POST", "/api/v1/data-products/{id}/consumers"),
    ("POST", "/api/v1/proposals/{proposal_id}/approve"),
    ("POST", "/api/v1/proposals/{proposal_id}/reject"),
    ("POST", "/api/v1/data-products/{id}/access-requests"),
    ("POST", "/api/v1/access-requests/{request_id}/approve"),
    ("POST", "/api/v1/access-requests/{request_id}/refuse"),
]


@pytest.fixture(scope="module")
def schema(app: FastAPI, tokens: dict[str, str]) -> Any:
    # The document itself needs a caller too (portal.api.gate).
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=bearer(tokens["viewer"]))


def exercise(operation: Any, headers: dict[str, str], *, writes: bool) -> None:
    negative = operation.as_strategy(GenerationMode.NEGATIVE)
    cases = negative if writes else operation.as_strategy(GenerationMode.POSITIVE) | negative

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        excluded = (
            [positive_data_acceptance] if writes else [positive_data_acceptance, negative_data_rejection]
        )
        response = case.call_and_validate(headers=headers, excluded_checks=excluded)
        if writes:  # invalid bodies: refused before anything is built
            assert 400 <= response.status_code < 500, response.text

    check()


def test_the_operations_listed_here_are_all_of_them(schema: Any) -> None:
    found = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    listed = {("GET", path) for path in READS} | set(WRITES)
    assert found - listed == {
        ("DELETE", "/api/v1/data-products/{id}"),
        ("DELETE", "/api/v1/data-products/{id}/consumers/{name}"),
        ("POST", "/api/v1/data-products/{id}/run"),
        ("POST", "/api/v1/runs/{run_id}/cancel"),
        ("POST", "/api/v1/access-requests/{request_id}/end"),  # no body to be invalid
    }


@pytest.mark.parametrize("path", READS)
def test_reads_conform(schema: Any, tokens: dict[str, str], path: str) -> None:
    exercise(schema[path]["GET"], bearer(tokens["admin"]), writes=False)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_invalid_writes_are_refused_cleanly(
    schema: Any, tokens: dict[str, str], method: str, path: str
) -> None:
    exercise(schema[path][method], bearer(tokens["admin"]), writes=True)
