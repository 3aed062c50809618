"""The API killed with kill -9 in the middle of a creation, then started again: nothing stays
`building` or `running`, no dbt process outlives it, and the product can be discarded.

A real `python -m portal api` process on a private copy of the demo, a real dbt build (slow
on purpose), a real SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal.auth.access import create_token
from portal.creation.lifecycle import models_dir
from portal.settings import ROOT, Settings
from tests.integration.test_build_timeout import SLOW_SQL, _dbt_of

pytestmark = pytest.mark.slow
BASE = "/api/v1/data-products"
NAME = "dp_crash_victim"
PRODUCT = {
    "name": NAME,
    "description": "A product whose build the portal does not live to finish.",
    "data_product_type": "CUSTOM",
    "owner": "crash-team",
    "source_query": SLOW_SQL,
    "primary_key": ["id"],
    "materialization": "view",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_process(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "portal", "api", "--port", str(port)],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise AssertionError("the API did not start")
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def _until(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_api_leaves_nothing_building(api_env: dict[str, str], api_settings: Settings) -> None:
    token = create_token(_sessions(api_settings), "crash-owner", "creator", created_by="tests").secret
    headers = {"Authorization": f"Bearer {token}"}
    project = api_settings.dbt_project_dir
    with api_process(api_env) as (process, url):
        accepted = httpx.post(f"{url}{BASE}/", json=PRODUCT, headers=headers, timeout=120)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["run"]["id"]
        _until(lambda: _dbt_of(Path(project)), 120, "the audit build to start")
        time.sleep(2)  # well into the build
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    # dbt dies with the portal that started it: nothing goes on writing without the lock
    _until(lambda: not _dbt_of(Path(project)), 30, "dbt to die with the API")

    with api_process(api_env) as (_process, url):  # starting again recovers the interrupted run
        run = httpx.get(f"{url}/api/v1/runs/{run_id}", headers=headers, timeout=30).json()
        assert run["status"] == "error" and run["finished"], run
        assert "Interrupted" in run["log_tail"], run["log_tail"]
        product = httpx.get(f"{url}{BASE}/{NAME}", headers=headers, timeout=30).json()
        assert product["lifecycle"] == "failed", product  # never `building` again
        assert "schema='audit'" in (models_dir(api_settings) / f"{NAME}.sql").read_text()  # pinned
        discarded = httpx.delete(f"{url}{BASE}/{NAME}?discard=true", headers=headers, timeout=120)
        assert discarded.status_code == 200 and discarded.json()["lifecycle"] == "removed", discarded.text
        assert httpx.get(f"{url}{BASE}/{NAME}", headers=headers, timeout=30).status_code == 404
    assert not _dbt_of(Path(project))


def _sessions(settings: Settings) -> Any:
    from catalog_db.session import open_catalog

    return open_catalog(settings.resolved_catalog_db_url)
