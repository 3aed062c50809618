"""dbt as a subprocess: a build that prints nothing for minutes is still stopped at its timeout or
on a cancel, with every process of its group, and dies with the portal.

Real dbt on a tiny DuckDB project of its own: a table model that is a cross join of DuckDB's
`range()` runs silently for hours, which is what a `unique` test on a huge view does (issue 12).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.project.dbt_runner import STOP_GRACE_S, DbtResult, cancel, cancellable, run_dbt
from portal.settings import ROOT, Settings

pytestmark = pytest.mark.slow

# Silent for hours: 10^13 rows to count, and dbt says nothing while a model runs.
SLOW_SQL = (
    "{{ config(materialized='table') }}\nselect count(*) as n from range(100000000) a, range(100000) b\n"
)
# dbt's start-up (imports, parse) takes up to ~7 s on a busy machine; the timeout falls later,
# while the slow model runs and dbt prints nothing.
TIMEOUT_S = 15.0
# At most this long after the timeout or the cancel: the stop's signals and their grace, and slack.
STOP_BOUND_S = 3 * STOP_GRACE_S + 5


def _project(base: Path) -> Settings:
    project = base / "proj"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        'name: slow\nversion: "1.0.0"\nconfig-version: 2\nprofile: slow\nmodel-paths: ["models"]\n'
    )
    (project / "profiles.yml").write_text(
        textwrap.dedent(
            """\
            slow:
              target: local
              outputs:
                local:
                  type: duckdb
                  path: "{{ env_var('PORTAL_DUCKDB_PATH') }}"
                  schema: main
                  threads: 1
            """
        )
    )
    (project / "models" / "slow.sql").write_text(SLOW_SQL)
    (project / "models" / "fast.sql").write_text("select 1 as n\n")
    return Settings.from_env(
        {
            "PORTAL_DBT_PROJECT_DIR": str(project),
            "PORTAL_DUCKDB_PATH": str(base / "warehouse.duckdb"),
            "PORTAL_DBT_TARGET_DIR": str(base / "target"),
            "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'catalog.db'}",
        }
    )


def _processes_of(project: Path) -> list[int]:
    """Every live process whose command line names `project` (dbt run on it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(project) in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _gone(project: Path, within: float) -> bool:
    deadline = time.monotonic() + within
    while _processes_of(project):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def slow_project(tmp_path: Path) -> Iterator[Settings]:
    settings = _project(tmp_path)
    yield settings
    # Whatever a failing test left running is ours (its command line names this project): stop it.
    for pid in _processes_of(settings.dbt_project_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _run_bounded(
    bound_s: float, lines: list[str] | None = None, **kwargs: object
) -> tuple[DbtResult | None, float, list[str]]:
    """run_dbt in a thread, waited for at most `bound_s`: the old runner never returned."""
    lines = [] if lines is None else lines
    outcome: dict[str, DbtResult] = {}
    settings = kwargs.pop("settings")
    command = kwargs.pop("command")

    def work() -> None:
        outcome["result"] = run_dbt(settings, command, on_line=lines.append, **kwargs)  # type: ignore[arg-type]

    started = time.monotonic()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(bound_s)
    return outcome.get("result"), time.monotonic() - started, lines


def _group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_silent_build_is_stopped_at_its_timeout_with_its_whole_process_group(
    slow_project: Settings,
) -> None:
    result, elapsed, lines = _run_bounded(
        TIMEOUT_S + STOP_BOUND_S,
        settings=slow_project,
        command=["build", "--select", "slow"],
        timeout_s=TIMEOUT_S,
        timeout_setting="build_timeout_s",
    )

    assert result is not None, f"dbt still running {elapsed:.0f} s after a {TIMEOUT_S:g} s timeout"
    assert elapsed < TIMEOUT_S + STOP_BOUND_S
    # it was stopped while silent: the last thing dbt said was that the model started
    assert any("START sql table model main.slow" in line for line in lines)
    assert not result.ok and result.stopped == "timeout"
    assert result.message == (
        f"dbt was stopped after {TIMEOUT_S:g} s (PORTAL_BUILD_TIMEOUT_S); "
        "make the query cheaper or raise the setting."
    )
    assert result.log.splitlines()[-1] == result.message and lines[-1] == result.message
    assert result.pid is not None and _group_is_gone(result.pid)
    assert _gone(slow_project.dbt_project_dir, within=0)


def test_a_cancel_stops_the_runs_dbt_and_says_who(slow_project: Settings) -> None:
    assert cancel(4242, "nobody") is False  # nothing of run 4242 runs in this process
    with cancellable(4242) as stop:
        lines: list[str] = []
        cancelled: list[bool] = []

        def cancel_once_silent() -> None:
            deadline = time.monotonic() + 120
            while not any("START sql table model" in line for line in lines):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.1)
            time.sleep(2)  # into the silent model
            cancelled.append(cancel(4242, "carl"))

        canceller = threading.Thread(target=cancel_once_silent, daemon=True)
        canceller.start()
        result, elapsed, _ = _run_bounded(120, lines, settings=slow_project, command=["build"], stop=stop)
        canceller.join(5)
    assert cancelled == [True]
    assert cancel(4242, "carl") is False  # unregistered once the run is done

    assert result is not None, f"dbt still running {elapsed:.0f} s after the cancel"
    assert not result.ok and result.stopped == "cancelled" and stop.by == "carl"
    assert result.message == "dbt was stopped: cancelled by carl."
    assert result.log.endswith(result.message)
    assert result.pid is not None and _group_is_gone(result.pid)


def test_a_run_cancelled_before_dbt_starts_does_not_start_it(slow_project: Settings) -> None:
    with cancellable(4343) as stop:
        assert cancel(4343, "ada")
        result = run_dbt(slow_project, ["build", "--select", "slow"], stop=stop)
    assert not result.ok and result.stopped == "cancelled" and result.pid is None
    assert result.message == "dbt was stopped: cancelled by ada."


def test_a_quick_build_is_untouched(slow_project: Settings) -> None:
    result = run_dbt(slow_project, ["build", "--select", "fast"], timeout_s=300)
    assert result.ok and result.stopped is None and result.message == "", result.log
    assert "Completed successfully" in result.log
    assert result.pid is not None and _group_is_gone(result.pid)


def test_a_caller_that_fails_mid_build_stops_dbt(slow_project: Settings) -> None:
    """A sink that raises (Streamlit stops a script this way when the user navigates away) must
    not leave dbt running with the project's lock released."""

    class Gone(Exception):  # a stand-in for Streamlit's StopException
        pass

    def sink(line: str) -> None:
        if "START sql table model" in line:
            raise Gone

    with pytest.raises(Gone):
        run_dbt(slow_project, ["build", "--select", "slow"], on_line=sink)
    assert _gone(slow_project.dbt_project_dir, within=0)


PARENT = """
import sys
from portal.project.dbt_runner import run_dbt
from portal.settings import Settings
settings = Settings.from_env({
    "PORTAL_DBT_PROJECT_DIR": sys.argv[1], "PORTAL_DUCKDB_PATH": sys.argv[2], "PORTAL_DBT_TARGET_DIR": sys.argv[3],
})
run_dbt(settings, ["build", "--select", "slow"], on_line=print)
"""


def test_dbt_dies_with_the_portal(slow_project: Settings, tmp_path: Path) -> None:
    """A portal killed outright (SIGKILL, the OOM killer) takes its dbt along."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    project = slow_project.dbt_project_dir
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(project), str(slow_project.duckdb_path), str(tmp_path / "t2")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert parent.stdout is not None
    try:
        for line in parent.stdout:
            if "START sql table model" in line:
                break
        dbt = [pid for pid in _processes_of(project) if pid != parent.pid]
        assert dbt, "dbt did not start"
        parent.kill()
        parent.wait(10)
        assert _gone(project, within=10), f"dbt {dbt} survived the portal"
    finally:
        parent.kill()
        parent.wait(10)
