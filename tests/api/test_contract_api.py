"""`GET /api/v1/data-products/{id}/contract` and `POST /api/v1/data-products/from-contract` on a
private copy of the demo: the contract as a YAML download, a contract read into a create body,
and that body (with its SQL) creating a product whose own contract says the same."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi.testclient import TestClient

from tests.api.conftest import bearer

BASE = "/api/v1/data-products"


def test_the_contract_downloads_as_yaml(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get(f"{BASE}/dp_customer_360/contract", headers=bearer(tokens["viewer"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.headers["content-disposition"] == 'attachment; filename="dp_customer_360.odcs.yaml"'
    document = yaml.safe_load(response.text)
    assert document["kind"] == "DataContract" and document["name"] == "dp_customer_360"
    assert client.get(f"{BASE}/dp_customer_360/contract").status_code == 401  # no token, not local


def test_an_unknown_product_has_no_contract(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get(f"{BASE}/dp_nothing/contract", headers=bearer(tokens["viewer"]))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_malformed_contract_is_a_problem_naming_the_path(
    client: TestClient, tokens: dict[str, str]
) -> None:
    bad = (
        "apiVersion: v3.2.0\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: draft\n"
        "schema:\n- name: dp_x\n  properties:\n  - name: id\n    primaryKey: sure\n"
    )
    response = client.post(f"{BASE}/from-contract", json={"contract": bad}, headers=bearer(tokens["creator"]))
    assert response.status_code == 400, response.text
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in body["errors"]] == ["contract.schema[0].properties[0].primaryKey"]
    assert "boolean" in body["errors"][0]["message"] and "Traceback" not in response.text
    unreadable = client.post(
        f"{BASE}/from-contract", json={"contract": "a: [1,"}, headers=bearer(tokens["creator"])
    )
    assert unreadable.status_code == 400 and unreadable.json()["errors"][0]["position"] == {
        "line": 1,
        "column": 7,
    }


def test_a_viewer_may_not_start_a_product_from_a_contract(client: TestClient, tokens: dict[str, str]) -> None:
    contract = client.get(f"{BASE}/dp_customer_360/contract", headers=bearer(tokens["viewer"])).text
    response = client.post(
        f"{BASE}/from-contract", json={"contract": contract}, headers=bearer(tokens["viewer"])
    )
    assert response.status_code == 403


def test_a_contract_creates_a_product_whose_contract_says_the_same(local: TestClient) -> None:
    """contract -> create body -> product (a real dbt build) -> contract: the fields a create
    body carries come back as they went in. (dp_product_performance: dp_customer_360's consumers,
    "Customer Success", are no names the portal's own form accepts.)"""
    original = local.get(f"{BASE}/dp_product_performance/contract").text
    filled = local.post(f"{BASE}/from-contract", json={"contract": original})
    assert filled.status_code == 200, filled.text
    body: dict[str, Any] = filled.json()
    assert body["source_query"] == "" and body["primary_key"] == ["product_id"]
    body |= {"name": "dp_product_mirror", "source_query": "select * from dp_product_performance"}
    created = local.post(f"{BASE}/?wait=true", json=body)
    assert created.status_code == 201, created.text
    mirror = yaml.safe_load(local.get(f"{BASE}/dp_product_mirror/contract").text)
    source = yaml.safe_load(original)
    for field in ("tags", "description", "slaProperties"):
        assert _renamed(mirror[field]) == _renamed(source[field]), field
    assert mirror["team"]["name"] == source["team"]["name"]
    custom = ("dataProductType", "owner", "consumers", "updateFrequency", "materialization")
    assert _custom(mirror, custom) == _custom(source, custom)
    columns = ("name", "physicalType", "logicalType", "description", "primaryKey", "primaryKeyPosition")
    assert _columns(mirror, columns) == _columns(source, columns)


def _renamed(value: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(value).replace("dp_product_mirror", "dp_product_performance"))


def _custom(document: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {p["property"]: p["value"] for p in document["customProperties"] if p["property"] in names}


def _columns(document: dict[str, Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{f: p.get(f) for f in fields} for p in document["schema"][0]["properties"]]
