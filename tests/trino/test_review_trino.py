"""One review end to end on Trino + Nessie, through the REST API in a real `python -m portal api`
process: a creation with review required waits on its Nessie branch; the portal is stopped and
started again; the reviewer reads the data diff (computed on the branch against main) and
approves. Until the approval, main's hash, its content and every gold table's Iceberg snapshot
ids are exactly as before; a rejected proposal's branch is gone and main is untouched."""

from __future__ import annotations

import os
import shutil
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
from test_creation_trino import environ_of
from trino_stack import CATALOG_FILE, fetch, main_state

from portal.auth.access import create_token
from portal.creation.publish.nessie import NessieClient, WapConfig
from portal.project.dbt_runner import DbtResult
from portal.service import PortalService
from portal.settings import ROOT, Settings

pytestmark = pytest.mark.trino
PRODUCTS = "/api/v1/data-products"
PROPOSALS = "/api/v1/proposals"


def product(name: str, sql: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Orders per customer, reviewed on Trino.",
        "data_product_type": "CUSTOMER_360",
        "owner": "customer-analytics-team",
        "source_query": sql,
        "primary_key": ["customer_id"],
    }


@pytest.fixture(scope="module")
def settings(
    built: DbtResult, project_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    base = tmp_path_factory.mktemp("trino-review")
    project = base / "dbt"
    shutil.copytree(ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    target = base / "target"
    target.mkdir()
    shutil.copy(project_settings.target_dir / "manifest.json", target / "manifest.json")
    shutil.copy(project_settings.target_dir / "build_run_results.json", target / "run_results.json")
    return Settings.from_env(
        warehouse="trino",
        dbt_target="trino",
        review="required",
        dbt_project_dir=project,
        dbt_target_dir=str(target),
        catalog_db_url=f"sqlite:///{base / 'catalog.db'}",
        trino_catalog_properties=CATALOG_FILE,
    )


@pytest.fixture(scope="module")
def headers(settings: Settings) -> dict[str, dict[str, str]]:
    sessions = PortalService(settings).sessions  # migrates the catalog database
    return {
        who: {"Authorization": f"Bearer {create_token(sessions, who, role, created_by='tests').secret}"}
        for who, role in (("ann", "creator"), ("rita", "reviewer"))
    }


@pytest.fixture(scope="module")
def nessie(wap_config: WapConfig) -> Iterator[NessieClient]:
    with NessieClient(wap_config.nessie_uri) as client:
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def portal_api(settings: Settings, log: Path) -> Iterator[httpx.Client]:
    """`python -m portal api` on a free port over `settings`; stopped (SIGTERM) on exit."""
    port = free_port()
    environ = {**environ_of(settings), "PORTAL_API_HOST": "127.0.0.1", "PORTAL_API_PORT": str(port)}
    with log.open("a") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "portal", "api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **environ},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the API did not start; its log:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_review_on_a_nessie_branch_survives_a_restart_and_main_is_untouched_until_approved(
    settings: Settings, headers: dict[str, dict[str, str]], nessie: NessieClient, tmp_path: Path
) -> None:
    log = tmp_path / "api.log"
    before = main_state(settings, nessie)
    sql = "select customer_id, count(order_id) as order_count from silver.orders group by customer_id"
    with portal_api(settings, log) as api:
        created = api.post(
            f"{PRODUCTS}/?wait=true", json=product("Trino Reviewed", sql), headers=headers["ann"]
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["state"] == "in_review", body
        proposal_id = body["proposal"]
        run = api.get(f"/api/v1/runs/{body['run']['id']}", headers=headers["ann"]).json()
    record = run["publish"]
    assert record["outcome"] == "in_review" and record["branch"] in nessie.branches()
    assert nessie.branches()[record["branch"]] == record["branch_hash"]
    assert main_state(settings, nessie) == before  # main: same head, content and snapshots

    # the portal is stopped; a new process picks the proposal up from the catalog database
    with portal_api(settings, log) as api:
        detail = api.get(f"{PROPOSALS}/{proposal_id}", headers=headers["rita"]).json()
        review = detail["review"]
        assert detail["state"] == "in_review" and review["may_decide"] is True, detail
        data = review["data_diff"]
        assert data is not None, review["missing"]
        assert data["before"] is None and data["after"].endswith(".gold.dp_trino_reviewed")
        assert data["rows_after"] == data["added"] > 0 and data["key"] == ["customer_id"]
        assert [c for c in fetch(settings, "show catalogs") if c[0].startswith("review_")] == []
        assert main_state(settings, nessie) == before  # reading the branch changed nothing

        refused = api.post(f"{PROPOSALS}/{proposal_id}/approve", headers=headers["ann"])
        assert refused.status_code == 403 and "authors cannot" in refused.json()["detail"]
        assert main_state(settings, nessie) == before

        approved = api.post(
            f"{PROPOSALS}/{proposal_id}/approve", json={"comment": "ok"}, headers=headers["rita"]
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["row_count"] == data["rows_after"]
    after = main_state(settings, nessie)
    assert after["head"] != before["head"] and record["branch"] not in nessie.branches()
    assert f"{settings.gold_schema}.dp_trino_reviewed" in after["entries"]  # type: ignore[operator]
    for table, snapshots in before["snapshots"].items():  # type: ignore[union-attr]
        assert after["snapshots"][table] == snapshots  # type: ignore[index]  # only the new table moved
    counted = fetch(
        settings, f"select count(*) from {settings.trino_catalog}.{settings.gold_schema}.dp_trino_reviewed"
    )
    assert counted[0][0] == data["rows_after"]


def test_a_rejected_proposal_leaves_no_branch_and_main_as_it_was(
    settings: Settings, headers: dict[str, dict[str, str]], nessie: NessieClient, tmp_path: Path
) -> None:
    before = main_state(settings, nessie)
    sql = "select customer_id, max(order_id) as last_order from silver.orders group by customer_id"
    with portal_api(settings, tmp_path / "api.log") as api:
        created = api.post(
            f"{PRODUCTS}/?wait=true", json=product("Trino Refused", sql), headers=headers["ann"]
        )
        assert created.status_code == 201 and created.json()["state"] == "in_review", created.text
        proposal_id = created.json()["proposal"]
        run = api.get(f"/api/v1/runs/{created.json()['run']['id']}", headers=headers["ann"]).json()
        branch = run["publish"]["branch"]
        assert branch in nessie.branches()
        rejected = api.post(
            f"{PROPOSALS}/{proposal_id}/reject", json={"comment": "Use int_orders."}, headers=headers["rita"]
        )
        assert rejected.status_code == 200 and rejected.json()["proposal"]["state"] == "rejected", (
            rejected.text
        )
        product_state = api.get(f"{PRODUCTS}/dp_trino_refused", headers=headers["ann"]).json()
        assert product_state["lifecycle"] == "rejected"
    assert branch not in nessie.branches()
    assert main_state(settings, nessie) == before
