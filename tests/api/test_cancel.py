"""POST /api/v1/runs/{id}/cancel: the owner (or an admin) stops a running build; others may not,
and a finished run has nothing to cancel. Real builds on the module's private copy of the demo."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog_db.models import AuditEvent, DataProduct, Run
from tests.api.conftest import bearer, wait_for_run

pytestmark = pytest.mark.slow

BASE = "/api/v1/data-products"
# The product: a view whose dry run is instant and whose key tests never end (~10^13 rows).
SLOW = {
    "name": "Order Quads",
    "description": "Every four orders, for a build that has to be cancelled.",
    "owner": "sales-team",
    "source_query": (
        "select concat_ws('-', a.order_id, b.order_id, c.order_id, d.order_id) as id, a.customer_id "
        "from int_orders a cross join int_orders b cross join int_orders c cross join int_orders d "
        "where (a.order_id * 7919 + b.order_id * 104729 + c.order_id * 1299709 + d.order_id) % 1000003 = 0"
    ),
    "primary_key": ["id"],
    "materialization": "view",
}


def cancel(client: TestClient, run_id: int, secret: str) -> Any:
    return client.post(f"/api/v1/runs/{run_id}/cancel", headers=bearer(secret))


def test_the_owner_cancels_a_running_creation(
    client: TestClient, tokens: dict[str, str], app: FastAPI
) -> None:
    started = client.post(f"{BASE}/", json=SLOW, headers=bearer(tokens["creator"]))
    assert started.status_code == 202, started.text
    assert started.json()["run"] is not None, started.json()  # building, not queued
    run_id = started.json()["run"]["id"]

    # not theirs: another creator and a viewer are refused, and the build goes on
    refused = cancel(client, run_id, tokens["other"])
    assert refused.status_code == 403, refused.text
    assert "olga may not cancel" in refused.json()["detail"] and "created by carl" in refused.json()["detail"]
    assert cancel(client, run_id, tokens["viewer"]).status_code == 403

    # asked before its audit build has started, the cancel stops that build once it does
    answer = cancel(client, run_id, tokens["creator"])
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == run_id and answer.json()["status"] in ("queued", "running")
    cancelled_at = time.monotonic()

    finished = wait_for_run(lambda url: client.get(url, headers=bearer(tokens["viewer"])), run_id, 120)
    assert time.monotonic() - cancelled_at < 60
    assert finished["status"] == "error"
    assert "dbt was stopped: cancelled by carl." in finished["log_tail"]
    assert finished["publish"]["published"] is False
    assert finished["publish"]["message"] == "dbt was stopped: cancelled by carl."

    # finished: nothing left to cancel
    again = cancel(client, run_id, tokens["creator"])
    assert again.status_code == 409 and "already finished (error)" in again.json()["detail"]
    assert cancel(client, 2**40, tokens["admin"]).status_code == 404

    with app.state.service.sessions() as session:
        run = session.get_one(Run, run_id)
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == "dp_order_quads"))
        requested = session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "run.cancel_requested", AuditEvent.object_id == str(run_id)
            )
        ).all()
    assert run.details and run.details["stopped"] == "cancelled" and run.details["cancelled_by"] == "carl"
    assert row is not None and row.status == "failed"
    assert [(e.actor, e.detail["product"]) for e in requested] == [("carl", "dp_order_quads")]

    # and the name is the owner's to resubmit, cheaper
    retried = client.patch(
        f"{BASE}/dp_order_quads?wait=true",
        json={"source_query": "select concat_ws('-', order_id) as id, customer_id from int_orders"},
        headers=bearer(tokens["creator"]),
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "published"
