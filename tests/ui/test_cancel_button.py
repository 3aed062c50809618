"""The Runs tab's Cancel button: shown for a running run that a live portal process holds (this
one or another), to whoever may cancel it, and pressing it asks that run's dbt to stop; not
shown for a run whose process is gone. AppTest over a private copy of the demo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from catalog_db.models import AuditEvent, Run
from portal.project.dbt_runner import cancellable
from portal.runs import LEASE, process_start, registration, start_run
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

PRODUCT = "dp_customer_360"


def runs_script(name: str) -> None:
    """The product page's Runs tab (AppTest runs this function's source)."""
    import streamlit as st

    from portal.ui.components.context import attempt, get_service
    from portal.ui.components.runs_tab import render_runs_tab

    service = attempt(get_service)
    if service is None:
        st.stop()
    render_runs_tab(service, name)


@pytest.fixture
def environ(demo_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return copy_demo(demo_env, tmp_path / "demo")


@pytest.fixture
def running(environ: dict[str, str]) -> int:
    """A run of the product, recorded as running (as a refresh does while dbt builds)."""
    service = PortalService(Settings.from_env(environ))
    row = registration(service, PRODUCT)
    assert row is not None
    return start_run(service, selector=f"+{PRODUCT}", triggered_by="local-user", product_id=row.id)


@pytest.fixture
def start(use_env: Callable[[dict[str, str]], None], environ: dict[str, str]) -> Callable[[], AppTest]:
    def run() -> AppTest:
        use_env(environ)
        st.cache_resource.clear()  # the service is cached per process
        at = AppTest.from_function(runs_script, args=(PRODUCT,), default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        return at

    return run


def test_cancel_asks_the_running_build_to_stop(start: Callable[[], AppTest], running: int) -> None:
    with cancellable(running) as stop:
        at = start()
        assert at.selectbox(key=f"runs_{PRODUCT}_pick").value == running  # the newest run
        at.button(key=f"runs_{PRODUCT}_cancel").click().run()
        assert not at.exception, at.exception
        assert stop.requested and stop.by == "local-user"
        assert any(f"Run #{running} is being stopped" in s.value for s in at.success)


def test_no_button_for_a_run_whose_process_is_gone(
    start: Callable[[], AppTest], running: int, environ: dict[str, str]
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    service = PortalService(Settings.from_env(environ))
    with service.sessions.begin() as session:
        run = session.get_one(Run, running)
        run.details = {**run.details, LEASE: {**run.details[LEASE], "pid": gone.pid, "process_start": "0"}}
    at = start()
    assert f"runs_{PRODUCT}_cancel" not in {b.key for b in at.button}
    assert any("by a portal process that is gone" in c.value for c in at.caption)


def test_a_run_another_process_builds_can_be_cancelled_from_here(
    start: Callable[[], AppTest], running: int, environ: dict[str, str]
) -> None:
    """The button asks; the process that builds the run finds the request and stops its dbt
    (tests/integration/test_two_portals.py follows a request to its end)."""
    builder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    service = PortalService(Settings.from_env(environ))
    try:
        with service.sessions.begin() as session:
            run = session.get_one(Run, running)
            lease = {**run.details[LEASE], "pid": builder.pid, "process_start": process_start(builder.pid)}
            run.details = {**run.details, LEASE: lease}
        at = start()
        at.button(key=f"runs_{PRODUCT}_cancel").click().run()
        assert not at.exception, at.exception
        assert any(f"Run #{running} is being stopped" in s.value for s in at.success)
        with service.sessions() as session:
            asked = session.scalars(
                sa.select(AuditEvent.actor).where(
                    AuditEvent.action == "run.cancel_requested", AuditEvent.object_id == str(running)
                )
            ).all()
        assert asked == ["local-user"]
    finally:
        builder.kill()
        builder.wait(10)
