"""`/api/v1/proposals`: every product change as a git commit in the project's own repository,
with its author, its branch and what became of it; one proposal with the files it changes."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Query

from catalog_db.models import PROPOSAL_STATES
from portal.api.deps import Caller, Service
from portal.api.errors import documented
from portal.api.schemas import FileChangeOut, ProposalDetailOut, ProposalOut
from portal.auth.access import authorize
from portal.creation import commits

router = APIRouter(prefix="/api/v1/proposals", tags=["proposals"])
MAX_ID = 2**63 - 1
State = Literal["open", "published", "failed", "discarded"]
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
    found = commits.proposals(service.sessions, state=state, author=author, product=product, limit=limit)
    return [ProposalOut.model_validate(row) for row in found]


@router.get("/{proposal_id}", response_model=ProposalDetailOut, responses=documented(401, 403, 404, 422))
def get_proposal(
    proposal_id: Annotated[int, Path(ge=1, le=MAX_ID)], service: Service, caller: Caller
) -> ProposalDetailOut:
    """One proposal with the file diff of its commit against main as it was then (SQL and YAML)."""
    authorize(caller, "read")
    row, files = commits.proposal(service.sessions, service.settings, proposal_id)
    return ProposalDetailOut(
        **ProposalOut.model_validate(row).model_dump(), files=[FileChangeOut.model_validate(f) for f in files]
    )
