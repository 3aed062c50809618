"""Text dbt could not read back, sent through the API: refused with the field and the character,
never a 500, never a file or a row. (A lone surrogate in `column_descriptions` once reached a
product's YAML and broke the parse of the whole project; in `description` it was a 500.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from tests.api.test_api import BASE, CARL, problem

# JSON's own escape for half a surrogate pair: valid JSON, not valid Unicode text.
SURROGATE = "\\udfff"


def _raw(body: dict[str, Any], field: str, text: str) -> bytes:
    """The body as JSON with `text` (already JSON-escaped) as the value of `field`."""
    encoded = json.dumps({**body, field: "@@"})
    return encoded.replace('"@@"', f'"{text}"').encode()


@pytest.mark.parametrize(
    ("field", "text", "where"),
    [
        ("description", f"Orders {SURROGATE}", "description"),
        ("owner", f"sales{SURROGATE}", "owner"),
        ("source_query", f"select order_id as x{SURROGATE} from silver.orders", "source_query"),
        ("description", "Orders \\uffff", "description"),
    ],
)
def test_unreadable_text_is_refused_on_create(
    client: TestClient, tokens: dict[str, str], field: str, text: str, where: str
) -> None:
    headers = {**bearer(tokens["creator"]), "content-type": "application/json"}
    body = {**CARL, "name": "Hostile Text"}
    refused = problem(client.post(f"{BASE}/", content=_raw(body, field, text), headers=headers), 422)
    assert any(e["field"] == where and "U+" in e["message"] for e in refused["errors"]), refused
    assert client.get(f"{BASE}/dp_hostile_text", headers=headers).status_code == 404  # nothing registered


def test_unreadable_column_description_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    headers = {**bearer(tokens["creator"]), "content-type": "application/json"}
    body = {**CARL, "name": "Hostile Columns", "column_descriptions": {"order_id": "@@"}}
    raw = json.dumps(body).replace('"@@"', f'"id {SURROGATE}"').encode()
    refused = problem(client.post(f"{BASE}/", content=raw, headers=headers), 422)
    (error,) = refused["errors"]
    assert error["field"] == "column_descriptions.order_id" and "U+DFFF" in error["message"]


def test_a_name_too_long_is_refused_not_cut(client: TestClient, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["creator"])
    refused = problem(client.post(f"{BASE}/", json={**CARL, "name": "Revenue " * 16}, headers=headers), 422)
    assert any(e["field"] == "name" and "the limit is 64" in e["message"] for e in refused["errors"])
    names = {p["name"] for p in client.get(f"{BASE}/?limit=500", headers=headers).json()["items"]}
    assert not any(name.startswith("dp_revenue_revenue") for name in names)
