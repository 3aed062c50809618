"""Creation and edit builds end (issue 12): an audit build that outruns PORTAL_BUILD_TIMEOUT_S is
stopped, the product is not published (a first creation ends `failed`, an edit keeps the published
version), nothing half-built is left in the audit schema, and a cheaper resubmission publishes.

Real dbt on a private copy of the demo. The slow product is the issue's: a view over a cross join
whose 10-row dry run is instant, while its `unique` and `not_null` tests scan ~10^13 rows silently.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from catalog_db.models import AuditEvent, DataProduct, Run
from portal.auth.identity import Identity
from portal.creation import lifecycle
from portal.creation.flow import CreationResult, create, edit
from portal.creation.scaffold import product_paths
from portal.creation.spec import ProductSpec
from portal.project.dbt_runner import run_dbt
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

pytestmark = pytest.mark.slow
ME = Identity("tester")
NAME = "dp_order_quads"
# Well above what a cheap audit build takes here (dbt's start-up, a partial parse, a view and two
# tests: under 10 s on a busy machine), and far below what the slow one would.
TIMEOUT_S = 20
STOPPED = f"dbt was stopped after {TIMEOUT_S} s (PORTAL_BUILD_TIMEOUT_S); make the query cheaper or raise the setting."
# The filter keeps about one combination in a million, so the dry run finds its 10 rows at once
# (and no step of the tests holds more than a few rows in memory), but a full scan never ends.
SLOW_SQL = """
select concat_ws('-', a.order_id, b.order_id, c.order_id, d.order_id) as id, a.customer_id
from int_orders a cross join int_orders b cross join int_orders c cross join int_orders d
where (a.order_id * 7919 + b.order_id * 104729 + c.order_id * 1299709 + d.order_id) % 1000003 = 0
"""
CHEAP_SQL = "select concat_ws('-', order_id) as id, customer_id from int_orders"
# A whole creation (checks, audit build, parses, publish) takes seconds to a minute here; the old
# flow ran the slow one for hours.
FLOW_BOUND_S = 240


def spec(sql: str) -> ProductSpec:
    return ProductSpec(
        name=NAME,
        description="Every four orders, for a test that needs a slow build.",
        data_product_type="CUSTOM",
        owner="tester-team",
        consumers=(),
        update_frequency="daily",
        tags=(),
        primary_key=("id",),
        materialization="view",
        sql=sql,
        column_descriptions={},
    )


def _dbt_of(project: Path) -> list[int]:
    """Live dbt processes building `project` (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"--project-dir {project}" in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> Iterator[PortalService]:
    environ = {**copy_demo(demo_env, tmp_path / "portal"), "PORTAL_BUILD_TIMEOUT_S": str(TIMEOUT_S)}
    settings = Settings.from_env(environ)
    assert settings.build_timeout_s == TIMEOUT_S
    # The copy's parse state was made for the demo's paths: parse once, so that audit builds parse
    # only the product (as they do in a portal) and a cheap one stays far below the timeout.
    assert run_dbt(settings, ["parse"]).ok
    yield PortalService(settings)
    for pid in _dbt_of(settings.dbt_project_dir):  # what a failing test left running is ours
        os.kill(pid, signal.SIGKILL)


def bounded(work: Callable[[], CreationResult]) -> CreationResult:
    """`work()` in a thread, waited for at most FLOW_BOUND_S (the old flow never returned)."""
    outcome: list[CreationResult] = []
    thread = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    thread.start()
    thread.join(FLOW_BOUND_S)
    assert outcome, f"the build was still running after {FLOW_BOUND_S} s with a {TIMEOUT_S} s timeout"
    return outcome[0]


def relation_type(service: PortalService, schema: str, name: str) -> str | None:
    con = duckdb.connect(str(service.settings.duckdb_path), read_only=True)
    try:
        row = con.execute(
            "select table_type from information_schema.tables where table_schema = ? and table_name like ?",
            [schema, f"{name}%"],
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def events_of(service: PortalService) -> list[tuple[str, str, dict]]:
    with service.sessions() as session:
        return [
            (e.action, e.actor, e.detail)
            for e in session.scalars(
                sa.select(AuditEvent).where(AuditEvent.object_id == NAME).order_by(AuditEvent.id)
            )
        ]


def last_event(service: PortalService) -> AuditEvent:
    with service.sessions() as session:
        event = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.object_id == NAME).order_by(AuditEvent.id.desc())
        ).first()
    assert event is not None
    return event


def test_a_build_past_the_timeout_is_stopped_and_a_cheaper_retry_publishes(service: PortalService) -> None:
    result = bounded(lambda: create(service, spec(SLOW_SQL), ME))

    assert result.status == "failed", result.log
    assert STOPPED in result.log
    assert _dbt_of(service.settings.dbt_project_dir) == []
    with service.sessions() as session:
        run = session.get_one(Run, result.run_id)
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == NAME))
    assert run.status == "error" and run.finished_at is not None and run.log and STOPPED in run.log
    assert run.details and run.details["stopped"] == "timeout" and "cancelled_by" not in run.details
    assert run.details["wap"]["published"] is False and run.details["wap"]["message"] == STOPPED
    assert result.publish and result.publish.message == STOPPED
    assert row is not None and row.status == "failed"
    event = last_event(service)
    assert event.action == "product.build_failed" and event.detail["stopped"] == "timeout", events_of(service)
    # nothing half-built where consumers read or where the retry builds
    assert relation_type(service, "gold", NAME) is None
    assert relation_type(service, "audit", NAME) is None

    retried = bounded(lambda: edit(service, NAME, spec(CHEAP_SQL), ME))
    assert retried.status == "published", retried.log
    assert relation_type(service, "gold", NAME) == "VIEW"


def test_an_edit_past_the_timeout_keeps_the_published_version(service: PortalService) -> None:
    first = bounded(lambda: create(service, spec(CHEAP_SQL), ME))
    assert first.status == "published", first.log
    sql_path, yml_path = product_paths(lifecycle.models_dir(service.settings), NAME)
    before = (sql_path.read_text(), yml_path.read_text())

    result = bounded(lambda: edit(service, NAME, spec(SLOW_SQL), ME))

    assert result.status == "restored", result.log
    assert STOPPED in result.log
    assert (sql_path.read_text(), yml_path.read_text()) == before
    with service.sessions() as session:
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == NAME))
        run = session.get_one(Run, result.run_id)
    assert row is not None and row.status == "published" and row.row_count == first.row_count
    assert run.status == "error" and run.details and run.details["stopped"] == "timeout"
    assert relation_type(service, "gold", NAME) == "VIEW"  # still the published one
    assert relation_type(service, "audit", NAME) is None
    assert _dbt_of(service.settings.dbt_project_dir) == []
