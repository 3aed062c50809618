"""Review required: a change whose build and tests pass waits for a reviewer, main untouched,
its data in the audit schema; a reviewer who is not its author approves (publish, merge, push)
or rejects it (its data goes, the author reads why). Real builds on a private copy of the demo,
whose project is a git repository pushed to a real local bare remote."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import yaml

from catalog_db.models import AuditEvent, DataProduct, ProductProfile, Proposal
from portal.auth.access import PermissionDenied, Principal
from portal.creation import review
from portal.creation.flow import create, edit
from portal.creation.lifecycle import discard, spec_of
from portal.errors import Busy, Conflict, InvalidInput, NotFound
from portal.project.locks import build_lock
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo
from tests.products_in_git import git, sales_spec

pytestmark = pytest.mark.slow
SAM = Principal("sam@example.com", kind="oidc", groups=("team-sales",), role="creator")
RITA = Principal("rita@example.com", kind="oidc", groups=("data-reviewers",), role="reviewer")
VIC = Principal("vic@example.com", kind="oidc", groups=("team-marketing",), role="creator")
MODELS = "models/data_products"


@pytest.fixture
def environ(demo_env: dict[str, str], tmp_path: Path, remote: Path) -> dict[str, str]:
    copied = copy_demo(demo_env, tmp_path / "portal")
    return {**copied, "PORTAL_GIT_REMOTE": str(remote), "PORTAL_REVIEW": "required"}


@pytest.fixture
def service(environ: dict[str, str]) -> PortalService:
    return PortalService(Settings.from_env(environ))


def relations(settings: Settings, name: str) -> set[str]:
    """The schemas holding a relation called `name` in the warehouse."""
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = con.execute("select table_schema from information_schema.tables where table_name = ?", [name])
        return {row[0] for row in rows.fetchall()}


def proposal_of(service: PortalService, proposal_id: int | None) -> Proposal:
    assert proposal_id is not None
    with service.sessions() as session:
        return session.get_one(Proposal, proposal_id)


def status_of(service: PortalService, name: str) -> str:
    with service.sessions() as session:
        return session.scalars(sa.select(DataProduct.status).where(DataProduct.name == name)).one()


def events(service: PortalService, name: str) -> list[tuple[str, str]]:
    with service.sessions() as session:
        rows = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.object_id == name).order_by(AuditEvent.id)
        )
        return [(row.action, row.actor) for row in rows]


def test_review_off_is_the_embedded_default_and_required_elsewhere() -> None:
    assert Settings.from_env({}).review_required is False
    assert Settings.from_env({"PORTAL_AUTH": "oidc"}).review_required is True
    assert Settings.from_env({"PORTAL_WAREHOUSE": "trino"}).review_required is True
    assert Settings.from_env({"PORTAL_REVIEW": "off", "PORTAL_AUTH": "oidc"}).review_required is False


def test_a_creation_waits_for_a_reviewer_and_another_user_publishes_it(
    service: PortalService, environ: dict[str, str], remote: Path
) -> None:
    settings = service.settings
    project = settings.dbt_project_dir
    result = create(service, sales_spec("dp_sales_customers"), SAM)
    assert result.status == "in_review", result.log
    main = git(project, "rev-parse", "main")
    assert git(remote, "rev-parse", "main") == main  # the remote has main as it was
    branch = f"product/dp_sales_customers/{result.run_id}"
    # the branch holds exactly one commit, by its author; main does not have it
    assert git(project, "log", "--format=%ae|%s", f"main..{branch}") == (
        "sam@example.com|Create data product dp_sales_customers"
    )
    assert f"{MODELS}/dp_sales_customers.yml" not in git(project, "ls-tree", "-r", "--name-only", "main")
    assert git(remote, "branch", "--list", "product/*") == ""  # a proposal is not pushed
    assert relations(settings, "dp_sales_customers") == {"audit"}  # gold untouched
    assert status_of(service, "dp_sales_customers") == "in_review"
    proposal = proposal_of(service, result.proposal_id)
    assert (proposal.state, proposal.author, proposal.branch) == ("in_review", "sam@example.com", branch)

    # the author may not decide on their own proposal, nor may someone who is no reviewer
    with pytest.raises(PermissionDenied, match="authors cannot approve or reject their own"):
        review.approve(service, proposal.id, SAM)
    with pytest.raises(PermissionDenied, match=r"vic@example.com \(creator\) may not decide"):
        review.approve(service, proposal.id, VIC)

    # a portal restarted meanwhile: the proposal is in the catalog database, its data in audit
    restarted = PortalService(Settings.from_env(environ))
    decision = review.approve(restarted, proposal.id, RITA, "Looks right.")
    assert decision.proposal.state == "published" and decision.proposal.decided_by == "rita@example.com"
    assert decision.row_count and decision.row_count > 0
    assert relations(settings, "dp_sales_customers") == {settings.gold_schema}
    published_main = git(project, "rev-parse", "main")
    assert published_main == decision.proposal.merged_sha == git(remote, "rev-parse", "main")
    # main had not moved: it fast-forwards to the author's own commit
    assert published_main == proposal.commit_sha
    assert git(project, "log", "-1", "--format=%ae", "main") == "sam@example.com"
    committed = yaml.safe_load(git(project, "show", f"main:{MODELS}/dp_sales_customers.yml"))
    assert "schema" not in committed["models"][0].get("config", {})  # not pinned to audit on main
    assert git(project, "status", "--porcelain") == ""  # the served checkout is main
    assert git(project, "branch", "--list", "product/*") == ""
    assert status_of(restarted, "dp_sales_customers") == "published"
    with restarted.sessions() as session:  # profiled right after it was published
        profiles = session.scalars(
            sa.select(ProductProfile).where(ProductProfile.product == "dp_sales_customers")
        )
        assert [p.row_count for p in profiles] == [decision.row_count]
    assert ("proposal.submitted", "sam@example.com") in events(restarted, "dp_sales_customers")
    assert ("proposal.approved", "rita@example.com") in events(restarted, "dp_sales_customers")

    with pytest.raises(Conflict, match="cannot be approved: it was published"):
        review.approve(restarted, proposal.id, RITA)


def test_a_rejection_removes_the_held_data_and_the_author_reads_why(service: PortalService) -> None:
    settings = service.settings
    result = create(service, sales_spec("dp_sales_rejected"), SAM)
    assert result.status == "in_review", result.log
    assert result.proposal_id is not None
    with pytest.raises(InvalidInput, match="Say why in the comment"):
        review.reject(service, result.proposal_id, RITA, "  ")
    with pytest.raises(PermissionDenied, match="authors cannot"):
        review.reject(service, result.proposal_id, SAM, "I changed my mind.")
    decision = review.reject(service, result.proposal_id, RITA, "Count distinct orders, not lines.")
    assert decision.proposal.state == "rejected"
    assert decision.proposal.comment == "Count distinct orders, not lines."
    assert relations(settings, "dp_sales_rejected") == set()  # no data left where it was held
    assert status_of(service, "dp_sales_rejected") == "rejected"
    branch = decision.proposal.branch  # the author's work stays readable
    assert git(settings.dbt_project_dir, "branch", "--list", "--format=%(refname:short)", branch) == branch
    assert ("proposal.rejected", "rita@example.com") in events(service, "dp_sales_rejected")

    # the author fixes it and resubmits: a new proposal, in review again
    fixed = sales_spec(
        "dp_sales_rejected",
        "select customer_id, count(distinct order_id) as orders from int_orders group by 1",
    )
    again = edit(service, "dp_sales_rejected", fixed, SAM)
    assert again.status == "in_review", again.log
    assert again.proposal_id not in (None, result.proposal_id)
    assert proposal_of(service, result.proposal_id).state == "rejected"

    # discarding the product removes what its proposals held
    discard(service, "dp_sales_rejected", SAM)
    assert relations(settings, "dp_sales_rejected") == set()
    assert proposal_of(service, again.proposal_id).state == "discarded"


def test_an_edit_of_a_published_product_keeps_it_published_until_approved(
    service: PortalService, environ: dict[str, str]
) -> None:
    settings = service.settings
    off = PortalService(Settings.from_env({**environ, "PORTAL_REVIEW": "off"}))
    assert create(off, sales_spec("dp_sales_edited"), SAM).status == "published"
    yml = settings.dbt_project_dir / MODELS / "dp_sales_edited.yml"
    published_yml = yml.read_text()
    changed = sales_spec("dp_sales_edited", description="Orders per customer, now edited.")
    result = edit(service, "dp_sales_edited", changed, SAM)
    assert result.status == "in_review", result.log
    assert status_of(service, "dp_sales_edited") == "published"  # consumers still read it
    assert yml.read_text() == published_yml  # the checkout serves the published version meanwhile
    assert relations(settings, "dp_sales_edited") == {settings.gold_schema, "audit"}

    # a second edit replaces the proposal still waiting
    again = edit(service, "dp_sales_edited", replace(changed, description="Edited twice."), SAM)
    assert again.status == "in_review", again.log
    assert proposal_of(service, result.proposal_id).state == "superseded"
    review.approve(service, again.proposal_id or 0, RITA)
    assert "Edited twice." in yml.read_text()
    assert relations(settings, "dp_sales_edited") == {settings.gold_schema}
    assert git(settings.dbt_project_dir, "status", "--porcelain") == ""


def test_a_proposal_whose_upstream_changed_on_main_is_stale(service: PortalService) -> None:
    settings = service.settings
    project = settings.dbt_project_dir
    result = create(service, sales_spec("dp_sales_stale"), SAM)
    assert result.status == "in_review", result.log
    # someone changes what the product reads, on main
    upstream = next(project.glob("models/**/int_orders.sql"))
    upstream.write_text(upstream.read_text() + "\n-- a change on main\n")
    git(
        project,
        "-c",
        "user.name=Ed",
        "-c",
        "user.email=ed@example.com",
        "commit",
        "-qam",
        "Change int_orders",
    )
    with pytest.raises(Conflict, match=r"int_orders\.sql since proposal"):
        review.approve(service, result.proposal_id or 0, RITA)
    assert proposal_of(service, result.proposal_id).state == "stale"
    assert relations(settings, "dp_sales_stale") == {"audit"}  # nothing was published
    # a stale proposal can still be rejected, which frees its data
    review.reject(service, result.proposal_id or 0, RITA, "Stale: resubmit on the new int_orders.")
    assert relations(settings, "dp_sales_stale") == set()


def test_an_undecided_proposal_expires_with_its_branch(service: PortalService) -> None:
    settings = service.settings
    result = create(service, sales_spec("dp_sales_expiring"), SAM)
    assert result.status == "in_review", result.log
    assert review.expire_due(service) == []  # not yet
    later = datetime.now(UTC) + timedelta(days=settings.review_expiry_days, minutes=1)
    assert review.expire_due(service, now=later) == [result.proposal_id]
    proposal = proposal_of(service, result.proposal_id)
    assert (proposal.state, proposal.decided_by) == ("expired", review.SYSTEM)
    assert git(settings.dbt_project_dir, "branch", "--list", proposal.branch) == ""
    assert relations(settings, "dp_sales_expiring") == set()
    assert status_of(service, "dp_sales_expiring") == "rejected"
    assert ("proposal.expired", review.SYSTEM) in events(service, "dp_sales_expiring")


def test_a_decision_waits_for_a_running_build_a_while_then_says_it_is_busy(service: PortalService) -> None:
    result = create(service, sales_spec("dp_sales_waiting"), SAM)
    assert result.status == "in_review" and result.proposal_id is not None, result.log
    impatient = replace(service.settings, lock_wait_s=0.5)
    # a build on the project that outlasts the wait
    busy = pytest.raises(Busy, match=r"still after 0\.5 s\); try again when it finishes")
    with build_lock(service.settings).hold(wait=False), busy:
        review.approve(PortalService(impatient), result.proposal_id, RITA)
    assert proposal_of(service, result.proposal_id).state == "in_review"  # nothing was decided

    # a build that ends within PORTAL_LOCK_WAIT_S: the approval waits for it, then publishes
    held = threading.Event()

    def build_for_two_seconds() -> None:
        with build_lock(service.settings).hold(wait=False):
            held.set()
            time.sleep(2)

    build = threading.Thread(target=build_for_two_seconds)
    build.start()
    assert held.wait(10)
    decision = review.approve(service, result.proposal_id, RITA)
    build.join()
    assert decision.proposal.state == "published"
    assert status_of(service, "dp_sales_waiting") == "published"


def test_a_rejected_edit_is_resubmitted_from_its_draft_not_from_main(
    service: PortalService, environ: dict[str, str]
) -> None:
    off = PortalService(Settings.from_env({**environ, "PORTAL_REVIEW": "off"}))
    assert create(off, sales_spec("dp_sales_redone"), SAM).status == "published"
    draft_sql = "select customer_id, count(distinct order_id) as orders from int_orders group by 1"
    proposed = sales_spec("dp_sales_redone", draft_sql, description="Distinct orders per customer.")
    result = edit(service, "dp_sales_redone", proposed, SAM)
    assert result.status == "in_review" and result.proposal_id is not None, result.log
    review.reject(service, result.proposal_id, RITA, "Say in the description that refunds count.")

    on_main = spec_of(service, "dp_sales_redone")
    draft = spec_of(service, "dp_sales_redone", proposal_id=result.proposal_id)
    assert on_main.description == "Orders per customer, for the sales team."  # the published version
    assert draft.description == "Distinct orders per customer."
    assert "count(distinct order_id)" in draft.sql.lower() and "distinct" not in on_main.sql.lower()
    assert draft.primary_key == ("customer_id",) and draft.owner == "team-sales"
    # the draft, fixed as the reviewer asked, goes to review again
    fixed = replace(draft, description="Distinct orders per customer; refunded orders count.")
    again = edit(service, "dp_sales_redone", fixed, SAM)
    assert again.status == "in_review", again.log
    with pytest.raises(NotFound, match="has no proposal"):
        spec_of(service, "dp_sales_waiting", proposal_id=result.proposal_id)  # another product's
