"""`GET /api/v1/data-products/{id}/query` with more, longer or odder filters and columns than a
preview takes: each is a 400 problem that names the limit or the value and what is accepted, and
none echoes the SQL the portal built."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal.warehouse.base import MAX_COLUMNS, MAX_FILTERS, MAX_VALUE_CHARS
from tests.api.conftest import bearer

URL = "/api/v1/data-products/dp_customer_360/query"


def problem(response: Any, status: int = 400) -> str:
    """The problem's detail, after checking its status and shape, and that it quotes no SQL."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    assert "SELECT" not in detail.upper() and "LINE 1" not in detail and 'dp_customer_360"' not in detail
    assert len(detail) < 2000
    return detail


def ask(client: TestClient, tokens: dict[str, str], *params: tuple[str, str]) -> Any:
    return client.get(URL, params=[("limit", "5"), *params], headers=bearer(tokens["viewer"]))


# --- how many ---------------------------------------------------------------------------------


def test_filters_at_the_cap_are_answered(client: TestClient, tokens: dict[str, str]) -> None:
    kinds = ["order_count:ge:0", "email:notnull", "segment:contains:a", "lifetime_value:ge:0"]
    filters = [("filter", kinds[i % len(kinds)]) for i in range(MAX_FILTERS)]
    response = ask(client, tokens, *filters)
    assert response.status_code == 200, response.text
    narrowed = ask(client, tokens, *[("filter", k) for k in kinds]).json()
    assert response.json()["total_rows"] == narrowed["total_rows"] > 0


@pytest.mark.parametrize("count", [MAX_FILTERS + 1, 200, 1000])
def test_more_filters_than_the_cap_are_a_400_naming_the_cap(
    client: TestClient, tokens: dict[str, str], count: int
) -> None:
    started = time.monotonic()
    detail = problem(ask(client, tokens, *[("filter", "order_count:gt:1")] * count))
    assert f"at most {MAX_FILTERS} filters (got {count:,})" in detail
    assert time.monotonic() - started < 10  # refused up front, not after building 2 x count conditions


def test_more_columns_than_the_cap_are_a_400_naming_the_cap(
    client: TestClient, tokens: dict[str, str]
) -> None:
    count = MAX_COLUMNS + 1
    detail = problem(ask(client, tokens, ("columns", ",".join(["customer_id"] * count))))
    assert f"at most {MAX_COLUMNS} columns (got {count:,})" in detail
    repeated = ask(client, tokens, *[("columns", "customer_id")] * count)
    assert f"(got {count:,})" in problem(repeated)


def test_a_column_asked_for_twice_comes_back_once(client: TestClient, tokens: dict[str, str]) -> None:
    for params in (
        [("columns", "customer_id,email,customer_id")],
        [("columns", "customer_id"), ("columns", "email"), ("columns", "customer_id")],
    ):
        response = ask(client, tokens, *params)
        assert response.status_code == 200, response.text
        assert response.json()["columns"] == ["customer_id", "email"]
        as_csv = client.get(URL, params=params, headers={**bearer(tokens["viewer"]), "Accept": "text/csv"})
        assert as_csv.status_code == 200 and as_csv.text.splitlines()[0] == "customer_id,email"


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "accepted"),
    [
        ("order_count", "1e999", "whole number from -9223372036854775808 to 9223372036854775807"),
        ("order_count", "nan", "64-bit"),
        ("order_count", "inf", "64-bit"),
        ("order_count", "-inf", "64-bit"),
        ("order_count", "1180591620717411303424", "64-bit"),
        ("days_since_last_order", "99999999999", "32-bit"),
        ("lifetime_value", "1e999", "at most 16 digits before the decimal point and 2 after it"),
        ("lifetime_value", "NaN", "finite number"),
        ("lifetime_value", "0.001", "2 after it"),
    ],
)
def test_numbers_out_of_range_are_a_400_naming_column_value_and_range(
    client: TestClient, tokens: dict[str, str], column: str, value: str, accepted: str
) -> None:
    detail = problem(ask(client, tokens, ("filter", f"{column}:gt:{value}")))
    assert f"{column!r} is numeric" in detail and repr(value) in detail and accepted in detail


@pytest.mark.parametrize(
    ("column", "op", "value", "accepted"),
    [
        ("first_order_date", "eq", "tomorrow", "a date like 2024-01-31"),
        ("first_order_date", "lt", "2024-13-01", "a date like 2024-01-31"),
        ("signed_up_at", "lt", "nope", "a date and time like"),
        ("signed_up_at", "lt", "2024-01-01 10:00:00+02:00", "without a UTC offset"),
        ("marketing_opt_in", "eq", "maybe", "true or false"),
    ],
)
def test_values_that_are_not_the_columns_type_are_a_400(
    client: TestClient, tokens: dict[str, str], column: str, op: str, value: str, accepted: str
) -> None:
    detail = problem(ask(client, tokens, ("filter", f"{column}:{op}:{value}")))
    assert repr(column) in detail and repr(value) in detail and accepted in detail


def test_values_of_the_columns_type_are_answered(client: TestClient, tokens: dict[str, str]) -> None:
    everyone = ask(client, tokens).json()["total_rows"]
    opted = ask(client, tokens, ("filter", "marketing_opt_in:eq:TRUE")).json()["total_rows"]
    not_opted = ask(client, tokens, ("filter", "marketing_opt_in:eq:false")).json()["total_rows"]
    assert 0 < opted < everyone and opted + not_opted <= everyone
    for flt in (
        "first_order_date:ge:2000-01-01",
        "signed_up_at:lt:2100-01-01T00:00:00",
        "order_count:ge:1e0",
        f"order_count:lt:{2**63 - 1}",
        "lifetime_value:ge:-0.5",
    ):
        response = ask(client, tokens, ("filter", flt))
        assert response.status_code == 200, (flt, response.text)


def test_a_value_over_the_length_cap_is_a_400(client: TestClient, tokens: dict[str, str]) -> None:
    assert ask(client, tokens, ("filter", "email:eq:" + "x" * MAX_VALUE_CHARS)).status_code == 200
    detail = problem(ask(client, tokens, ("filter", "email:contains:" + "x" * (MAX_VALUE_CHARS + 1))))
    assert f"{MAX_VALUE_CHARS + 1:,} characters" in detail and f"at most {MAX_VALUE_CHARS:,}" in detail


def test_nul_bytes_and_broken_utf8_are_refused_or_replaced(
    client: TestClient, tokens: dict[str, str]
) -> None:
    headers = bearer(tokens["viewer"])
    assert "NUL" in problem(client.get(f"{URL}?filter=email:eq:a%00b", headers=headers))
    assert "has no column" in problem(client.get(f"{URL}?filter=em%00ail:eq:a", headers=headers))
    assert "has no column" in problem(client.get(f"{URL}?columns=em%00ail", headers=headers))
    # A lone surrogate cannot be sent as UTF-8: its bytes arrive as replacement characters.
    surrogate = client.get(f"{URL}?limit=1&filter=email:eq:%ED%A0%80", headers=headers)
    assert surrogate.status_code == 200 and surrogate.json()["total_rows"] == 0
    assert "has no column" in problem(client.get(f"{URL}?columns=%ED%A0%80", headers=headers))


def test_long_names_and_broken_filters_are_quoted_briefly(client: TestClient, tokens: dict[str, str]) -> None:
    name = "c" * 20_000
    for params in ([("columns", name)], [("filter", f"{name}:eq:1")], [("filter", name)]):
        problem(ask(client, tokens, *params))


def test_limits_far_out_of_range_are_refused(client: TestClient, tokens: dict[str, str]) -> None:
    detail = problem(ask(client, tokens, ("limit", str(10**30))))
    assert "over the maximum" in detail
    assert 400 <= ask(client, tokens, ("limit", "9" * 5000)).status_code < 500
    assert 400 <= ask(client, tokens, ("limit", "-" + "9" * 5000)).status_code < 500
