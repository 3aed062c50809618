"""Review: a reviewer approves or rejects a proposal held for review, and proposals left
undecided expire.

With PORTAL_REVIEW required, a product change whose build and tests passed waits `in_review`
(portal/creation/flow.py): its commit on its branch `product/<name>/<run>`, its data where it was
audited (portal/creation/held.py). Then:

- **approve** (a reviewer of PORTAL_REVIEWERS, never the author): under the project's dbt lock,
  refuse a proposal whose base moved on under it (`stale_reason`: main changed its files or what
  it reads; it becomes `stale` and its author resubmits), put the proposal's files in the served
  checkout, publish the held data (DuckDB: audit -> gold; Trino: merge the Nessie branch as it was
  reviewed), merge the commit into main and push, `dbt parse`, and record it all. A failure on the
  way puts the checkout's files back and leaves the proposal in review (or stale, on a conflict).
- **reject** (the same reviewers, with a comment saying why): the held data goes, the git branch
  stays (the author's work and the diff stay readable), a new product becomes `rejected` and a
  published one stays as it was; its author edits and resubmits.
- **expire**: a proposal undecided after PORTAL_REVIEW_EXPIRY_DAYS is closed, its held data and
  its branch removed.

Every decision is an audit event (proposal.approved, proposal.rejected, proposal.expired,
proposal.stale). This module imports no web framework.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from catalog_db.models import DataProduct, Proposal, Run
from portal.audit import add_event
from portal.auth.access import PermissionDenied, review_refusal, why_not
from portal.auth.identity import Identity
from portal.creation import commits, held
from portal.creation.lifecycle import current_files, models_dir
from portal.creation.publish.base import PublishConflict
from portal.creation.publish.registry import publisher_for
from portal.creation.scaffold import GeneratedFiles, product_paths, write_product
from portal.errors import Conflict, InvalidInput, NotFound, PortalError
from portal.observability.history import profile_published
from portal.project.artifacts import Artifacts, Manifest, find_artifact, load_manifest
from portal.project.dbt_runner import DbtBusy, project_lock, run_dbt
from portal.project.repository import ProjectRepository
from portal.project.sync import sync
from portal.runs import registration
from portal.service import PortalService

log = logging.getLogger(__name__)
MAX_COMMENT = 4000
SYSTEM = "portal-review"  # the actor of what no person decided (an expiry)


@dataclass(frozen=True)
class Decision:
    """What a decision did: the proposal as it is now, and in words."""

    proposal: Proposal
    message: str
    row_count: int | None = None


# --- who may decide --------------------------------------------------------------------------


def upstream_owners(service: PortalService, proposal: Proposal) -> list[str]:
    """The teams owning the products the proposal's SQL reads (from its audit build's manifest)."""
    names = [node.name for node in _upstream(service, proposal.product)]
    if not names:
        return []
    with service.sessions() as session:
        owners = session.scalars(
            sa.select(DataProduct.owner).where(DataProduct.name.in_(names), DataProduct.owner.is_not(None))
        )
        return sorted({owner for owner in owners if owner})


def refusal(service: PortalService, proposal: Proposal, identity: Identity) -> str | None:
    """Why `identity` may not decide on `proposal`, or None (see access.review_refusal)."""
    return review_refusal(
        identity,
        author=proposal.author,
        upstream_owners=upstream_owners(service, proposal),
        reviewers=service.settings.reviewers,
    )


def _require_reviewer(service: PortalService, proposal: Proposal, identity: Identity) -> None:
    why = refusal(service, proposal, identity)
    if why is not None:
        raise PermissionDenied(why)


# --- reading ---------------------------------------------------------------------------------


def get(service: PortalService, proposal_id: int) -> Proposal:
    with service.sessions() as session:
        row = session.get(Proposal, proposal_id)
    if row is None:
        raise NotFound(f"There is no proposal {proposal_id}; GET /api/v1/proposals lists them.")
    return row


# A proposal that ended without being published: its draft goes back to its author's form.
RESUBMITTABLE = ("stale", "rejected", "expired")


def may_resubmit(service: PortalService, identity: Identity, proposal: Proposal) -> bool:
    """Whether `identity` may reopen `proposal`'s draft in the Create form (lifecycle.spec_of with
    its id): a creation or edit that ended unpublished, and they may edit the product."""
    return (
        proposal.state in RESUBMITTABLE
        and proposal.action in ("product.created", "product.edited")
        and why_not(identity, "edit", registration(service, proposal.product)) is None
    )


def audit_manifest(service: PortalService, name: str) -> Manifest | None:
    """The manifest of the product's latest audit build (what the proposal's SQL is), falling
    back to the project's."""
    publisher = publisher_for(service.settings)
    path = find_artifact(publisher.audit_target(name), "manifest") or find_artifact(
        service.settings.target_dir, "manifest"
    )
    return load_manifest(path) if path else None


def _upstream(service: PortalService, name: str) -> list[Any]:
    manifest = audit_manifest(service, name)
    if manifest is None:
        return []
    node = next((n for n in manifest.models() if n.name == name), None)
    if node is None:
        return []
    return [found for uid in node.depends_on if (found := manifest.get(uid)) is not None]


def proposed_files(repo: ProjectRepository, service: PortalService, proposal: Proposal) -> GeneratedFiles:
    """The product's two files as the proposal commits them."""
    sql_path, yml_path = _repo_paths(service, proposal.product)
    sql_text, yml_text = (repo.read(proposal.commit_sha, path) for path in (sql_path, yml_path))
    if sql_text is None or yml_text is None:
        raise Conflict(
            f"Proposal {proposal.id} does not hold both of {proposal.product}'s files ({sql_path}, {yml_path}); "
            "there is nothing to publish. Reject it, or resubmit the product."
        )
    return GeneratedFiles(proposal.product, sql_text, yml_text)


def _repo_paths(service: PortalService, name: str) -> tuple[str, str]:
    root = service.settings.dbt_project_dir.resolve()
    sql, yml = product_paths(models_dir(service.settings).resolve(), name)
    return sql.relative_to(root).as_posix(), yml.relative_to(root).as_posix()


def stale_reason(service: PortalService, repo: ProjectRepository, proposal: Proposal) -> str | None:
    """Why the proposal was built on a main that is gone, or None: main changed, since the
    proposal's base, the product's own files or the files of what it reads. (Any other change
    of main, such as another product, leaves it as reviewable as it was.)"""
    head = repo.head()
    if head is None or head == proposal.base_sha:
        return None
    relevant = set(_repo_paths(service, proposal.product))
    relevant |= {node.original_file_path for node in _upstream(service, proposal.product)}
    touched = sorted(
        change.path for change in repo.changes(proposal.base_sha, head) if change.path in relevant
    )
    if not touched:
        return None
    return (
        f"main changed {', '.join(touched)} since proposal {proposal.id} was built on {proposal.base_sha[:12]}, "
        "so what was reviewed is not what would be published. Its author resubmits it (Edit, then "
        "submit) to build and test it on main as it is now."
    )


# --- deciding --------------------------------------------------------------------------------


def approve(service: PortalService, proposal_id: int, identity: Identity, comment: str = "") -> Decision:
    """Publish a proposal in review; see the module docstring. Raises PortalError with the reason
    when it cannot be (PermissionDenied, Conflict when stale or not in review, Busy while a build
    holds the project)."""
    comment = _comment(comment, required=False)
    proposal = get(service, proposal_id)
    _require_reviewer(service, proposal, identity)
    _require_in_review(proposal, "approved")
    settings = service.settings
    # A build on the project is waited for a while; past that, DbtBusy (503 + Retry-After).
    with project_lock(settings, wait=settings.lock_wait_s):
        proposal = get(service, proposal_id)  # decided by someone else meanwhile?
        _require_in_review(proposal, "approved")
        repo = commits.repository(settings)
        why = stale_reason(service, repo, proposal)
        if why is not None:
            _mark_stale(service, proposal, why)
            raise Conflict(why)
        files = proposed_files(repo, service, proposal)
        directory = models_dir(settings)
        before = current_files(settings, proposal.product) if _has_files(service, proposal.product) else None
        with service.sessions() as session:
            record = held.record_of(session, proposal)
        write_product(directory, files, overwrite=True)  # what main will hold, and dbt will build
        try:
            published = publisher_for(settings).publish_held(
                proposal.product, materialization=str(record.get("materialization", "table")), record=record
            )
        except PublishConflict as exc:
            _put_back(directory, before)
            _mark_stale(service, proposal, str(exc))
            raise
        except BaseException:
            _put_back(directory, before)
            raise
        committed = commits.Committed(proposal.branch, proposal.commit_sha, proposal.base_sha)
        message = commits.message_for(
            proposal.action,
            proposal.product,
            identity,
            f"Approved proposal {proposal.id} by {proposal.author}.",
        )
        git: dict[str, Any] = {}
        try:
            git["main"] = commits.merge(repo, committed, identity, message=message)
            git["pushed"] = repo.push().pushed
        except PortalError as exc:  # published: the data is main's now; say what git could not do
            log.warning("Proposal %s is published, but git: %s", proposal.id, exc)
            git["error"] = str(exc)
        parse = run_dbt(settings, ["parse"], lock=False)
        _record_approval(service, proposal, identity, comment, published.row_count, published.record, git)
    service.reload()
    profiled = profile_published(service, proposal.product, run_id=proposal.run_id)
    done = f"{proposal.product} is published ({_rows(published.row_count)})"
    if "error" in git:
        done += f"; but git: {git['error']}"
    if not parse.ok:
        done += "; dbt parse failed, so the catalog shows it once the project parses again"
    return Decision(get(service, proposal_id), f"{done}. {profiled}", published.row_count)


def reject(service: PortalService, proposal_id: int, identity: Identity, comment: str) -> Decision:
    """Close a proposal in review with the reviewer's reason; its held data goes (see above)."""
    comment = _comment(comment, required=True)
    proposal = get(service, proposal_id)
    _require_reviewer(service, proposal, identity)
    _require_in_review(proposal, "rejected", stale_too=True)
    with project_lock(service.settings, wait=service.settings.lock_wait_s):
        proposal = get(service, proposal_id)
        _require_in_review(proposal, "rejected", stale_too=True)
        held.release(
            service,
            proposal.product,
            "rejected",
            only=[proposal.id],
            decided_by=identity.user,
            comment=comment,
        )
        with service.sessions.begin() as session:
            _unpublished_ends(session, proposal.product, "rejected")
            add_event(
                session,
                identity,
                "proposal.rejected",
                "data_product",
                proposal.product,
                {"proposal": proposal.id, "author": proposal.author, "comment": comment},
            )
    service.reload()
    return Decision(get(service, proposal_id), f"Proposal {proposal.id} of {proposal.product} is rejected.")


def expire_due(service: PortalService, now: datetime | None = None) -> list[int]:
    """Close the proposals in review for longer than PORTAL_REVIEW_EXPIRY_DAYS: their held data
    and their git branches go. Returns their ids; a build holding the project defers it (the next
    call does it)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=service.settings.review_expiry_days)
    with service.sessions() as session:
        due = list(
            session.scalars(
                sa.select(Proposal).where(
                    Proposal.state.in_(commits.OPEN_REVIEW), Proposal.created_at < cutoff
                )
            )
        )
    if not due:
        return []
    expired: list[int] = []
    try:
        with project_lock(service.settings, wait=False):
            repo: ProjectRepository | None = None
            for proposal in due:
                if not held.release(
                    service, proposal.product, "expired", only=[proposal.id], decided_by=SYSTEM
                ):
                    continue  # decided meanwhile
                expired.append(proposal.id)
                try:
                    repo = repo or ProjectRepository(service.settings.dbt_project_dir)
                    repo.delete_branch(proposal.branch)
                except PortalError as exc:
                    log.warning("Expired proposal %s: its branch stays: %s", proposal.id, exc)
                with service.sessions.begin() as session:
                    _unpublished_ends(session, proposal.product, "rejected")
                    add_event(
                        session,
                        SYSTEM,
                        "proposal.expired",
                        "data_product",
                        proposal.product,
                        {
                            "proposal": proposal.id,
                            "author": proposal.author,
                            "days": service.settings.review_expiry_days,
                        },
                    )
    except DbtBusy:
        return expired
    if expired:
        service.reload()
    return expired


# --- helpers ---------------------------------------------------------------------------------


def _comment(comment: str | None, *, required: bool) -> str:
    text = (comment or "").strip()
    if required and not text:
        raise InvalidInput("Say why in the comment: the author reads it to fix the proposal and resubmit it.")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"The comment has {len(text):,} characters; keep it to {MAX_COMMENT:,}.")
    return text


def _require_in_review(proposal: Proposal, verb: str, *, stale_too: bool = False) -> None:
    allowed: Sequence[str] = commits.OPEN_REVIEW if stale_too else ("in_review",)
    if proposal.state in allowed:
        return
    why = {
        "stale": "main changed what it was built on; its author resubmits it, or a reviewer rejects it",
        "open": "it is still being built",
        "published": f"it was published{f' (approved by {proposal.decided_by})' if proposal.decided_by else ''}",
    }.get(proposal.state, f"it is {proposal.state}")
    raise Conflict(f"Proposal {proposal.id} of {proposal.product} cannot be {verb}: {why}.")


def _mark_stale(service: PortalService, proposal: Proposal, why: str) -> None:
    with service.sessions.begin() as session:
        row = session.get_one(Proposal, proposal.id)
        if row.state != "in_review":
            return
        row.state = "stale"
        add_event(
            session,
            SYSTEM,
            "proposal.stale",
            "data_product",
            proposal.product,
            {"proposal": proposal.id, "why": why},
        )


def _has_files(service: PortalService, name: str) -> bool:
    return all(path.exists() for path in product_paths(models_dir(service.settings), name))


def _put_back(directory: Any, before: GeneratedFiles | None) -> None:
    """The checkout's files as they were before an approval that did not go through."""
    if before is not None:
        write_product(directory, before, overwrite=True)


def _unpublished_ends(session: sa.orm.Session, product: str, status: str) -> None:
    """A product that was waiting for its first review ends `status`; a published one (whose
    edit was in review) stays as it was."""
    row = session.scalar(sa.select(DataProduct).where(DataProduct.name == product))
    if row is not None and row.status == "in_review":
        row.status, row.updated_at = status, datetime.now(UTC)


def _rows(count: int | None) -> str:
    return "rows not counted" if count is None else f"{count:,} rows"


def _record_approval(
    service: PortalService,
    proposal: Proposal,
    identity: Identity,
    comment: str,
    row_count: int | None,
    record: dict[str, Any],
    git: dict[str, Any],
) -> None:
    """The proposal published, the product published, the run's record, the manifest synced and
    the decision in the audit trail, in one transaction."""
    now = datetime.now(UTC)
    manifest_path = find_artifact(service.settings.target_dir, "manifest")
    with service.sessions.begin() as session:
        row = session.get_one(Proposal, proposal.id)
        row.state, row.decided_at, row.decided_by = "published", now, identity.user
        row.merged_sha, row.comment = git.get("main"), comment or None
        run = session.get(Run, proposal.run_id) if proposal.run_id is not None else None
        if run is not None:
            run.details = {
                **(run.details or {}),
                "wap": record,
                "review": {"approved_by": identity.user, **git},
            }
        if manifest_path is not None:
            artifacts = Artifacts(load_manifest(manifest_path), None, None)
            sync(
                session,
                artifacts,
                data_products_path=service.settings.data_products_path,
                actor=identity.user,
                explained=(proposal.product,),  # the events below say what changed
            )
        product = session.scalar(sa.select(DataProduct).where(DataProduct.name == proposal.product))
        if product is not None:
            product.status, product.updated_at = "published", now
            product.row_count, product.row_count_measured_at = row_count, now
        detail = {"proposal": proposal.id, "author": proposal.author, "run_id": proposal.run_id, **git}
        if comment:
            detail["comment"] = comment
        add_event(session, identity, "proposal.approved", "data_product", proposal.product, detail)
        add_event(
            session,
            identity,
            proposal.action,  # product.created or product.edited: published now
            "data_product",
            proposal.product,
            {
                "proposal": proposal.id,
                "author": proposal.author,
                "status": "published",
                "commit": proposal.commit_sha,
            },
        )


__all__ = ["Decision", "approve", "expire_due", "refusal", "reject", "stale_reason", "upstream_owners"]
