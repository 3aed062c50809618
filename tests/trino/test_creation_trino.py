"""Creating and editing products on Trino: the portal's own flow publishes through a Nessie branch.

The same `creation.create` / `creation.edit` the form and the API call, on a private copy of the
dbt project whose tables were built on main by the session's `dbt build --target trino`. Last, a
child process creating a product is killed with kill -9 once its audit's branch catalog exists:
recovery (as the API runs it at its next start) removes the branch and the catalog it left.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest
from trino_stack import CATALOG_FILE, fetch, main_state

from catalog_db.models import DataProduct, Run
from portal.auth.identity import Identity
from portal.catalog.browse import CatalogQuery, browse
from portal.catalog.preview import preview as catalog_preview
from portal.creation import flow as creation
from portal.creation import lifecycle
from portal.creation.publish.nessie import NessieClient, WapConfig
from portal.creation.recovery import recover_interrupted
from portal.creation.spec import ProductSpec
from portal.integrations import openlineage
from portal.project.dbt_runner import DbtResult
from portal.service import PortalService
from portal.settings import ROOT, Settings

pytestmark = pytest.mark.trino
APP = ROOT / "portal" / "ui" / "app.py"
ME = Identity("creator-ann")

ORDERS_PER_CUSTOMER = """
select customer_id, count(order_id) as order_count, sum(net_revenue) as net_revenue
from int_orders
where not is_cancelled
group by customer_id
"""


@pytest.fixture(scope="module")
def service(
    built: DbtResult, project_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> PortalService:
    """The portal on Trino over its own copy of the project and the session build's artifacts."""
    base = tmp_path_factory.mktemp("trino-create")
    project = base / "dbt"
    shutil.copytree(ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    target = base / "target"
    target.mkdir()
    shutil.copy(project_settings.target_dir / "manifest.json", target / "manifest.json")
    shutil.copy(project_settings.target_dir / "build_run_results.json", target / "run_results.json")
    settings = Settings.from_env(
        warehouse="trino",
        dbt_target="trino",
        review="off",  # published at once; tests/trino/test_review_trino.py holds one for review
        dbt_project_dir=project,
        dbt_target_dir=str(target),
        catalog_db_url=f"sqlite:///{base / 'catalog.db'}",
        trino_catalog_properties=CATALOG_FILE,
        openlineage_transport="file",  # the run events of every build here, for the Nessie facet
        openlineage_file=base / "openlineage.jsonl",
    )
    return PortalService(settings)


@pytest.fixture(scope="module")
def nessie(wap_config: WapConfig) -> NessieClient:
    return NessieClient(wap_config.nessie_uri)


def spec(name: str, **changes: object) -> ProductSpec:
    fields: dict[str, object] = {
        "name": name,
        "description": "Orders and net revenue per customer, on Trino.",
        "data_product_type": "CUSTOMER_360",
        "owner": "customer-analytics-team",
        "consumers": ("Marketing",),
        "update_frequency": "daily",
        "primary_key": ("customer_id",),
        "materialization": "table",
        "sql": ORDERS_PER_CUSTOMER,
    }
    fields.update(changes)
    return ProductSpec(**fields)  # type: ignore[arg-type]


def wap_record(service: PortalService, run_id: int | None) -> dict[str, object]:
    with service.sessions() as session:
        run = session.get_one(Run, run_id)
        assert run.details is not None
        return dict(run.details["wap"])


def test_create_on_trino_publishes_through_a_nessie_branch(
    service: PortalService, nessie: NessieClient
) -> None:
    settings = service.settings
    before = nessie.head("main")
    lines: list[str] = []

    result = creation.create(service, spec("dp_trino_orders"), ME, on_line=lines.append)

    assert result.status == "published", result.log
    assert {o.name for o in result.outcomes} >= {"dp_trino_orders", "unique", "not_null"}
    record = wap_record(service, result.run_id)
    assert record["engine"] == "nessie" and record["outcome"] == "published" and record["published"]
    branch = str(record["branch"])
    assert branch.startswith(f"wap-r{result.run_id}-"), branch
    assert any(branch in line for line in lines), "the progress must name the branch"
    # main moved exactly by the merge of the branch's head; the branch is gone
    assert record["main_hash_before"] == before
    assert record["main_hash_after"] == nessie.head("main") != before
    assert record["branch_hash"] not in (None, before) and record["branch_deleted"]
    assert branch not in nessie.branches()
    assert f"{settings.gold_schema}.dp_trino_orders" in nessie.entries("main")
    # readable on main, with the row count the run reported, through the portal as well
    counted = fetch(
        settings, f"select count(*) from {settings.trino_catalog}.{settings.gold_schema}.dp_trino_orders"
    )
    assert result.row_count == counted[0][0] > 0
    preview = catalog_preview(service, "dp_trino_orders", identity=ME, limit=5)
    assert len(preview.rows) == 5 and preview.total_rows == result.row_count
    entry = next(
        e for e in browse(service, CatalogQuery(types=("CUSTOMER_360",))) if e.name == "dp_trino_orders"
    )
    assert entry.entry.lifecycle == "published" and entry.health.tests_failed == 0
    # its column lineage at once: the audit build's SQL, compiled through the branch's catalog
    lineage = service.column_lineage("dp_trino_orders", "net_revenue")
    assert lineage.traced and "model.asgard.int_orders.net_revenue" in {str(c) for c in lineage.columns}
    # its OpenLineage COMPLETE event names the Nessie branch and the hashes the run recorded
    assert openlineage.drain(30)
    events = [json.loads(line) for line in settings.openlineage_file.read_text().splitlines()]
    (complete,) = [
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".dp_trino_orders")
    ]
    nessie_facet = complete["run"]["facets"]["nessieWriteAuditPublish"]
    assert nessie_facet["branch"] == branch and nessie_facet["mainHashAfter"] == record["main_hash_after"]
    assert complete["outputs"][0]["namespace"].startswith("trino://")
    assert (
        complete["outputs"][0]["name"] == f"{settings.trino_catalog}.{settings.gold_schema}.dp_trino_orders"
    )


def test_failing_create_on_trino_never_touches_main(service: PortalService, nessie: NessieClient) -> None:
    settings = service.settings
    # order lines repeat the customer: customer_id is no key, so its `unique` test fails
    bad = spec("dp_trino_lines", sql="select customer_id, order_id from int_orders")
    before = main_state(settings, nessie)

    result = creation.create(service, bad, ME)

    assert result.status == "failed", result.log
    assert [(o.name, o.column) for o in result.failed_nodes] == [("unique", "customer_id")]
    record = wap_record(service, result.run_id)
    assert record["outcome"] == "failed" and not record["published"]
    assert record["main_hash_before"] == record["main_hash_after"] == before["head"]
    assert record["branch_deleted"] and record["branch"] not in nessie.branches()
    # Nessie: same head and content; Iceberg: the same snapshots of every gold table on main
    assert main_state(settings, nessie) == before
    assert f"{settings.gold_schema}.dp_trino_lines" not in before["entries"]  # type: ignore[operator]
    # the catalog shows the failed product with its failing test; its owner can discard it
    entry = next(e for e in browse(service) if e.name == "dp_trino_lines")
    assert entry.entry.lifecycle == "failed" and entry.health.level == "failing"
    removed = lifecycle.discard(service, "dp_trino_lines", ME)
    assert {p.name for p in removed} == {"dp_trino_lines.sql", "dp_trino_lines.yml"}


def test_failed_edit_on_trino_keeps_the_published_product(
    service: PortalService, nessie: NessieClient
) -> None:
    name = "dp_trino_edited"
    created = creation.create(service, spec(name), ME)
    assert created.status == "published", created.log
    before = main_state(service.settings, nessie)

    # the new SQL repeats customers: the edit's build fails its unique test on the branch
    broken = spec(name, sql="select customer_id, order_id as order_count from int_orders")
    result = creation.edit(service, name, broken, ME)

    assert result.status == "restored", result.log
    assert wap_record(service, result.run_id)["outcome"] == "failed"
    assert main_state(service.settings, nessie) == before
    assert "order_id as order_count" not in lifecycle.spec_of(service, name).sql
    assert next(e for e in service.entries() if e.name == name).lifecycle == "published"


def environ_of(settings: Settings) -> dict[str, str]:
    """The environment that makes the Streamlit app open this service's settings."""
    return {
        "PORTAL_WAREHOUSE": "trino",
        "PORTAL_REVIEW": settings.review,
        "PORTAL_DBT_TARGET": settings.dbt_target,
        "PORTAL_DBT_PROJECT_DIR": str(settings.dbt_project_dir),
        "PORTAL_DBT_TARGET_DIR": settings.dbt_target_dir,
        "PORTAL_CATALOG_DB_URL": settings.catalog_db_url,
        "PORTAL_TRINO_HOST": settings.trino_host,
        "PORTAL_TRINO_PORT": str(settings.trino_port),
        "PORTAL_TRINO_CATALOG": settings.trino_catalog,
        "PORTAL_TRINO_CATALOG_PROPERTIES": str(settings.trino_catalog_properties),
    }


def runs_tab_script(name: str) -> None:
    """The product page's Runs tab (AppTest runs this function's source)."""
    import streamlit as st

    from portal.ui.components.context import attempt, get_service
    from portal.ui.components.runs_tab import render_runs_tab

    service = attempt(get_service)
    if service is None:
        st.stop()
    render_runs_tab(service, name)


def test_the_form_and_the_run_view_show_the_branch_and_its_outcome(
    service: PortalService, nessie: NessieClient, use_env: Callable[[dict[str, str]], None]
) -> None:
    use_env(environ_of(service.settings))
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("app_pages/create.py")
    at.run()
    assert not at.exception, at.exception
    at.text_input(key="create_name").input("dp_trino_form")
    at.text_area(key="create_description").input("Orders per customer, created through the form on Trino.")
    at.text_input(key="create_primary_key").input("customer_id")
    at.text_area(key="create_sql").input(ORDERS_PER_CUSTOMER)
    at.button(key="create_submit").click().run(timeout=900)
    assert not at.exception, at.exception
    assert any("dp_trino_form** is published" in s.value for s in at.success), [e.value for e in at.error]
    shown = "\n".join(m.value for m in at.markdown)
    assert "Write-audit-publish on Nessie" in shown and "merged into main" in shown
    commits = next(d.value for d in at.dataframe if "hash" in d.value.columns)
    main_after = nessie.head("main")
    assert main_after in list(commits["hash"])

    st.cache_resource.clear()
    at = AppTest.from_function(runs_tab_script, args=("dp_trino_form",), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    runs = next(d.value for d in at.dataframe if "write-audit-publish" in d.value.columns)
    summary = runs["write-audit-publish"].iloc[0]
    assert summary.startswith("Nessie branch `wap-r") and "merged into main" in summary, summary
    branch = summary.split("`")[1]
    assert branch not in nessie.branches()
    shown = "\n".join(m.value for m in at.markdown)
    assert f"branch `{branch}`" in shown and ":green[published]" in shown


# --- a portal killed mid-creation ---------------------------------------------------------

KILLED = "dp_trino_killed"


def _child(service: PortalService) -> subprocess.Popen[str]:
    settings = service.settings
    overrides = {
        "warehouse": "trino",
        "dbt_target": "trino",
        "dbt_project_dir": str(settings.dbt_project_dir),
        "dbt_target_dir": str(settings.target_dir),
        "catalog_db_url": settings.resolved_catalog_db_url,
        "trino_catalog_properties": str(settings.trino_catalog_properties),
    }
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from portal.auth.identity import Identity
        from portal.creation import flow
        from portal.creation.spec import ProductSpec
        from portal.service import PortalService
        from portal.settings import Settings
        overrides = json.loads(sys.argv[1])
        for key in ("dbt_project_dir", "trino_catalog_properties"):
            overrides[key] = Path(overrides[key])
        service = PortalService(Settings.from_env(**overrides))
        spec = ProductSpec(
            name={KILLED!r}, description="Built by a portal that is killed mid-build.",
            data_product_type="CUSTOM", owner="crash-team", update_frequency="daily",
            primary_key=("customer_id",), materialization="table", sql={ORDERS_PER_CUSTOMER!r},
        )
        flow.create(service, spec, Identity("crash-owner"), on_line=print)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(overrides)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _wap_catalogs(service: PortalService) -> set[str]:
    return {str(row[0]) for row in fetch(service.settings, "show catalogs") if str(row[0]).startswith("wap_")}


def test_recovery_removes_the_branch_and_catalog_of_a_killed_build(
    service: PortalService, nessie: NessieClient
) -> None:
    catalogs_before = _wap_catalogs(service)
    child = _child(service)
    try:
        deadline = time.monotonic() + 240
        while not _wap_catalogs(service) - catalogs_before:  # the audit has its branch and catalog
            assert child.poll() is None, "the creation ended before it could be killed"
            assert time.monotonic() < deadline, "the audit never created its branch catalog"
            time.sleep(0.3)
    finally:  # dbt takes seconds to start on the branch: it is killed before it has built anything
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    with service.sessions() as session:
        run = session.scalars(
            sa.select(Run)
            .join(DataProduct, Run.product_id == DataProduct.id)
            .where(DataProduct.name == KILLED)
        ).one()
        branch = str(run.details["wap"]["branch"])
        assert run.status == "running"
    assert branch in nessie.branches()  # what a killed portal leaves

    done = recover_interrupted(service)

    assert any(KILLED in line for line in done), done
    assert branch not in nessie.branches()
    assert _wap_catalogs(service) == catalogs_before
    with service.sessions() as session:
        run = session.get_one(Run, run.id)
        product = session.scalars(sa.select(DataProduct).where(DataProduct.name == KILLED)).one()
        assert run.status == "error" and "Interrupted" in (run.log or "")
        assert product.status == "failed"
