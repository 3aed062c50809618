"""OpenLineage run events of real builds on a private copy of the demo, delivered over real HTTP
to a receiver this module starts on 127.0.0.1 (as Marquez would receive them).

No package on PyPI, npm or Maven ships the OpenLineage spec's JSON schema files (openlineage-python,
openlineage-integration-common, openlineage-dbt and openlineage-java carry generated code only), so
`SPEC` below is the spec's required structure of a RunEvent and of the facets the portal sends,
transcribed from OpenLineage.json 2-0-2 and the facets' schemas, and checked with jsonschema; the
portal's own facets are checked against the schema it ships (portal/integrations/openlineage_facets.json).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from portal.auth.identity import Identity
from portal.creation.flow import create
from portal.creation.spec import ProductSpec
from portal.integrations import openlineage
from portal.observability.refresh import refresh_one
from portal.runs import run_log
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

pytestmark = pytest.mark.slow
ME = Identity("tester")
FACETS_SCHEMA = json.loads(
    (Path(openlineage.__file__).parent / "openlineage_facets.json").read_text(encoding="utf-8")
)

_FACET = {"type": "object", "required": ["_producer", "_schemaURL"]}
_DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "facets": {"type": "object", "additionalProperties": _FACET},
        "inputFacets": {"type": "object", "additionalProperties": _FACET},
        "outputFacets": {"type": "object", "additionalProperties": _FACET},
    },
}
SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": {"type": "object", "additionalProperties": _FACET},
            },
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"facets": {"type": "object", "additionalProperties": _FACET}},
        },
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
}
FACET_SPECS: dict[str, dict[str, Any]] = {
    "schema": {
        "properties": {
            "fields": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        }
    },
    "columnLineage": {
        "required": ["fields"],
        "properties": {
            "fields": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["inputFields"],
                    "properties": {
                        "inputFields": {
                            "type": "array",
                            "items": {"type": "object", "required": ["namespace", "name", "field"]},
                        }
                    },
                },
            }
        },
    },
    "dataQualityAssertions": {
        "required": ["assertions"],
        "properties": {
            "assertions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["assertion", "success"],
                    "properties": {"success": {"type": "boolean"}},
                },
            }
        },
    },
    "outputStatistics": {"required": ["rowCount"], "properties": {"rowCount": {"type": "integer"}}},
    "errorMessage": {"required": ["message", "programmingLanguage"]},
    "processing_engine": {"required": ["version"]},
    "jobType": {"required": ["processingType", "integration"]},
}
OWN_FACETS = {"asgardPortalRun": "PortalRunFacet", "nessieWriteAuditPublish": "NessieRunFacet"}


def validate(event: dict[str, Any]) -> None:
    """The event holds to the spec's RunEvent, each standard facet to its schema, the portal's
    facets to the schema it ships."""
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.validate(event, SPEC, format_checker=checker)
    facet_groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        facet_groups += [dataset.get(k, {}) for k in ("facets", "inputFacets", "outputFacets")]
    for facets in facet_groups:
        for key, facet in facets.items():
            if key in OWN_FACETS:
                schema = {**FACETS_SCHEMA, "$ref": f"#/$defs/{OWN_FACETS[key]}"}
                jsonschema.validate(facet, schema, format_checker=checker)
                assert facet["_schemaURL"].endswith(f"#/$defs/{OWN_FACETS[key]}")
            elif key in FACET_SPECS:
                jsonschema.validate(facet, {"type": "object", **FACET_SPECS[key]}, format_checker=checker)
                assert facet["_schemaURL"].startswith("https://openlineage.io/spec/facets/")


class Receiver:
    """A lineage backend on 127.0.0.1: keeps each POSTed event (and its Authorization header), or
    hangs for `hang_s` before answering, as a stuck backend would."""

    def __init__(self, hang_s: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.authorization: list[str | None] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hang_s:
                    time.sleep(hang_s)
                receiver.paths.append(self.path)
                receiver.authorization.append(self.headers.get("Authorization"))
                receiver.events.append(json.loads(body))
                self.send_response(201)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # the test's output stays quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_job(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["job"]["name"] == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def portal(demo_env: dict[str, str], tmp_path: Path, **env: str) -> PortalService:
    openlineage.drain(30)  # an earlier test's events are not this one's
    return PortalService(Settings.from_env({**copy_demo(demo_env, tmp_path / "portal"), **env}))


def orders_spec(name: str, sql: str | None = None) -> ProductSpec:
    return ProductSpec(
        name=name,
        description="Orders per customer.",
        data_product_type="CUSTOMER_360",
        owner="customer-analytics-team",
        consumers=("Marketing",),
        update_frequency="daily",
        tags=("customer",),
        primary_key=("customer_id",),
        materialization="table",
        sql=sql or "select customer_id, count(order_id) as order_count from int_orders group by customer_id",
        column_descriptions={},
    )


def test_a_creation_sends_start_then_complete_over_http(
    demo_env: dict[str, str], tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OpenLineage client's own variables, as every OpenLineage integration reads them.
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "s3cret")
    service = portal(demo_env, tmp_path)
    result = create(service, orders_spec("dp_lineage_orders"), ME)
    assert result.status == "published", result.log
    assert openlineage.drain(30)

    events = receiver.of_job("asgard.dp_lineage_orders")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        validate(event)
    start, complete = events
    assert receiver.paths == ["/api/v1/lineage"] * len(receiver.paths)
    assert set(receiver.authorization) == {"Bearer s3cret"}
    assert start["job"]["namespace"] == "asgard-portal"
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert uuid.UUID(complete["run"]["runId"])
    portal_run = complete["run"]["facets"]["asgardPortalRun"]
    assert (portal_run["runId"], portal_run["kind"], portal_run["status"]) == (
        result.run_id,
        "creation",
        "success",
    )

    node = service.resolve("dp_lineage_orders")
    [output] = complete["outputs"]
    assert output["namespace"] == f"duckdb://{service.settings.duckdb_path.resolve()}"
    assert output["name"] == f"{node.database}.{node.schema}.{node.alias or node.name}"
    assert output["name"].endswith(f".{service.settings.gold_schema}.dp_lineage_orders")
    fields = output["facets"]["schema"]["fields"]
    assert fields[0]["name"] == "customer_id" and all(f["type"] for f in fields)  # typed as built
    assert {f["name"] for f in fields} == {"customer_id", "order_count"}
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == result.row_count
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    assert {(a["assertion"], a["column"], a["success"]) for a in assertions} >= {
        ("unique", "customer_id", True),
        ("not_null", "customer_id", True),
    }
    # its input is the model its SQL reads, named as the warehouse names it
    [int_orders] = [n for n in service.artifacts().manifest.models() if n.name == "int_orders"]
    assert [i["name"] for i in complete["inputs"]] == [
        f"{int_orders.database}.{int_orders.schema}.int_orders"
    ]
    lineage = output["facets"]["columnLineage"]["fields"]
    assert {(f["name"], f["field"]) for f in lineage["customer_id"]["inputFields"]} == {
        (complete["inputs"][0]["name"], "customer_id")
    }


def test_a_failed_audit_sends_fail_with_its_failing_test(
    demo_env: dict[str, str], tmp_path: Path, receiver: Receiver
) -> None:
    service = portal(
        demo_env, tmp_path, PORTAL_OPENLINEAGE_TRANSPORT="http", PORTAL_OPENLINEAGE_URL=receiver.url
    )
    # order lines repeat the order's customer: customer_id is no key here
    result = create(
        service, orders_spec("dp_lineage_lines", "select customer_id, order_id from int_orders"), ME
    )
    assert result.status == "failed", result.log
    assert openlineage.drain(30)

    events = receiver.of_job("asgard.dp_lineage_lines")
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    for event in events:
        validate(event)
    fail = events[1]
    assert "unique" in fail["run"]["facets"]["errorMessage"]["message"]
    assertions = fail["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert ("unique", "customer_id", False) in {
        (a["assertion"], a["column"], a["success"]) for a in assertions
    }
    assert "outputStatistics" not in fail["outputs"][0]["outputFacets"]  # nothing was published


def test_a_refresh_carries_the_portals_column_lineage(
    demo_env: dict[str, str], tmp_path: Path, receiver: Receiver
) -> None:
    service = portal(
        demo_env, tmp_path, PORTAL_OPENLINEAGE_TRANSPORT="http", PORTAL_OPENLINEAGE_URL=receiver.url
    )
    refreshed = refresh_one(service, "dp_customer_360")
    assert refreshed.status == "success", refreshed.message
    assert openlineage.drain(30)

    events = receiver.of_job("asgard.dp_customer_360")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        validate(event)
    complete = events[1]
    assert complete["run"]["facets"]["asgardPortalRun"]["kind"] == "refresh"
    [output] = complete["outputs"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] > 0
    manifest = service.artifacts().manifest
    sent = output["facets"]["columnLineage"]["fields"]
    columns = [f["name"] for f in output["facets"]["schema"]["fields"]]
    assert len(sent) >= len(columns) // 2  # most of its columns trace (its SQL is plain dbt)
    for column in columns:
        lineage = service.column_lineage("dp_customer_360", column)
        expected = set()
        for target, upstream in lineage.edges:
            if target == lineage.target:
                parent = manifest.get(upstream.unique_id)
                assert parent is not None
                expected.add(
                    (f"{parent.database}.{parent.schema}.{parent.alias or parent.name}", upstream.column)
                )
        got = {(f["name"], f["field"]) for f in sent.get(column, {}).get("inputFields", [])}
        assert got == expected, column
    # every dataset the lineage names is one of the job's inputs
    inputs = {i["name"] for i in complete["inputs"]}
    assert {f["name"] for fields in sent.values() for f in fields["inputFields"]} <= inputs


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_backend_that_is_down_or_hangs_never_fails_or_slows_a_build(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    down = portal(
        demo_env,
        tmp_path / "down",
        PORTAL_OPENLINEAGE_TRANSPORT="http",
        PORTAL_OPENLINEAGE_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    began = time.perf_counter()
    result = create(down, orders_spec("dp_lineage_down"), ME)
    down_s = time.perf_counter() - began
    assert result.status == "published", result.log
    assert openlineage.drain(30)
    log_text = run_log(down, result.run_id or 0) or ""
    warnings = [line for line in log_text.splitlines() if line.startswith("Warning: the OpenLineage")]
    assert [w.split()[3] for w in warnings] == ["START", "COMPLETE"], log_text[-2000:]
    assert "could not be sent to http://127.0.0.1:" in warnings[0]

    timeout_s = 15.0
    hanging = Receiver(hang_s=timeout_s + 10)  # answers long after the portal gave up
    try:
        stuck = portal(
            demo_env,
            tmp_path / "stuck",
            PORTAL_OPENLINEAGE_TRANSPORT="http",
            PORTAL_OPENLINEAGE_URL=hanging.url,
            PORTAL_OPENLINEAGE_TIMEOUT_S=str(timeout_s),
        )
        began = time.perf_counter()
        result = create(stuck, orders_spec("dp_lineage_stuck"), ME)
        stuck_s = time.perf_counter() - began
        assert result.status == "published", result.log
        # Sent in the build's thread, START and COMPLETE would add two timeouts (30 s) to the build;
        # queued, they add nothing: it takes about what the same build took with the backend down.
        print(
            f"build: {down_s:.1f}s with the backend down, {stuck_s:.1f}s with it hanging ({timeout_s:.0f}s timeout)"
        )
        assert stuck_s < down_s + timeout_s
        assert openlineage.drain(3 * timeout_s)
        log_text = run_log(stuck, result.run_id or 0) or ""
        warnings = [line for line in log_text.splitlines() if line.startswith("Warning: the OpenLineage")]
        assert [w.split()[3] for w in warnings] == ["START", "COMPLETE"], log_text[-2000:]
        assert all("timed out" in w.lower() for w in warnings), warnings
    finally:
        hanging.close()
