"""Self-service creation end to end: real dbt builds on a private copy of the demo warehouse.

Each test gets its own copy of the session's demo build (warehouse, catalog database, target)
and of the dbt project, so products created here never reach the shared demo or the repo's dbt/.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import yaml

from catalog_db.models import AuditEvent, DataProduct, NodeResult, Run
from portal.auth.access import Principal
from portal.auth.identity import Identity
from portal.catalog.browse import CatalogQuery, browse
from portal.catalog.detail import product_detail
from portal.catalog.preview import preview as catalog_preview
from portal.creation import flow as creation
from portal.creation import lifecycle
from portal.creation.dry_run import SAMPLE_ROWS
from portal.creation.flow import WAITING, check, create, edit
from portal.creation.lifecycle import Refused, deprecate, discard, spec_of
from portal.creation.scaffold import product_paths
from portal.creation.spec import ProductSpec
from portal.observability import refresh
from portal.observability.freshness import freshness
from portal.observability.health import health_overview
from portal.project.artifacts import find_artifact, load_run_results
from portal.project.dbt_runner import project_lock, run_dbt
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

pytestmark = pytest.mark.slow
ME = Identity("tester")

ORDERS_PER_CUSTOMER = """
with orders as (
    select customer_id, order_id, net_revenue
    from int_orders
    where not is_cancelled
)
select
    customer_id,
    count(order_id) as order_count,
    cast(sum(net_revenue) as decimal(18, 2)) as net_revenue
from orders
group by customer_id
"""


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> PortalService:
    return PortalService(Settings.from_env(copy_demo(demo_env, tmp_path / "portal")))


def spec(name: str = "dp_customer_orders", **changes: object) -> ProductSpec:
    fields: dict[str, object] = {
        "name": name,
        "description": "Orders and net revenue per customer.\n\n*Built from int_orders.*",
        "data_product_type": "CUSTOMER_360",
        "owner": "customer-analytics-team",
        "consumers": ("Marketing",),
        "update_frequency": "daily",
        "tags": ("customer",),
        "primary_key": ("customer_id",),
        "materialization": "table",
        "sql": ORDERS_PER_CUSTOMER,
        "column_descriptions": {"order_count": "Orders that were not cancelled."},
    }
    fields.update(changes)
    return ProductSpec(**fields)  # type: ignore[arg-type]


def files_of(service: PortalService, name: str) -> list[Path]:
    folder = lifecycle.models_dir(service.settings)
    return sorted(p for p in folder.iterdir() if name in p.name)


def relation_type(service: PortalService, schema: str, name: str) -> str | None:
    con = duckdb.connect(str(service.settings.duckdb_path), read_only=True)
    try:
        row = con.execute(
            "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def audit_events(service: PortalService, name: str) -> list[AuditEvent]:
    with service.sessions() as session:
        return list(
            session.scalars(sa.select(AuditEvent).where(AuditEvent.object_id == name).order_by(AuditEvent.id))
        )


def product_row(service: PortalService, name: str) -> DataProduct | None:
    with service.sessions() as session:
        return session.scalar(sa.select(DataProduct).where(DataProduct.name == name))


# --- check -----------------------------------------------------------------------------------


def test_check_dry_runs_the_query_and_writes_nothing(service: PortalService) -> None:
    validation = check(service, spec(), ME)
    assert validation.ok, validation.problems
    assert validation.upstream == ["model.asgard.int_orders"]
    assert dict(validation.columns or []) == {
        "customer_id": "BIGINT",
        "order_count": "BIGINT",
        "net_revenue": "DECIMAL(18,2)",
    }
    assert validation.sample is not None and 0 < len(validation.sample) <= SAMPLE_ROWS
    assert list(validation.sample.columns) == ["customer_id", "order_count", "net_revenue"]
    assert files_of(service, "dp_customer_orders") == []
    assert product_row(service, "dp_customer_orders") is None


def test_configured_product_types_are_accepted(demo_env: dict[str, str], tmp_path: Path) -> None:
    environ = {**copy_demo(demo_env, tmp_path / "portal"), "PORTAL_PRODUCT_TYPES": "RISK"}
    configured = PortalService(Settings.from_env(environ))
    assert "RISK" in creation.product_types(configured)
    assert check(configured, spec(data_product_type="RISK"), ME).ok
    refused = check(configured, spec(data_product_type="FRAUD"), ME)
    assert any(p.field == "data_product_type" for p in refused.problems)


def test_check_points_at_the_offending_sql(service: PortalService) -> None:
    validation = check(service, spec(sql="select customer_id\nfrom stg_orderz"), ME)
    assert not validation.ok
    [problem] = validation.problems
    assert problem.field == "sql" and problem.position == (2, 6)
    assert "stg_orders" in problem.message  # the suggestion


def test_check_reports_a_query_the_warehouse_refuses(service: PortalService) -> None:
    validation = check(service, spec(sql="select order_id,\n  customer_idd\nfrom stg_orders"), ME)
    [problem] = validation.problems
    assert problem.field == "sql" and problem.position == (2, 3)  # in the SQL as written, not as rewritten
    assert "customer_idd" in problem.message and "then try again" in problem.message
    assert "LINE" not in problem.message


def test_check_reports_a_primary_key_the_query_lacks(service: PortalService) -> None:
    validation = check(service, spec(primary_key=("order_id",)), ME)
    assert any(p.field == "primary_key" and "order_id" in p.message for p in validation.problems)


# --- create ----------------------------------------------------------------------------------


def test_create_publishes_a_product_in_catalog_lineage_and_preview(service: PortalService) -> None:
    main_results = load_run_results(find_artifact(service.settings.target_dir, "run_results"))  # type: ignore[arg-type]
    lines: list[str] = []
    result = create(service, spec(), ME, on_line=lines.append)

    assert result.status == "published", result.log
    assert result.outcomes and all(o.status in {"success", "pass"} for o in result.outcomes)
    assert {o.name for o in result.outcomes} >= {"dp_customer_orders", "unique", "not_null"}
    assert any(line.startswith(creation.STAGE) for line in lines) and any("PASS" in line for line in lines)
    # gold holds it, audit no longer does
    assert relation_type(service, "gold", "dp_customer_orders") == "BASE TABLE"
    assert relation_type(service, "audit", "dp_customer_orders") is None
    # the catalog, with its type, row count and passing tests
    by_type = [e.name for e in browse(service, CatalogQuery(types=("CUSTOMER_360",)))]
    assert by_type == ["dp_customer_360", "dp_customer_orders"]
    entry = next(e for e in browse(service) if e.name == "dp_customer_orders")
    assert entry.entry.lifecycle == "published" and entry.entry.owner == "customer-analytics-team"
    assert entry.entry.row_count == result.row_count and result.row_count
    assert entry.health.tests_passed >= 2 and entry.health.tests_failed == 0
    # lineage: the manifest knows the model and what it reads
    detail = product_detail(service, "dp_customer_orders")
    assert "model.asgard.int_orders" in detail.node.depends_on
    assert detail.node.contract_enforced and detail.node.schema == "gold"
    # previewable
    preview = catalog_preview(service, "dp_customer_orders", identity=ME, limit=5)
    assert len(preview.rows) == 5 and preview.total_rows == result.row_count
    # the audit build left the portal's own run_results alone
    after = load_run_results(find_artifact(service.settings.target_dir, "run_results"))  # type: ignore[arg-type]
    assert after.invocation_id == main_results.invocation_id
    # the run, its results and the audit trail
    with service.sessions() as session:
        run = session.get_one(Run, result.run_id)
        assert run.command == "build" and run.selector == "dp_customer_orders" and run.status == "success"
        assert run.details and run.details["wap"] == {
            "outcome": "published",
            "engine": "duckdb",
            "audit_schema": "audit",
            "published": True,
        }
        assert run.triggered_by == "tester" and run.log and "PASS" in run.log
        statuses = set(session.scalars(sa.select(NodeResult.status).where(NodeResult.run_id == run.id)))
        assert statuses == {"success", "pass"}
    row = product_row(service, "dp_customer_orders")
    assert row and row.origin == "portal" and row.created_by == "tester" and row.unique_id
    assert [e.action for e in audit_events(service, "dp_customer_orders")][-1] == "product.created"


def test_failing_test_leaves_a_failed_product_that_can_be_discarded(service: PortalService) -> None:
    # order lines repeat the order's customer: customer_id is no key here
    bad = spec(
        "dp_customer_lines",
        sql="select customer_id, order_id from int_orders",
        column_descriptions={},
    )
    result = create(service, bad, ME)

    assert result.status == "failed", result.log
    failed = result.failed_nodes
    assert [(o.name, o.column) for o in failed] == [("unique", "customer_id")]
    assert failed[0].failures and failed[0].failures > 0
    assert relation_type(service, "gold", "dp_customer_lines") is None  # gold untouched
    assert [p.suffix for p in files_of(service, "dp_customer_lines")] == [".sql", ".yml"]
    row = product_row(service, "dp_customer_lines")
    assert row and row.status == "failed"
    with service.sessions() as session:
        run = session.get_one(Run, result.run_id)
        assert run.status == "partial" and run.details and run.details["wap"]["published"] is False
    # the catalog shows it as failed, with the failing test
    entry = next(e for e in browse(service) if e.name == "dp_customer_lines")
    assert entry.entry.lifecycle == "failed" and entry.health.level == "failing"
    assert entry.problems[0] == "not published: its last audit failed"
    assert [e.name for e in browse(service, CatalogQuery(lifecycles=("failed",)))] == ["dp_customer_lines"]
    assert "dp_customer_lines" in {e.name for e in browse(service, CatalogQuery(health=("failing",)))}
    # its audit build went to the audit schema: never "built" or "refreshed" where consumers read,
    # and not fresh (the bug: "Last build success · Refreshed just now" next to its failing test)
    assert entry.health.build_status is None and entry.last_refreshed is None
    assert freshness(service, "dp_customer_lines").state == "unknown"
    overview = {h.name: h for h in health_overview(service)}["dp_customer_lines"]
    assert overview.health == entry.health  # the Health page judges it as the catalog does
    assert product_detail(service, "dp_customer_lines").health.health == entry.health
    assert [e.action for e in audit_events(service, "dp_customer_lines")][-1] == "product.build_failed"
    # its files stay, pinned to the audit schema: a full dbt build keeps it out of gold
    sql = lifecycle.models_dir(service.settings).joinpath("dp_customer_lines.sql").read_text()
    assert "schema='audit'" in sql
    assert spec_of(service, "dp_customer_lines").sql.startswith("SELECT")  # the form shows plain SQL
    assert product_detail(service, "dp_customer_lines").node.schema == "audit"
    assert not run_dbt(service.settings, ["build", "--select", "dp_customer_lines"]).ok  # its test fails
    assert relation_type(service, "gold", "dp_customer_lines") is None
    # a refresh would build it untested: refused, saying to resubmit
    with pytest.raises(refresh.NotRefreshable, match="resubmit"):
        refresh.refresh_one(service, "dp_customer_lines")
    assert relation_type(service, "gold", "dp_customer_lines") is None
    # no product may read it: its data is in the audit schema, and a discard would break the reader
    reader = spec("dp_lines_reader", sql="select customer_id, order_id from dp_customer_lines")
    (refused,) = check(service, reader, ME).problems
    assert (
        refused.field == "sql"
        and "`dp_customer_lines` is failed: it has never been published" in refused.message
    )

    removed = discard(service, "dp_customer_lines", ME)
    assert {p.name for p in removed} == {"dp_customer_lines.sql", "dp_customer_lines.yml"}
    assert files_of(service, "dp_customer_lines") == []
    assert relation_type(service, "audit", "dp_customer_lines") is None
    assert "dp_customer_lines" not in {e.name for e in service.entries()}
    row = product_row(service, "dp_customer_lines")
    assert row and row.status == "removed"
    assert audit_events(service, "dp_customer_lines")[-1].action == "product.discarded"
    # the name is free again
    assert check(service, bad, ME).problems == []


def test_an_edit_that_leaves_the_sql_unchanged_is_audited_too(service: PortalService) -> None:
    """The audit build reuses the portal's parse state only when the product's SQL changed: dbt
    would not re-parse an unchanged file, so the model would keep its gold schema and be built
    straight into gold. Here only the YAML changes (the key), and its new test fails."""
    assert create(service, spec(), ME).status == "published"
    sql_before = lifecycle.models_dir(service.settings).joinpath("dp_customer_orders.sql").read_text()

    result = edit(service, "dp_customer_orders", spec(primary_key=("order_count",)), ME)

    assert result.status == "restored", result.log
    assert [(o.name, o.column) for o in result.failed_nodes] == [("unique", "order_count")]
    assert "audit.dp_customer_orders" in result.log and "gold.dp_customer_orders" not in result.log
    assert relation_type(service, "audit", "dp_customer_orders") == "BASE TABLE"
    assert lifecycle.models_dir(service.settings).joinpath("dp_customer_orders.sql").read_text() == sql_before


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"sql": "drop table silver.orders"}, "sql", "not a query"),
        ({"sql": "select * from read_csv('/etc/passwd')"}, "sql", "table function"),
        ({"sql": "select * from secret_table"}, "sql", "not a source or model"),
        ({"name": "dp_customer_360"}, "name", "already exists"),
        ({"name": "../dp_evil"}, "name", "path"),
        ({"description": "{{ run_query('drop') }}"}, "description", "Jinja"),
        ({"primary_key": ("no_such_column",)}, "primary_key", "not among"),
    ],
)
def test_invalid_spec_is_refused_and_writes_nothing(
    service: PortalService, changes: dict[str, object], field: str, words: str
) -> None:
    bad = spec(**changes)
    before = sorted(lifecycle.models_dir(service.settings).iterdir())
    with service.sessions() as session:
        rows = session.scalar(sa.select(sa.func.count()).select_from(DataProduct))
    result = create(service, bad, ME)
    assert result.status == "refused"
    assert any(p.field == field and words in p.message for p in result.problems), result.problems
    assert sorted(lifecycle.models_dir(service.settings).iterdir()) == before
    with service.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(DataProduct)) == rows


def test_twenty_concurrent_creates_of_one_name_give_one_product(service: PortalService) -> None:
    start = threading.Barrier(20)
    results: list[creation.CreationResult] = []
    lock = threading.Lock()

    def submit() -> None:
        start.wait()
        result = create(service, spec("dp_popular_name"), ME)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    statuses = Counter(r.status for r in results)
    assert statuses == {"published": 1, "refused": 19}, [
        r.problems for r in results if r.status != "published"
    ]
    for refused in (r for r in results if r.status == "refused"):
        assert [p.field for p in refused.problems] == ["name"]
        assert "dp_popular_name" in refused.problems[0].message
        assert "Choose another name" in refused.problems[0].message
    with service.sessions() as session:
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(DataProduct)
                .where(DataProduct.name == "dp_popular_name")
            )
            == 1
        )
    assert [p.suffix for p in files_of(service, "dp_popular_name")] == [".sql", ".yml"]


def test_a_queued_submission_refused_later_keeps_its_reason(service: PortalService) -> None:
    lines: list[str] = []
    results: list[creation.CreationResult] = []
    warehouse = str(service.settings.duckdb_path)
    with project_lock(service.settings):
        worker = threading.Thread(
            target=lambda: results.append(create(service, spec(), ME, on_line=lines.append))
        )
        worker.start()
        deadline = time.monotonic() + 60
        while WAITING not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lines == [WAITING]
        # While it waits, the model it reads goes away (another build replaced it, say).
        with duckdb.connect(warehouse) as con:
            schema, kind = con.execute(
                "select table_schema, table_type from information_schema.tables where table_name = 'int_orders'"
            ).fetchone()
            kind = "view" if kind == "VIEW" else "table"
            con.execute(f"alter {kind} {schema}.int_orders rename to int_orders_gone")
    worker.join(timeout=300)
    (result,) = results
    assert result.status == "refused" and result.run_id is not None, result.log
    with service.sessions() as session:
        run = session.get_one(Run, result.run_id)
        assert run.status == "error" and run.triggered_by == "tester" and run.finished_at is not None
        assert run.log and "int_orders" in run.log and run.details and run.details["refused"]
    event = audit_events(service, "dp_customer_orders")[-1]
    assert event.action == "product.refused" and event.detail["run_id"] == result.run_id
    refusal = lifecycle.refusal_of(service, "dp_customer_orders")
    assert refusal is not None and refusal[0] == result.run_id and "int_orders" in " ".join(refusal[1])
    reason = lifecycle.why_missing(service, "dp_customer_orders")
    assert reason and "was then refused" in reason and f"/api/v1/runs/{result.run_id}" in reason
    assert files_of(service, "dp_customer_orders") == []  # nothing written
    # the name is free again: once its upstream is back, the same submission publishes
    with duckdb.connect(warehouse) as con:
        con.execute(f"alter {kind} {schema}.int_orders_gone rename to int_orders")
    assert create(service, spec(), ME).status == "published"
    assert lifecycle.refusal_of(service, "dp_customer_orders") is None


def test_a_queued_submission_says_it_waits(service: PortalService) -> None:
    lines: list[str] = []
    results: list[creation.CreationResult] = []
    with project_lock(service.settings):
        refused = create(service, spec(), ME, wait=False)
        assert refused.status == "refused" and "not queued" in refused.problems[0].message
        worker = threading.Thread(
            target=lambda: results.append(create(service, spec(), ME, on_line=lines.append))
        )
        worker.start()
        deadline = time.monotonic() + 60
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # had it not waited, it would have gone on to check and write by now
        assert worker.is_alive() and lines == [WAITING]
        assert lifecycle.models_dir(service.settings).joinpath("dp_customer_orders.sql").exists() is False
    worker.join(timeout=300)
    assert results[0].status == "published", results[0].log
    assert results[0].log.splitlines()[0] == WAITING


# --- edit and deprecate ----------------------------------------------------------------------


def test_edit_then_deprecate_by_owners_only(service: PortalService) -> None:
    assert create(service, spec(), ME).status == "published"
    # Roles come from portal.auth.access: creators may change only their own products.
    stranger = Principal("mallory@example.com", kind="oidc", role="creator")
    refused = edit(service, "dp_customer_orders", spec(description="mine now"), stranger)
    assert refused.status == "refused" and "Only the owner" in refused.problems[0].message
    with pytest.raises(Refused, match="Only the owner"):
        deprecate(service, "dp_customer_orders", stranger)
    with pytest.raises(Refused, match="written by hand"):
        deprecate(service, "dp_customer_360", ME)
    with pytest.raises(Refused, match="only failed"):
        discard(service, "dp_customer_orders", ME)
    renamed = edit(service, "dp_customer_orders", spec("dp_other_name"), ME)
    assert renamed.status == "refused" and "cannot be renamed" in renamed.problems[0].message
    # teams are owners: a member of the owning team may, whoever created it
    owner = Principal("ann@example.com", kind="oidc", groups=("customer-analytics-team",), role="creator")
    assert lifecycle.can_edit(owner, product_row(service, "dp_customer_orders"))  # type: ignore[arg-type]
    viewer = Principal("ann@example.com", kind="oidc", groups=("customer-analytics-team",), role="viewer")
    assert not lifecycle.can_edit(viewer, product_row(service, "dp_customer_orders"))  # type: ignore[arg-type]
    original = spec_of(service, "dp_customer_orders")
    assert original.primary_key == ("customer_id",) and "from int_orders" in original.sql.lower()
    assert check(service, original, ME, editing="dp_customer_orders").problems == []

    changed = spec(
        description="Orders per customer, as a view.",
        materialization="view",
        sql=ORDERS_PER_CUSTOMER.replace("count(order_id)", "count(distinct order_id)"),
    )
    result = edit(service, "dp_customer_orders", changed, ME)
    assert result.status == "published", result.log
    assert relation_type(service, "gold", "dp_customer_orders") == "VIEW"
    event = audit_events(service, "dp_customer_orders")[-1]
    assert event.action == "product.edited" and event.actor == "tester"
    assert set(event.detail["changes"]) == {"description", "materialization", "sql"}
    assert event.detail["changes"]["materialization"] == {"from": "table", "to": "view"}
    assert product_detail(service, "dp_customer_orders").node.materialized == "view"

    deprecate(service, "dp_customer_orders", ME)
    _, yml_path = product_paths(lifecycle.models_dir(service.settings), "dp_customer_orders")
    model = yaml.safe_load(yml_path.read_text())["models"][0]
    assert model["config"]["meta"]["deprecated"] is True
    entry = next(e for e in service.entries() if e.name == "dp_customer_orders")
    assert entry.lifecycle == "deprecated"
    actions = [e.action for e in audit_events(service, "dp_customer_orders")]
    assert actions[-1] == "product.deprecated" and actions.count("product.deprecated") == 1
    assert relation_type(service, "gold", "dp_customer_orders") == "VIEW"  # not deleted
    with pytest.raises(Refused, match="deprecated"):
        deprecate(service, "dp_customer_orders", ME)


def test_a_failed_edit_of_a_published_product_keeps_it_as_it_was(service: PortalService) -> None:
    first = create(service, spec(), ME)
    assert first.status == "published"
    sql_path, yml_path = product_paths(lifecycle.models_dir(service.settings), "dp_customer_orders")
    before = (sql_path.read_text(), yml_path.read_text())

    broken = spec(sql="select customer_id, order_id from int_orders", column_descriptions={})
    result = edit(service, "dp_customer_orders", broken, ME)
    assert result.status == "restored", result.log
    assert [o.name for o in result.failed_nodes] == ["unique"]
    assert (sql_path.read_text(), yml_path.read_text()) == before
    row = product_row(service, "dp_customer_orders")
    assert row and row.status == "published" and row.row_count == first.row_count
    assert relation_type(service, "gold", "dp_customer_orders") == "BASE TABLE"
    assert audit_events(service, "dp_customer_orders")[-1].action == "product.build_failed"


def test_orphans_are_reported_and_a_dead_build_can_be_discarded(service: PortalService) -> None:
    folder = lifecycle.models_dir(service.settings)
    (folder / "dp_half_written.yml").write_text("version: 2\n")
    (folder / ".dp_other.sql.abc.tmp").write_text("select")
    # a portal killed mid-build leaves its product `building`
    with service.sessions.begin() as session:
        session.add(
            DataProduct(name="dp_interrupted", status="building", origin="portal", created_by="tester")
        )
    found = {o.path.name: o.reason for o in lifecycle.orphans(service)}
    assert set(found) == {"dp_half_written.yml", ".dp_other.sql.abc.tmp", "dp_interrupted.sql"}
    assert all(found.values())
    with project_lock(service.settings):  # while a build runs, `building` is true
        assert "dp_interrupted.sql" not in {o.path.name for o in lifecycle.orphans(service)}
        with pytest.raises(Refused, match="being built right now"):
            discard(service, "dp_interrupted", ME)
    discard(service, "dp_interrupted", ME)
    row = product_row(service, "dp_interrupted")
    assert row and row.status == "removed"
