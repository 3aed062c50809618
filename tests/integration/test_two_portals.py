"""More than one portal process on one PostgreSQL catalog database, on the real server the suite
starts: two `python -m portal api` processes serving one project, and a second "host" (its own
checkout of the dbt project and its own target directory) sharing the catalog and the warehouse.

- 20 concurrent creations of one name, spread over both API processes, give exactly one product;
- a `refresh --due` on each host at once refreshes each due product exactly once;
- the build and refresh locks hold across hosts (advisory locks in the catalog database), where
  the lock files of each checkout cannot see each other;
- a cancel sent to one API process stops the build the other runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from catalog_db.models import DataProduct, Run
from portal.project.locks import LockBusy, build_lock, refresh_lock
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.api.conftest import wait_for_run
from tests.api.test_crash import api_process
from tests.conftest import copy_demo
from tests.integration.test_build_timeout import SLOW_SQL
from tests.postgres_server import BIN, Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BIN is None, reason="no PostgreSQL server binaries; `apt-get install postgresql`"),
]
BASE = "/api/v1/data-products"
RACE = {
    "name": "Shared Winner",
    "description": "Claimed by one of twenty submissions over two portal processes.",
    "data_product_type": "CUSTOM",
    "owner": "race-team",
    "source_query": "select order_id, ordered_at from silver.orders",
    "primary_key": ["order_id"],
}


@pytest.fixture(scope="module")
def hosts(
    demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, server: Server
) -> tuple[dict[str, str], dict[str, str]]:
    """The environments of two hosts: the first's checkout is the demo's copy, the second has a
    copy of that checkout and of its target directory; one catalog, one warehouse."""
    base = tmp_path_factory.mktemp("two-portals")
    first = copy_demo(demo_env, base / "first")
    admin = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "two_portals"'))
    admin.dispose()
    first["PORTAL_CATALOG_DB_URL"] = server.url("two_portals")
    second_dir = base / "second"
    shutil.copytree(first["PORTAL_DBT_PROJECT_DIR"], second_dir / "dbt")
    shutil.copytree(first["PORTAL_DBT_TARGET_DIR"], second_dir / "target")
    second = {
        **first,
        "PORTAL_DBT_PROJECT_DIR": str(second_dir / "dbt"),
        "PORTAL_DBT_TARGET_DIR": str(second_dir / "target"),
    }
    PortalService(Settings.from_env(first)).artifacts()  # the catalog: migrated and synced
    return first, second


def test_locks_hold_across_hosts(hosts: tuple[dict[str, str], dict[str, str]]) -> None:
    first, second = (Settings.from_env(env) for env in hosts)
    for lock_of in (build_lock, refresh_lock):
        assert lock_of(first).path != lock_of(second).path  # the lock files cannot see each other
        with lock_of(first).hold(wait=False):
            with pytest.raises(LockBusy) as busy, lock_of(second).hold(wait=False):
                pass
            assert "pid" in busy.value.holder, busy.value.holder  # says who holds it
        with lock_of(second).hold(wait=False):  # released with the hold
            pass


def test_a_bounded_wait_queues_across_hosts(hosts: tuple[dict[str, str], dict[str, str]]) -> None:
    first, second = (Settings.from_env(env) for env in hosts)
    held = threading.Event()

    def hold_for_a_second() -> None:
        with build_lock(first).hold(wait=False):
            held.set()
            time.sleep(1)

    holder = threading.Thread(target=hold_for_a_second)
    holder.start()
    assert held.wait(10)
    # the other host's advisory lock refuses after the wait (its lock file is another checkout's)
    with pytest.raises(LockBusy), build_lock(second).hold(wait=0.3):
        pass
    began = time.monotonic()
    with build_lock(second).hold(wait=30):  # taken once the first host lets go
        assert time.monotonic() - began < 20
    holder.join()


def _catalog(env: dict[str, str]) -> sa.Engine:
    return sa.create_engine(env["PORTAL_CATALOG_DB_URL"])


def test_twenty_creations_over_two_processes_make_one_product(
    hosts: tuple[dict[str, str], dict[str, str]],
) -> None:
    first, _second = hosts
    with api_process(first) as (_one, url_one), api_process(first) as (_two, url_two):

        def create(index: int) -> httpx.Response:
            return httpx.post(f"{(url_one, url_two)[index % 2]}{BASE}/", json=RACE, timeout=300)

        with ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(create, range(20)))
        assert Counter(r.status_code for r in responses) == {202: 1, 409: 19}, [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 202).json()
        run_id = winner["run"]["id"]
        for url in (url_one, url_two):  # both processes read the one catalog
            with httpx.Client(base_url=url, timeout=30) as http:
                assert wait_for_run(http.get, run_id)["status"] == "success"
    engine = _catalog(first)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(DataProduct.status).where(DataProduct.name == "dp_shared_winner")
        ).all()
    engine.dispose()
    assert [row.status for row in rows] == ["published"]


def _refresh(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portal", "refresh", "--due", *args],
        env={**_clean_environ(), **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}


def test_refresh_due_on_two_hosts_at_once_refreshes_each_product_once(
    hosts: tuple[dict[str, str], dict[str, str]],
) -> None:
    first, second = hosts
    engine = _catalog(first)
    with engine.begin() as connection:  # every product's last build was a month ago: all are due
        connection.execute(
            sa.update(Run).values(
                started_at=Run.started_at - sa.text("interval '30 days'"),
                finished_at=Run.finished_at - sa.text("interval '30 days'"),
            )
        )
        newest_before = connection.scalar(sa.select(sa.func.max(Run.id))) or 0
    dry_run = _refresh(first, "--dry-run")
    listing, _ = dry_run.communicate(timeout=300)
    due = sorted(line.split()[1].rstrip(":") for line in listing.splitlines() if line.startswith("due "))
    assert len(due) >= 3, listing

    runs = [_refresh(first), _refresh(second)]
    outputs = [process.communicate(timeout=1200)[0] for process in runs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    with engine.connect() as connection:
        refreshed = connection.execute(
            sa.select(DataProduct.name)
            .join(Run, Run.product_id == DataProduct.id)
            .where(Run.id > newest_before, Run.triggered_by == "cli --due")
        ).scalars()
        counts = Counter(refreshed)
    engine.dispose()
    assert counts == Counter(due), outputs  # each due product once, by one host or the other
    for output in outputs:  # the other host stopped at once, or found nothing left to do
        assert (
            "ok  " in output or "Another refresh is running (pid" in output or "Nothing is due" in output
        ), output


def test_a_cancel_sent_to_one_process_stops_the_build_of_the_other(
    hosts: tuple[dict[str, str], dict[str, str]],
) -> None:
    first, _second = hosts
    slow = {**RACE, "name": "dp_cancelled_elsewhere", "source_query": SLOW_SQL, "primary_key": ["id"]}
    with api_process(first) as (_one, builder), api_process(first) as (_two, other):
        accepted = httpx.post(f"{builder}{BASE}/", json={**slow, "materialization": "view"}, timeout=300)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["run"]["id"]
        asked = httpx.post(f"{other}/api/v1/runs/{run_id}/cancel", json={}, timeout=60)
        assert asked.status_code == 202, asked.text  # a request: the builder stops it
        with httpx.Client(base_url=other, timeout=30) as http:
            run = wait_for_run(http.get, run_id, timeout=300)
        assert run["status"] == "error", run
        assert "cancelled by local-user" in run["log_tail"], run["log_tail"]
        product = httpx.get(f"{other}{BASE}/dp_cancelled_elsewhere", timeout=30).json()
        assert product["lifecycle"] == "failed", product
