"""Every product change is a git commit in the project's own repository, by the person who
asked: real builds on a private copy of the demo, whose project is a git repository, pushed to
a real local bare remote. The review issue's first step: with review off, publishing merges."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from catalog_db.models import AuditEvent, Run
from portal.auth.access import Principal
from portal.creation.commits import proposals
from portal.creation.flow import create, edit
from portal.creation.lifecycle import deprecate, discard
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo
from tests.products_in_git import git, sales_spec

pytestmark = pytest.mark.slow
SAM = Principal("sam@example.com", kind="oidc", groups=("team-sales",), role="creator")
ADA = Principal("ada@example.com", kind="oidc", groups=("analytics-admins",), role="admin")
MODELS = "models/data_products"


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path, remote: Path) -> PortalService:
    environ = copy_demo(demo_env, tmp_path / "portal")
    return PortalService(Settings.from_env({**environ, "PORTAL_GIT_REMOTE": str(remote)}))


def test_a_published_creation_is_its_authors_commit_on_main_and_on_the_remote(
    service: PortalService, remote: Path
) -> None:
    project = service.settings.dbt_project_dir
    before = git(project, "rev-parse", "main")
    result = create(
        service,
        sales_spec("dp_sales_customers", "select customer_id, count(*) as orders from int_orders group by 1"),
        SAM,
    )
    assert result.status == "published", result.log
    assert f"Profiled dp_sales_customers: {result.row_count:,} rows" in result.log  # right after publishing
    main = git(project, "rev-parse", "main")
    assert main != before and git(remote, "rev-parse", "main") == main  # pushed
    assert git(project, "log", "-1", "--format=%an <%ae>|%s", "main") == (
        "sam@example.com <sam@example.com>|Create data product dp_sales_customers"
    )
    committed = git(project, "show", f"main:{MODELS}/dp_sales_customers.yml")
    assert yaml.safe_load(committed)["models"][0]["name"] == "dp_sales_customers"
    assert git(project, "status", "--porcelain") == ""  # the served checkout is main, nothing pending
    assert git(project, "branch", "--list", "product/*") == ""  # merged: main's history holds it
    with service.sessions() as session:
        details = session.get_one(Run, result.run_id).details or {}
        event = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "product.created")).one()
    assert details["git"]["main"] == main and details["git"]["pushed"] is True
    assert event.detail["commit"] == details["git"]["commit"]
    assert any("Committed" in line and "by sam@example.com" in line for line in result.log.splitlines())

    sql = "select customer_id, count(*) as orders from int_orders group by 1"
    changed = replace(sales_spec("dp_sales_customers", sql), description="Orders per customer, edited.")
    edited = edit(service, "dp_sales_customers", changed, SAM)
    assert edited.status == "published", edited.log
    assert git(project, "log", "-1", "--format=%ae|%s|%b", "main").startswith(
        "sam@example.com|Edit data product dp_sales_customers|Changed: description."
    )

    deprecate(service, "dp_sales_customers", ADA)
    assert git(project, "log", "-1", "--format=%ae|%s", "main") == (
        "ada@example.com|Deprecate data product dp_sales_customers"
    )
    model = yaml.safe_load(git(project, "show", f"main:{MODELS}/dp_sales_customers.yml"))["models"][0]
    assert model["config"]["meta"]["deprecated"] is True
    assert git(remote, "rev-parse", "main") == git(project, "rev-parse", "main")
    kept = [(p.action, p.state, p.author) for p in proposals(service.sessions, product="dp_sales_customers")]
    assert kept == [
        ("product.deprecated", "published", "ada@example.com"),
        ("product.edited", "published", "sam@example.com"),
        ("product.created", "published", "sam@example.com"),
    ]


def test_a_failed_creation_stays_on_its_branch_until_discarded(service: PortalService, remote: Path) -> None:
    project = service.settings.dbt_project_dir
    main = git(project, "rev-parse", "main")
    # order lines repeat their customer: customer_id is no key, the audit's unique test fails
    result = create(
        service, sales_spec("dp_sales_lines", "select customer_id, order_id from int_orders"), SAM
    )
    assert result.status == "failed", result.log
    # main untouched; the remote, joined on first use, has main as it was and no branch of the try
    assert git(project, "rev-parse", "main") == main and git(remote, "rev-parse", "main") == main
    assert git(remote, "branch", "--list", "product/*") == ""
    branch = f"product/dp_sales_lines/{result.run_id}"
    assert git(project, "branch", "--list", "--format=%(refname:short)", "product/*") == branch
    assert git(project, "log", "--format=%ae", f"main..{branch}") == "sam@example.com"  # one commit, hers
    (tried,) = proposals(service.sessions, product="dp_sales_lines")
    assert (tried.branch, tried.state, tried.merged_sha) == (branch, "failed", None)
    discard(service, "dp_sales_lines", SAM)
    assert git(project, "branch", "--list", "product/*") == ""
    assert [p.state for p in proposals(service.sessions, product="dp_sales_lines")] == ["discarded"]


def test_the_portal_never_commits_into_its_own_source_repository(service: PortalService) -> None:
    inside = PortalService(replace(service.settings, dbt_project_dir=ROOT / "dbt"))
    status = git(ROOT, "status", "--porcelain", "--", "dbt")
    result = create(inside, sales_spec("dp_in_the_source_tree", "select 1 as customer_id"), SAM)
    assert result.status == "refused"
    (problem,) = result.problems
    assert problem.field == "project" and "lies inside another git repository" in problem.message, problem
    assert git(ROOT, "status", "--porcelain", "--", "dbt") == status  # nothing written there
