"""Every endpoint and every role boundary of the REST API, over a private copy of the real demo.

Writes build real dbt models (slow), so this module creates one product and walks it through
edit, refresh and deprecation; everything else reads the demo or is refused before any build.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog_db.models import AuditEvent, DataProduct, UsageEvent
from portal.api import create_app
from portal.creation.spec import ProductSpec, validate_spec
from portal.project.dbt_runner import project_lock
from portal.settings import Settings
from tests.api.conftest import LOCAL, LOCAL_URL, bearer, wait_for_run

pytestmark = pytest.mark.slow

BASE = "/api/v1/data-products"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "errors"}
CARL = {
    "name": "Carl Orders",
    "description": "Orders with their customer and status.",
    "data_product_type": "CUSTOM",
    "owner": "sales-team",
    "source_query": "select order_id, customer_id, status from silver.orders",
    "primary_key": ["order_id"],
    "tags": ["sales"],
}


def problem(response: Any, status: int) -> dict[str, Any]:
    """The response's problem body, after checking the one error shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == PROBLEM_KEYS
    assert body["status"] == status and body["type"].startswith("urn:asgard:problem:")
    assert body["title"] and body["detail"]
    return body


@pytest.fixture(scope="module")
def carl_product(client: TestClient, tokens: dict[str, str]) -> dict[str, Any]:
    """A product created by carl (creator) through the API, waited for: 201."""
    response = client.post(f"{BASE}/?wait=true", json=CARL, headers=bearer(tokens["creator"]))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["state"] == "published", body
    return body


# --- the error shape -----------------------------------------------------------------------


def test_the_problem_shape_is_pinned(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get(f"{BASE}/dp_no_such_thing", headers=bearer(tokens["viewer"]))
    body = problem(response, 404)
    assert body == {
        "type": "urn:asgard:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": body["detail"],
        "instance": f"{BASE}/dp_no_such_thing",
        "errors": [],
    }
    assert "dp_no_such_thing" in body["detail"]


def test_unknown_endpoints_and_methods_are_problems_too(client: TestClient, tokens: dict[str, str]) -> None:
    problem(client.get("/api/v1/nothing-here", headers=bearer(tokens["viewer"])), 404)
    problem(client.put(f"{BASE}/dp_customer_360", headers=bearer(tokens["viewer"])), 405)


def test_openapi_documents_models_and_problem_responses(local: TestClient) -> None:
    assert local.get("/docs").status_code == 200
    schema = local.get("/openapi.json").json()
    assert {"ProblemDetails", "ProductCreate", "ProductDetailOut", "QueryResult", "RunOut"} <= set(
        schema["components"]["schemas"]
    )
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    expected = {
        ("/api/v1/data-products/", "get"),
        ("/api/v1/data-products/", "post"),
        ("/api/v1/data-products/{id}", "get"),
        ("/api/v1/data-products/{id}", "patch"),
        ("/api/v1/data-products/{id}", "delete"),
        ("/api/v1/data-products/{id}/run", "post"),
        ("/api/v1/data-products/{id}/runs", "get"),
        ("/api/v1/data-products/{id}/history", "get"),
        ("/api/v1/data-products/{id}/query", "get"),
        ("/api/v1/data-products/{id}/export", "get"),
        ("/api/v1/data-products/{id}/lineage", "get"),
        ("/api/v1/data-products/{id}/quality", "get"),
        ("/api/v1/data-products/{id}/schema", "get"),
        ("/api/v1/runs/{run_id}", "get"),
        ("/api/v1/runs/{run_id}/cancel", "post"),
        ("/api/v1/proposals/", "get"),
        ("/api/v1/proposals/{proposal_id}", "get"),
        ("/api/v1/proposals/{proposal_id}/approve", "post"),
        ("/api/v1/proposals/{proposal_id}/reject", "post"),
        ("/api/v1/data-products/from-contract", "post"),
        ("/api/v1/data-products/{id}/contract", "get"),
        ("/api/v1/data-products/{id}/consumers", "get"),
        ("/api/v1/data-products/{id}/consumers", "post"),
        ("/api/v1/data-products/{id}/consumers/{name}", "delete"),
        ("/api/v1/data-products/{id}/access-requests", "get"),
        ("/api/v1/data-products/{id}/access-requests", "post"),
        ("/api/v1/access-requests", "get"),
        ("/api/v1/access-requests/{request_id}/approve", "post"),
        ("/api/v1/access-requests/{request_id}/refuse", "post"),
        ("/api/v1/access-requests/{request_id}/end", "post"),
        ("/health", "get"),
        ("/api/v1/version", "get"),
    }
    found = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert found == expected
    for path, method in expected - {("/health", "get"), ("/api/v1/version", "get")}:
        responses = schema["paths"][path][method]["responses"]
        assert "401" in responses and "403" in responses, (path, method)
        for status, response in responses.items():
            if status.startswith("4"):
                assert list(response["content"]) == ["application/problem+json"], (path, method, status)
    assert (
        "text/csv"
        in schema["paths"]["/api/v1/data-products/{id}/query"]["get"]["responses"]["200"]["content"]
    )
    exported = schema["paths"]["/api/v1/data-products/{id}/export"]["get"]["responses"]["200"]["content"]
    assert set(exported) == {"text/csv", "application/vnd.apache.parquet"}


# --- system --------------------------------------------------------------------------------


def test_health_and_version_answer_the_local_user(local: TestClient) -> None:
    health = local.get("/health")
    assert health.status_code == 200
    assert {c["name"]: c["ok"] for c in health.json()["checks"]} == {
        "catalog_db": True,
        "artifacts": True,
        "warehouse": True,
    }
    version = local.get("/api/v1/version").json()
    assert version["api"] == "v1" and version["warehouse"] == "duckdb" and version["dbt_core"]


# --- authentication ------------------------------------------------------------------------


def test_no_token_from_another_machine_is_401(client: TestClient) -> None:
    response = client.get(f"{BASE}/")
    body = problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "python -m portal token create" in body["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer asg_not-a-real-token", "Bearer something-else", "Basic dXNlcjpwYXNz", "Bearer"],
)
def test_bad_credentials_are_401(client: TestClient, header: str) -> None:
    problem(client.get(f"{BASE}/", headers={"Authorization": header}), 401)


def test_a_revoked_token_is_401_and_says_so(client: TestClient, tokens: dict[str, str]) -> None:
    body = problem(client.get(f"{BASE}/", headers=bearer(tokens["revoked"])), 401)
    assert "revoked" in body["detail"]


def test_local_calls_without_a_token_act_as_the_local_user(local: TestClient, api_settings: Any) -> None:
    response = local.get(f"{BASE}/")
    assert response.status_code == 200
    assert {p["name"] for p in response.json()["items"]} >= {"dp_customer_360", "dp_revenue_analytics"}


def test_proxied_local_calls_need_a_token(local: TestClient) -> None:
    body = problem(local.get(f"{BASE}/", headers={"X-Forwarded-For": "203.0.113.9"}), 401)
    assert "proxy" in body["detail"]


def test_anonymous_access_is_off_for_a_non_loopback_bind_and_by_setting(app: Any, api_settings: Any) -> None:
    service = app.state.service
    for settings, host in (
        (api_settings, "0.0.0.0"),
        (replace(api_settings, api_anonymous="creator"), "192.0.2.1"),
        (replace(api_settings, api_anonymous="off"), "127.0.0.1"),
        (replace(api_settings, warehouse="trino"), "127.0.0.1"),  # auto: off outside local mode
    ):
        other = create_app(settings, host=host, service=service)
        with TestClient(
            other, client=LOCAL, base_url=LOCAL_URL, raise_server_exceptions=False
        ) as test_client:
            problem(test_client.get(f"{BASE}/"), 401)


def test_anonymous_viewer_setting_allows_reading_only(app: Any, api_settings: Any) -> None:
    other = create_app(
        replace(api_settings, api_anonymous="viewer"), host="127.0.0.1", service=app.state.service
    )
    with TestClient(other, client=LOCAL, base_url=LOCAL_URL, raise_server_exceptions=False) as test_client:
        assert test_client.get(f"{BASE}/dp_customer_360").status_code == 200
        body = problem(test_client.post(f"{BASE}/", json=CARL), 403)
        assert "viewer" in body["detail"]


# --- reading -------------------------------------------------------------------------------


def test_list_filters_and_paginates(client: TestClient, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["viewer"])
    everything = client.get(f"{BASE}/", headers=headers).json()
    assert everything["total"] == len(everything["items"]) >= 3
    page = client.get(f"{BASE}/?limit=1&offset=1&sort=name", headers=headers).json()
    assert page["total"] == everything["total"] and [p["name"] for p in page["items"]] == [
        everything["items"][1]["name"]
    ]
    typed = client.get(f"{BASE}/?type=CUSTOMER_360", headers=headers).json()["items"]
    assert [p["name"] for p in typed] == ["dp_customer_360"]
    owner = typed[0]["owner"]
    assert all(
        p["owner"] == owner for p in client.get(f"{BASE}/?owner={owner}", headers=headers).json()["items"]
    )
    found = client.get(f"{BASE}/?search=customer", headers=headers).json()["items"]
    assert "dp_customer_360" in {p["name"] for p in found}
    tag = typed[0]["tags"][0]
    assert all(tag in p["tags"] for p in client.get(f"{BASE}/?tag={tag}", headers=headers).json()["items"])
    assert client.get(f"{BASE}/?status=published", headers=headers).status_code == 200
    problem(client.get(f"{BASE}/?limit=0", headers=headers), 422)
    problem(client.get(f"{BASE}/?sort=colour", headers=headers), 422)


def test_get_one_product(client: TestClient, tokens: dict[str, str]) -> None:
    body = client.get(f"{BASE}/dp_customer_360", headers=bearer(tokens["viewer"])).json()
    assert body["unique_id"] == "model.asgard.dp_customer_360"
    assert body["health"]["level"] == "healthy"
    assert any(c["name"] == "customer_id" and "unique" in c["tests"] for c in body["columns"])
    assert body["tests"] and body["raw_sql"]
    by_unique_id = client.get(f"{BASE}/model.asgard.dp_customer_360", headers=bearer(tokens["viewer"]))
    assert by_unique_id.json()["name"] == "dp_customer_360"


def test_schema_lineage_quality_and_runs(client: TestClient, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["viewer"])
    schema = client.get(f"{BASE}/dp_customer_360/schema", headers=headers).json()
    assert schema["primary_key"] == ["customer_id"] and schema["contract_enforced"] is True
    assert all(c["type"] for c in schema["columns"])

    lineage = client.get(f"{BASE}/dp_customer_360/lineage?upstream=1&downstream=0", headers=headers).json()
    ids = {n["unique_id"] for n in lineage["nodes"]}
    assert lineage["focus"] in ids and len(ids) > 1
    assert all(edge["source"] in ids and edge["target"] in ids for edge in lineage["edges"])
    assert {e["source"] for e in lineage["edges"] if e["target"] == lineage["focus"]} == ids - {
        lineage["focus"]
    }
    everything = client.get(f"{BASE}/dp_customer_360/lineage", headers=headers).json()
    assert len(everything["nodes"]) > len(lineage["nodes"])
    assert any(n["resource_type"] == "source" for n in everything["nodes"])
    problem(client.get(f"{BASE}/dp_customer_360/lineage?upstream=-1", headers=headers), 422)

    quality = client.get(f"{BASE}/dp_customer_360/quality", headers=headers).json()
    assert quality["health"]["tests_failed"] == 0 and quality["tests"]
    assert quality["freshness"]["state"] in {"fresh", "late", "stale", "unknown"}

    runs = client.get(f"{BASE}/dp_customer_360/runs", headers=headers).json()
    assert runs and runs[0]["models"] > 0
    run = client.get(f"/api/v1/runs/{runs[0]['id']}", headers=headers).json()
    assert run["finished"] and run["nodes"] and run["nodes"][0]["execution_time_s"] >= 0
    assert run["publish"] is None  # a build of the whole project publishes nothing by itself
    problem(client.get("/api/v1/runs/999999", headers=headers), 404)
    problem(client.get("/api/v1/runs/not-a-number", headers=headers), 422)


def test_query_json_csv_columns_and_filters(client: TestClient, tokens: dict[str, str], app: Any) -> None:
    headers = bearer(tokens["viewer"])
    url = f"{BASE}/dp_customer_360/query"
    body = client.get(f"{url}?limit=5", headers=headers).json()
    assert body["returned_rows"] == len(body["rows"]) == 5 and body["total_rows"] > 5 and body["truncated"]
    assert set(body["rows"][0]) == set(body["columns"])

    picked = client.get(f"{url}?limit=3&columns=customer_id,order_count", headers=headers).json()
    assert picked["columns"] == ["customer_id", "order_count"]
    repeated = client.get(f"{url}?limit=3&columns=customer_id&columns=order_count", headers=headers).json()
    assert repeated["columns"] == picked["columns"]

    filtered = client.get(
        f"{url}?limit=50&filter=order_count:gt:3&filter=email:notnull", headers=headers
    ).json()
    assert filtered["rows"] and all(r["order_count"] > 3 and r["email"] for r in filtered["rows"])
    assert filtered["total_rows"] < body["total_rows"]

    as_csv = client.get(f"{url}?limit=4", headers={**headers, "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 4 and set(rows[0]) == set(body["columns"])
    assert as_csv.headers["x-total-rows"] == str(body["total_rows"])
    preferred = client.get(
        f"{url}?limit=1", headers={**headers, "Accept": "text/csv;q=0.5, application/json"}
    )
    assert preferred.headers["content-type"] == "application/json"
    problem(client.get(f"{url}?limit=1", headers={**headers, "Accept": "application/xml"}), 406)

    with app.state.service.sessions() as session:
        events = session.scalars(sa.select(UsageEvent).where(UsageEvent.user == "vera")).all()
    assert events and all(e.face == "api" and e.product == "dp_customer_360" for e in events)
    assert {e.rows for e in events} >= {5, 3, 4} and all(e.duration_ms is not None for e in events)


def test_query_refusals_name_the_problem(
    client: TestClient, tokens: dict[str, str], api_settings: Any
) -> None:
    headers = bearer(tokens["viewer"])
    url = f"{BASE}/dp_customer_360/query"
    most = api_settings.preview_max_rows
    over = problem(client.get(f"{url}?limit={most + 1}", headers=headers), 400)
    assert f"maximum of {most}" in over["detail"]
    assert client.get(f"{url}?limit={most}", headers=headers).status_code == 200  # at the maximum: fine
    problem(client.get(f"{url}?limit=0", headers=headers), 400)
    problem(client.get(f"{url}?limit=ten", headers=headers), 422)
    unknown = problem(client.get(f"{url}?columns=shoe_size", headers=headers), 400)
    assert "shoe_size" in unknown["detail"] and "customer_id" in unknown["detail"]
    syntax = problem(client.get(f"{url}?filter=order_count>3", headers=headers), 400)
    assert syntax["errors"][0]["field"] == "filter" and "column:op:value" in syntax["detail"]
    problem(client.get(f"{url}?filter=order_count:gt:many", headers=headers), 400)
    problem(client.get(f"{url}?filter=order_count:gt", headers=headers), 400)
    problem(client.get(f"{BASE}/dp_nothing/query", headers=headers), 404)


# --- creating: refusals (no build) ---------------------------------------------------------


def test_validation_refusals_are_422_with_the_forms_messages(
    client: TestClient, tokens: dict[str, str]
) -> None:
    bad = {
        **CARL,
        "name": "Refused Product",
        "update_frequency": "sometimes",
        "description": " ",
        "owner": "a b",
    }
    body = problem(client.post(f"{BASE}/", json=bad, headers=bearer(tokens["creator"])), 422)
    spec = ProductSpec(
        name="dp_refused_product", description=" ", data_product_type="CUSTOM", owner="a b",
        update_frequency="sometimes", primary_key=("order_id",), sql=CARL["source_query"], tags=("sales",),
    )  # fmt: skip
    expected = {(p.field, p.message) for p in validate_spec(spec)}
    assert {(e["field"], e["message"]) for e in body["errors"]} == expected
    assert {"update_frequency", "description", "owner"} <= {field for field, _ in expected}


def test_sql_refusals_name_the_position(client: TestClient, tokens: dict[str, str]) -> None:
    bad = {
        **CARL,
        "name": "Bad Sql",
        "source_query": "select order_id\nfrom silver.orders\njoin silver.nope using (order_id)",
    }
    body = problem(client.post(f"{BASE}/", json=bad, headers=bearer(tokens["creator"])), 422)
    error = next(e for e in body["errors"] if e["field"] == "source_query")
    assert "nope" in error["message"] and error["position"]["line"] == 3
    write = {**CARL, "name": "Sneaky", "source_query": "delete from silver.orders"}
    body = problem(client.post(f"{BASE}/", json=write, headers=bearer(tokens["creator"])), 422)
    assert body["errors"][0]["field"] == "source_query"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CARL, "colour": "red"}, "colour"),
        ({**CARL, "tags": "sales"}, "tags"),
        ({k: v for k, v in CARL.items() if k != "source_query"}, "source_query"),
        ({**CARL, "name": "!!!"}, "name"),
    ],
)
def test_malformed_bodies_are_422(
    client: TestClient, tokens: dict[str, str], body: dict[str, Any], field: str
) -> None:
    found = problem(client.post(f"{BASE}/", json=body, headers=bearer(tokens["creator"])), 422)
    assert field in {e["field"] for e in found["errors"]}


def test_not_json_is_422(client: TestClient, tokens: dict[str, str]) -> None:
    headers = {**bearer(tokens["creator"]), "Content-Type": "application/json"}
    problem(client.post(f"{BASE}/", content=b"{not json", headers=headers), 422)
    problem(client.post(f"{BASE}/", content=b"\xff\xfe\x00", headers=headers), 422)


def test_unknown_query_parameters_are_422(client: TestClient, tokens: dict[str, str]) -> None:
    body = problem(client.get(f"{BASE}/dp_customer_360/query?limt=5", headers=bearer(tokens["viewer"])), 422)
    assert body["errors"][0]["field"] == "limt" and "limit" in body["detail"]


def test_a_taken_name_is_409(client: TestClient, tokens: dict[str, str]) -> None:
    body = problem(
        client.post(f"{BASE}/", json={**CARL, "name": "Customer 360"}, headers=bearer(tokens["creator"])), 409
    )
    assert body["errors"][0]["field"] == "name" and "dp_customer_360" in body["detail"]


def test_a_body_over_the_limit_is_413(client: TestClient, tokens: dict[str, str], api_settings: Any) -> None:
    huge = {**CARL, "description": "x" * (api_settings.api_max_body_bytes + 1)}
    problem(client.post(f"{BASE}/", json=huge, headers=bearer(tokens["creator"])), 413)

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"name": "' + b"y" * api_settings.api_max_body_bytes
        yield b'"}'

    headers = {**bearer(tokens["creator"]), "Content-Type": "application/json"}
    problem(client.post(f"{BASE}/", content=chunks(), headers=headers), 413)


# --- role boundaries -----------------------------------------------------------------------


def test_viewers_may_not_write(
    client: TestClient, tokens: dict[str, str], carl_product: dict[str, Any]
) -> None:
    headers = bearer(tokens["viewer"])
    name = carl_product["product"]["name"]
    for response in (
        client.post(f"{BASE}/", json={**CARL, "name": "Viewer Product"}, headers=headers),
        client.patch(f"{BASE}/{name}", json={"description": "mine now"}, headers=headers),
        client.delete(f"{BASE}/{name}", headers=headers),
        client.post(f"{BASE}/{name}/run", headers=headers),
    ):
        body = problem(response, 403)
        assert "vera has the viewer role" in body["detail"] and "--role creator" in body["detail"]


def test_creators_may_not_touch_others_products(
    client: TestClient, tokens: dict[str, str], carl_product: dict[str, Any]
) -> None:
    headers = bearer(tokens["other"])
    name = carl_product["product"]["name"]
    for response in (
        client.patch(f"{BASE}/{name}", json={"description": "mine now"}, headers=headers),
        client.delete(f"{BASE}/{name}", headers=headers),
        client.post(f"{BASE}/{name}/run", headers=headers),
    ):
        body = problem(response, 403)
        assert "olga may" in body["detail"] and "created by carl" in body["detail"]
    # nor products written in dbt, which they neither created nor own
    problem(client.post(f"{BASE}/dp_customer_360/run", headers=headers), 403)


def test_admins_pass_authorization_and_meet_the_products_own_rules(
    client: TestClient, tokens: dict[str, str]
) -> None:
    body = problem(client.delete(f"{BASE}/dp_customer_360", headers=bearer(tokens["admin"])), 409)
    assert "written by hand in the dbt project" in body["detail"]
    body = problem(
        client.patch(f"{BASE}/dp_customer_360", json={"description": "x"}, headers=bearer(tokens["admin"])),
        409,
    )
    problem(
        client.patch(f"{BASE}/stg_orders", json={"description": "x"}, headers=bearer(tokens["admin"])), 404
    )


# --- the lifecycle of carl's product (real builds) -----------------------------------------


def test_create_answers_201_with_the_build(
    carl_product: dict[str, Any], client: TestClient, tokens: dict[str, str]
) -> None:
    assert carl_product["product"]["name"] == "dp_carl_orders"
    assert carl_product["product"]["status"] == "published"
    assert carl_product["run"]["status"] in {"published", "success"}
    assert {o["name"] for o in carl_product["outcomes"]} >= {"dp_carl_orders", "unique", "not_null"}
    detail = client.get(f"{BASE}/dp_carl_orders", headers=bearer(tokens["viewer"])).json()
    assert detail["created_by"] == "carl" and detail["owner"] == "sales-team"
    run = client.get(carl_product["run"]["url"], headers=bearer(tokens["viewer"])).json()
    assert (
        run["triggered_by"] == "carl"
        and run["product"] == "dp_carl_orders"
        and "Registering the model" in run["log_tail"]
    )
    assert run["publish"]["engine"] == "duckdb" and run["publish"]["published"] is True
    assert run["publish"]["outcome"] == "published" and run["publish"]["audit_schema"] == "audit"
    assert run["publish"]["branch"] is None and "copied to gold" in run["publish"]["summary"]


def test_creator_edits_refreshes_and_deprecates_their_product(
    client: TestClient, tokens: dict[str, str], carl_product: dict[str, Any], app: Any
) -> None:
    headers = bearer(tokens["creator"])
    refused = problem(
        client.patch(f"{BASE}/dp_carl_orders", json={"update_frequency": "sometimes"}, headers=headers), 422
    )
    assert refused["errors"][0]["field"] == "update_frequency"
    problem(client.patch(f"{BASE}/dp_carl_orders", json={"name": "dp_renamed"}, headers=headers), 422)

    edited = client.patch(
        f"{BASE}/dp_carl_orders?wait=true", json={"description": "Orders, edited."}, headers=headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["state"] == "published"
    # an edit that changes nothing builds nothing (it used to rebuild the product)
    runs_before = client.get(f"{BASE}/dp_carl_orders/runs", headers=headers).json()
    for same in ({}, {"description": "Orders, edited."}):
        answer = client.patch(f"{BASE}/dp_carl_orders", json=same, headers=headers)
        assert answer.status_code == 200 and answer.json()["state"] == "unchanged", answer.text
        assert answer.json()["run"] is None
    assert client.get(f"{BASE}/dp_carl_orders/runs", headers=headers).json() == runs_before
    assert client.get(f"{BASE}/dp_carl_orders", headers=headers).json()["description"] == "Orders, edited."

    started = client.post(f"{BASE}/dp_carl_orders/run", headers=headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["run"]["id"]
    finished = wait_for_run(lambda url: client.get(url, headers=headers), run_id)
    assert finished["status"] == "success" and finished["selector"] == "+dp_carl_orders"
    assert {n["name"] for n in finished["nodes"]} >= {"dp_carl_orders"}
    assert run_id in {r["id"] for r in client.get(f"{BASE}/dp_carl_orders/runs", headers=headers).json()}

    deprecated = client.delete(f"{BASE}/dp_carl_orders", headers=headers)
    assert deprecated.status_code == 200, deprecated.text
    assert deprecated.json()["status"] == "deprecated"
    assert (
        client.get(f"{BASE}/dp_carl_orders/query?limit=1", headers=headers).status_code == 200
    )  # still readable

    with app.state.service.sessions() as session:
        actions = set(
            session.scalars(sa.select(AuditEvent.action).where(AuditEvent.object_id == "dp_carl_orders"))
        )
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == "dp_carl_orders"))
    assert {"product.created", "product.edited", "product.refresh_requested", "product.deprecated"} <= actions
    assert row is not None and row.status == "deprecated"


def test_a_queued_creation_answers_with_its_run(
    client: TestClient, tokens: dict[str, str], api_settings: Settings
) -> None:
    """Queued behind another build, a creation already has its run to follow (and to recover,
    should the process die while it waits)."""
    headers = bearer(tokens["creator"])
    body = {**CARL, "name": "Carl Queued"}
    with project_lock(api_settings):  # another build holds the project
        queued = client.post(f"{BASE}/", json=body, headers=headers)
        assert queued.status_code == 202, queued.text
        assert queued.json()["state"] == "queued" and queued.json()["run"]["status"] == "queued"
        run_id = queued.json()["run"]["id"]
    finished = wait_for_run(lambda url: client.get(url, headers=headers), run_id)
    assert finished["status"] == "success" and finished["product"] == "dp_carl_queued"
