"""The catalog over the API: a search's `matched` reasons, and a versioned model listed once with
its `versions` (real public artifacts; read only, so the local user needs no token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.api import create_app
from portal.settings import Settings
from tests.api.conftest import LOCAL, LOCAL_URL
from tests.conftest import FIXTURES
from tests.searchable_jaffle import HOSTILE, searchable_jaffle

BASE = "/api/v1/data-products"
MODEL = "model.dbt_project_evaluator_integration_tests.int_model_5"


def local_client(environ: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(Settings.from_env(environ))
    with TestClient(app, client=LOCAL, base_url=LOCAL_URL, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def jaffle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from local_client(searchable_jaffle(tmp_path_factory.mktemp("api_search")))


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base: Path = tmp_path_factory.mktemp("api_versions")
    environ = {
        "PORTAL_DBT_TARGET_DIR": str(FIXTURES / "dbt_project_evaluator_it"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'catalog.db'}",
        "PORTAL_DATA_PRODUCTS_PATH": "models/marts",
    }
    yield from local_client(environ)


def test_a_search_says_what_matched_and_where(jaffle: TestClient) -> None:
    response = jaffle.get(f"{BASE}/", params={"search": "`<b>`"})
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["name"] == "customers"
    assert item["matched"] == [{"field": "column", "text": HOSTILE, "spans": [[3, 8]], "of": None}]
    owner = jaffle.get(f"{BASE}/", params={"search": "growth"}).json()["items"]
    assert [m["field"] for m in owner[0]["matched"]] == ["owner"]


def test_without_a_search_matched_is_null(jaffle: TestClient) -> None:
    items = jaffle.get(f"{BASE}/").json()["items"]
    assert items and all(item["matched"] is None for item in items)
    assert all(item["versions"] == [] for item in items)  # nothing versioned in jaffle_shop


def test_a_versioned_model_is_listed_once_with_its_versions(evaluator: TestClient) -> None:
    response = evaluator.get(f"{BASE}/", params={"search": "int_model_5"})
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["unique_id"] == f"{MODEL}.v2"
    versions = [
        (v["version"], v["unique_id"], v["latest"], v["prerelease"], v["deprecated"])
        for v in item["versions"]
    ]
    assert versions == [
        ("1", f"{MODEL}.v1", False, False, True),  # deprecated since 2024-01-01
        ("2", f"{MODEL}.v2", True, False, False),  # until 2029
        ("3", f"{MODEL}.v3", False, True, False),
    ]
    assert item["versions"][0]["deprecation_date"].startswith("2024-01-01")
    detail = evaluator.get(f"{BASE}/int_model_5").json()
    assert detail["unique_id"] == f"{MODEL}.v2" and detail["versions"] == item["versions"]
    names = [p["name"] for p in evaluator.get(f"{BASE}/", params={"limit": 500}).json()["items"]]
    assert names.count("int_model_5") == 1
