"""Which transport the settings and the OpenLineage client's own variables choose, and the event
type and run id a run's facts give (the events themselves: tests/integration/test_openlineage.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from openlineage.client.event_v2 import RunState
from openlineage.client.transport.file import FileTransport
from openlineage.client.transport.http import HttpTransport

from portal.integrations.openlineage import RunFacts, event_type, run_uuid, transport_for
from portal.settings import SettingError, Settings


def settings(**env: str) -> Settings:
    return Settings.from_env({f"PORTAL_OPENLINEAGE_{k.upper()}": v for k, v in env.items()})


def test_off_by_default_and_on_with_the_standard_variables() -> None:
    assert transport_for(settings(), {}) is None
    transport = transport_for(
        settings(), {"OPENLINEAGE_URL": "http://marquez:5000", "OPENLINEAGE_API_KEY": "k"}
    )
    assert isinstance(transport, HttpTransport)
    assert (transport.url, transport.endpoint) == ("http://marquez:5000", "api/v1/lineage")
    assert transport.config.auth.get_bearer() == "Bearer k"
    assert transport_for(settings(), {"OPENLINEAGE_URL": "http://m", "OPENLINEAGE_DISABLED": "true"}) is None
    assert transport_for(settings(transport="off"), {"OPENLINEAGE_URL": "http://m"}) is None


def test_the_portals_settings_take_precedence_and_bound_each_send() -> None:
    transport = transport_for(
        settings(transport="http", url="http://datahub:8080", api_key="p", timeout_s="1.5"),
        {"OPENLINEAGE_URL": "http://other", "OPENLINEAGE_API_KEY": "o", "OPENLINEAGE_ENDPOINT": "openapi/ol"},
    )
    assert isinstance(transport, HttpTransport)
    assert (transport.url, transport.endpoint, transport.timeout) == (
        "http://datahub:8080",
        "openapi/ol",
        1.5,
    )
    assert transport.config.auth.get_bearer() == "Bearer p"
    assert transport.config.retry["total"] == 0  # a backend that is down is not asked again


def test_http_without_a_url_says_what_to_set() -> None:
    with pytest.raises(SettingError, match="PORTAL_OPENLINEAGE_URL"):
        transport_for(settings(transport="http"), {})


def test_the_file_transport_appends_to_the_configured_file(tmp_path: Path) -> None:
    transport = transport_for(settings(transport="file", file=str(tmp_path / "ol" / "events.jsonl")), {})
    assert isinstance(transport, FileTransport) and transport.config.append
    assert (tmp_path / "ol").is_dir()


def facts(**changes: object) -> RunFacts:
    fields: dict[str, object] = {
        "run_id": 7,
        "started_as": 7,
        "started_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "kind": "creation",
        "product": "dp_x",
        "selector": "dp_x",
        "triggered_by": "me",
        "status": "success",
    }
    fields.update(changes)
    return RunFacts(**fields)  # type: ignore[arg-type]


def test_how_a_run_ended_is_its_event_type() -> None:
    assert event_type(facts()) == RunState.COMPLETE
    assert event_type(facts(status="partial")) == RunState.FAIL
    assert event_type(facts(status="error", stopped="timeout")) == RunState.FAIL
    assert event_type(facts(status="error", stopped="cancelled")) == RunState.ABORT
    assert event_type(facts(status="error", interrupted="its process is gone")) == RunState.ABORT


def test_the_run_id_is_the_same_uuid_for_start_and_end_and_differs_per_run() -> None:
    assert run_uuid(facts()) == run_uuid(facts(run_id=9, status="error"))  # merged row, same start
    assert run_uuid(facts()) != run_uuid(facts(started_as=8))
    naive = facts(started_at=datetime(2026, 1, 2, 3, 4, 5))  # SQLite hands datetimes back naive
    assert run_uuid(naive) == run_uuid(facts())
