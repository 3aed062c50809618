"""Recovery of work whose process was killed: an edit mid-build gets its published version back,
a creation killed while it queued frees its name.

A real edit in a real child process, a real SIGKILL, then `recover_interrupted` as the next
portal process would run it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog_db.models import DataProduct, Run
from portal.auth.identity import Identity
from portal.creation.flow import create
from portal.creation.lifecycle import current_files
from portal.creation.recovery import recover_interrupted
from portal.project.dbt_runner import project_lock, run_dbt
from portal.runs import orphan_runs
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo
from tests.integration.test_build_timeout import CHEAP_SQL, NAME, _dbt_of, spec

pytestmark = pytest.mark.slow


def test_an_interrupted_edit_gets_its_published_version_back(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    settings = Settings.from_env(environ)
    assert run_dbt(settings, ["parse"]).ok
    service = PortalService(settings)
    assert create(service, spec(CHEAP_SQL), Identity("tester")).status == "published"
    published = current_files(settings, NAME)
    assert orphan_runs(service) == [] and recover_interrupted(service) == []  # nothing to do: cheap

    editor = textwrap.dedent(
        f"""
        from portal.auth.identity import Identity
        from portal.creation.flow import edit
        from portal.service import PortalService
        from portal.settings import Settings
        from tests.integration.test_build_timeout import SLOW_SQL, spec
        edit(PortalService(Settings.from_env()), {NAME!r}, spec(SLOW_SQL), Identity("tester"))
        """
    )
    child = subprocess.Popen([sys.executable, "-c", editor], env={**os.environ, **environ}, cwd=ROOT)
    deadline = time.monotonic() + 180
    while not _dbt_of(settings.dbt_project_dir) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _dbt_of(settings.dbt_project_dir), "the edit's audit build never started"
    time.sleep(2)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    deadline = time.monotonic() + 30
    while _dbt_of(settings.dbt_project_dir) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _dbt_of(settings.dbt_project_dir), "dbt outlived the process that started it"
    with service.sessions() as session:
        assert session.scalar(sa.select(DataProduct.status).where(DataProduct.name == NAME)) == "building"
    assert "1000003" in current_files(settings, NAME).sql_text  # the edit's files are in

    (done,) = recover_interrupted(service)
    assert NAME in done and "published version's files are back" in done
    assert current_files(settings, NAME) == published
    with service.sessions() as session:
        assert session.scalar(sa.select(DataProduct.status).where(DataProduct.name == NAME)) == "published"
        run = session.scalars(sa.select(Run).order_by(Run.id.desc())).first()
        assert run is not None and run.status == "error" and run.details and "interrupted" in run.details
    assert recover_interrupted(service) == []  # once


class PageRerun(BaseException):
    """What Streamlit raises in a page's thread when the page reruns during a build."""


def test_a_creation_stopped_by_its_caller_ends_its_run_and_pins_its_files(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings.from_env(copy_demo(demo_env, tmp_path / "portal"))
    assert run_dbt(settings, ["parse"]).ok
    service = PortalService(settings)

    def rerun_once_building(line: str) -> None:
        if " of " in line and "START" in line:  # dbt has started on the audit build
            raise PageRerun

    with pytest.raises(PageRerun):
        create(service, spec(CHEAP_SQL), Identity("tester"), on_line=rerun_once_building)
    assert not _dbt_of(settings.dbt_project_dir)
    with service.sessions() as session:
        assert session.scalar(sa.select(DataProduct.status).where(DataProduct.name == NAME)) == "failed"
        run = session.scalars(sa.select(Run).order_by(Run.id.desc())).first()
        assert run is not None and run.status == "error" and run.details and "interrupted" in run.details
    assert "schema='audit'" in current_files(settings, NAME).sql_text  # never gold untested
    assert orphan_runs(service) == []


def test_a_creation_killed_while_it_queued_frees_its_name(demo_env: dict[str, str], tmp_path: Path) -> None:
    """Between the claim of a name and its build there is a wait for the build lock; a process
    killed then left the product `building` with no run, refusing every change, for ever."""
    environ = copy_demo(demo_env, tmp_path / "portal")
    settings = Settings.from_env(environ)
    service = PortalService(settings)
    creator = textwrap.dedent(
        """
        from portal.auth.identity import Identity
        from portal.creation.flow import create
        from portal.service import PortalService
        from portal.settings import Settings
        from tests.integration.test_build_timeout import CHEAP_SQL, spec
        create(PortalService(Settings.from_env()), spec(CHEAP_SQL), Identity("tester"))
        """
    )
    with project_lock(settings):  # another build holds the project: the creation queues
        child = subprocess.Popen([sys.executable, "-c", creator], env={**os.environ, **environ}, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with service.sessions() as session:
                queued = session.scalars(sa.select(Run).where(Run.status == "queued")).all()
            if queued:
                break
            time.sleep(0.2)
        assert queued and queued[0].selector == NAME, "the creation never queued"
        assert orphan_runs(service) == []  # its process lives: not an orphan
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    with service.sessions() as session:
        assert session.scalar(sa.select(DataProduct.status).where(DataProduct.name == NAME)) == "building"

    (done,) = recover_interrupted(service)
    assert NAME in done and "nothing was written and its name is free" in done
    with service.sessions() as session:
        assert session.scalar(sa.select(DataProduct.status).where(DataProduct.name == NAME)) == "removed"
        run = session.get_one(Run, queued[0].id)
        assert run.status == "error" and "waiting for another build" in (run.log or "")
    assert create(service, spec(CHEAP_SQL), Identity("tester")).status == "published"  # free again
