"""`/api/v1/proposals`: every product change as a git commit in the project's own repository,
with its author, its branch and what became of it; one proposal with the files it changes; and a
reviewer's decision on a proposal in review (approve, reject: portal/creation/review.py)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Query

from catalog_db.models import PROPOSAL_STATES
from portal.api.deps import Caller, Service
from portal.api.errors import documented
from portal.api.schemas import (
    ColumnOriginsOut,
    DataDiffOut,
    DecisionIn,
    DecisionOut,
    FileChangeOut,
    ImpactedOut,
    NodeTimingOut,
    ProposalDetailOut,
    ProposalOut,
    RejectIn,
    ReviewOut,
    SchemaDiffOut,
)
from portal.auth.access import authorize
from portal.creation import commits, review, review_detail

router = APIRouter(prefix="/api/v1/proposals", tags=["proposals"])
MAX_ID = 2**63 - 1
State = Literal[
    "open", "in_review", "published", "failed", "rejected", "expired", "stale", "superseded", "discarded"
]
assert set(get_args(State)) == set(PROPOSAL_STATES)  # one vocabulary (catalog_db.models)


@router.get("/", response_model=list[ProposalOut], responses=documented(401, 403, 422))
def list_proposals(
    service: Service,
    caller: Caller,
    state: State | None = None,
    author: Annotated[str | None, Query(max_length=200)] = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ProposalOut]:
    """Proposals, newest first; filter by state, author (as recorded: the signed-in user's name)
    and product."""
    authorize(caller, "read")
    review.expire_due(service)  # what waited too long is closed before anyone is shown it
    found = commits.proposals(service.sessions, state=state, author=author, product=product, limit=limit)
    return [ProposalOut.model_validate(row) for row in found]


@router.get("/{proposal_id}", response_model=ProposalDetailOut, responses=documented(401, 403, 404, 422))
def get_proposal(
    proposal_id: Annotated[int, Path(ge=1, le=MAX_ID)], service: Service, caller: Caller
) -> ProposalDetailOut:
    """One proposal with what its reviewer sees: the file diff of its commit against main as it was
    then (SQL and YAML), the schema and data diff against the published version (while its data
    is held), the column lineage of its SQL, what reads the product downstream, its audit
    build's tests, whether it is stale, and whether the caller may decide on it."""
    authorize(caller, "read")
    seen = review_detail.review_of(service, proposal_id, caller)
    return ProposalDetailOut(
        **ProposalOut.model_validate(seen.proposal).model_dump(),
        files=[FileChangeOut.model_validate(f) for f in seen.files],
        review=ReviewOut(
            schema_diff=SchemaDiffOut.model_validate(seen.schema.as_dict()) if seen.schema else None,
            data_diff=DataDiffOut.model_validate(seen.data.as_dict()) if seen.data else None,
            lineage=[ColumnOriginsOut.model_validate(c) for c in seen.lineage],
            impact=[ImpactedOut.model_validate(i) for i in seen.impact],
            tests=[NodeTimingOut.model_validate(t) for t in seen.tests],
            stale=seen.stale,
            may_decide=seen.open and seen.refusal is None,
            refusal=seen.refusal,
            missing=seen.missing,
        ),
    )


DECIDE = documented(401, 403, 404, 409, 422, 503)


@router.post("/{proposal_id}/approve", response_model=DecisionOut, responses=DECIDE)
def approve_proposal(
    proposal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    service: Service,
    caller: Caller,
    body: DecisionIn | None = None,
) -> DecisionOut:
    """Publish a proposal in review: its held data (Nessie branch merged into main, or the audit
    schema copied to gold), its commit merged into main and pushed, the catalog updated. Only a
    reviewer (PORTAL_REVIEWERS) who is not its author; 409 when it is not in review, or when main
    changed what it was built on (it is then `stale`: its author resubmits); 503 while a build
    holds the project (retry after Retry-After)."""
    decision = review.approve(service, proposal_id, caller, body.comment if body else "")
    return DecisionOut.of(decision)


@router.post("/{proposal_id}/reject", response_model=DecisionOut, responses=DECIDE)
def reject_proposal(
    proposal_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: RejectIn, service: Service, caller: Caller
) -> DecisionOut:
    """Reject a proposal in review (or stale), saying why in `comment`: its held data is removed,
    its author sees the comment and may resubmit. Only a reviewer who is not its author."""
    decision = review.reject(service, proposal_id, caller, body.comment)
    return DecisionOut.of(decision)
