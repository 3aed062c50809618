"""The SQL workspace on a private copy of the real demo build: the creation guard, the warehouse's
bounds, the user's history and usage, export, and what a promotion carries to Create."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from catalog_db.models import UsageEvent, WorkspaceQuery
from portal.auth.access import Principal
from portal.auth.identity import Identity
from portal.catalog import workspace
from portal.errors import InvalidInput
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

ME = Identity("tester")
BY_CUSTOMER = """select customer_id, count(*) as order_count
from stg_orders
group by customer_id
order by order_count desc, customer_id"""


def service_of(demo_env: dict[str, str], base: Path, **extra: str) -> PortalService:
    return PortalService(Settings.from_env({**copy_demo(demo_env, base), **extra}))


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> PortalService:
    return service_of(demo_env, tmp_path / "portal", PORTAL_PREVIEW_MAX_ROWS="50")


def test_a_good_query_returns_rows_within_the_cap_and_is_kept(service: PortalService) -> None:
    result = workspace.run_query(service, BY_CUSTOMER, ME)
    assert result.ok and result.problems == []
    assert result.rows is not None and len(result.rows) == 50 and result.limit == 50  # the cap
    assert result.truncated  # the demo has more customers than that
    assert list(result.rows.columns) == ["customer_id", "order_count"]
    counts = list(result.rows["order_count"])
    assert counts == sorted(counts, reverse=True)  # the query's own order survives the cap
    assert [name for name, _ in result.columns] == ["customer_id", "order_count"]
    assert dict(result.columns)["order_count"] == "BIGINT"
    assert result.upstream_names == ["stg_orders"]

    fewer = workspace.run_query(service, BY_CUSTOMER + "\nlimit 7", ME)
    assert fewer.rows is not None and len(fewer.rows) == 7 and not fewer.truncated

    (newest, older) = workspace.history(service, ME)
    assert newest.id == fewer.history_id and older.id == result.history_id
    assert (older.sql, older.status, older.rows, older.upstream) == (
        BY_CUSTOMER,
        "ok",
        50,
        ("model.asgard.stg_orders",),
    )
    assert older.elapsed_ms is not None and older.message is None


def test_more_rows_than_the_cap_are_refused(service: PortalService) -> None:
    with pytest.raises(InvalidInput, match="1 to 50 rows"):
        workspace.run_query(service, BY_CUSTOMER, ME, limit=51)


def test_a_run_is_a_read_of_each_relation_it_reads(service: PortalService) -> None:
    sql = (
        "select c.customer_id, count(o.order_id) as orders\n"
        "from stg_customers c join stg_orders o on o.customer_id = c.customer_id\n"
        "group by c.customer_id"
    )
    result = workspace.run_query(service, sql, ME, limit=10)
    assert result.ok
    with service.sessions() as session:
        reads = session.scalars(sa.select(UsageEvent).order_by(UsageEvent.product)).all()
    assert [(r.user, r.product, r.face, r.rows) for r in reads] == [
        ("tester", "stg_customers", "ui", 10),
        ("tester", "stg_orders", "ui", 10),
    ]
    assert all(r.detail["workspace_query"] == result.history_id for r in reads)


def test_a_write_is_refused_with_its_position(service: PortalService) -> None:
    result = workspace.run_query(service, "delete from stg_orders\nwhere order_id = 1", ME)
    assert result.status == "refused" and result.rows is None
    (problem,) = result.problems
    assert problem.position is not None and problem.position[0] == 1  # where the guard found it
    assert "`DELETE` statements are not allowed" in problem.message
    (kept,) = workspace.history(service, ME)
    assert kept.status == "refused" and kept.message and kept.message.startswith("Line 1, column ")
    with service.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(UsageEvent)) == 0  # nothing read


def test_an_unknown_table_is_refused_at_its_line_and_column(service: PortalService) -> None:
    result = workspace.run_query(service, "select customer_id\nfrom stg_orderz", ME)
    assert result.status == "refused"
    (problem,) = result.problems
    assert problem.position == (2, 6)
    assert "stg_orderz" in problem.message and "stg_orders" in problem.message  # what was meant


def test_a_warehouse_refusal_points_into_what_the_user_wrote(service: PortalService) -> None:
    result = workspace.run_query(service, "select customer_id,\n    order_totl as total\nfrom stg_orders", ME)
    assert result.status == "refused"
    (problem,) = result.problems
    assert "order_totl" in problem.message and problem.position == (2, 5)


def test_a_viewer_may_query(service: PortalService) -> None:
    viewer = Principal("vera", "token", "viewer")
    result = workspace.run_query(service, "select order_id, order_status from stg_orders", viewer, limit=3)
    assert result.ok and result.rows is not None and len(result.rows) == 3
    assert [entry.status for entry in workspace.history(service, viewer)] == ["ok"]


def test_history_is_per_user_newest_first_and_bounded(
    service: PortalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace, "HISTORY_KEPT", 5)
    ann, bob = Identity("ann"), Identity("bob")
    for n in range(7):
        workspace.run_query(service, f"select order_id from stg_orders where order_id = {n}", ann, limit=1)
    workspace.run_query(service, "select customer_id from stg_customers", bob, limit=1)

    kept = workspace.history(service, ann)
    assert [entry.sql[-1] for entry in kept] == ["6", "5", "4", "3", "2"]  # newest first, the last 5
    assert [entry.sql for entry in workspace.history(service, bob)] == [
        "select customer_id from stg_customers"
    ]
    with service.sessions() as session:  # the older ones are gone, not hidden
        assert session.scalar(sa.select(sa.func.count()).where(WorkspaceQuery.user == "ann")) == 5


def test_a_query_past_the_timeout_is_stopped_and_says_so(demo_env: dict[str, str], tmp_path: Path) -> None:
    service = service_of(demo_env, tmp_path / "portal", PORTAL_QUERY_TIMEOUT_S="0.2")
    slow = (
        "select sum(a.order_id * b.order_id * c.order_id) as n\n"
        "from stg_orders a cross join stg_orders b cross join stg_orders c"
    )
    result = workspace.run_query(service, slow, ME)
    assert result.status == "timeout" and result.rows is None
    (problem,) = result.problems
    assert "longer than 0.2 s" in problem.message and "PORTAL_QUERY_TIMEOUT_S" in problem.message
    assert [entry.status for entry in workspace.history(service, ME)] == ["timeout"]


def test_exports_hold_the_rows_shown(service: PortalService) -> None:
    result = workspace.run_query(service, "select order_id, order_date, shipping_amount from stg_orders", ME)
    assert result.rows is not None
    csv = pd.read_csv(io.BytesIO(workspace.export_csv(result)))
    assert list(csv.columns) == ["order_id", "order_date", "shipping_amount"] and len(csv) == 50
    parquet = pd.read_parquet(io.BytesIO(workspace.export_parquet(result)))
    assert parquet["order_id"].tolist() == result.rows["order_id"].tolist()
    refused = workspace.run_query(service, "select nope from nowhere", ME)
    with pytest.raises(InvalidInput, match="no rows to export"):
        workspace.export_csv(refused)


def test_a_promotion_carries_the_query_its_upstreams_and_columns(service: PortalService) -> None:
    result = workspace.run_query(service, BY_CUSTOMER, ME)
    promotion = result.promotion
    assert promotion is not None
    assert promotion.sql == BY_CUSTOMER
    assert promotion.upstream == ("stg_orders",)
    assert [name for name, _ in promotion.columns] == ["customer_id", "order_count"]
    assert "`stg_orders`" in promotion.note and "`order_count` (BIGINT)" in promotion.note
    assert workspace.run_query(service, "select 1 as x from nowhere", ME).promotion is None


def test_a_source_reads_by_its_source_name(service: PortalService) -> None:
    result = workspace.run_query(service, "select order_id from silver.orders", ME, limit=2)
    assert result.ok and result.upstream_names == ["silver.orders"]
