"""`/api/v1/runs/{run_id}`: a build's status, every node's timing and the end of its log, and
cancelling a running build."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from portal import runs
from portal.api.deps import Caller, Service
from portal.api.errors import documented
from portal.api.schemas import RunOut
from portal.auth.access import authorize

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
# The largest id the catalog databases store (64-bit): a larger one is a 422, not a driver overflow.
MAX_ID = 2**63 - 1
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/{run_id}", response_model=RunOut, responses=documented(401, 403, 404, 422))
def get_run(run_id: RunId, service: Service, caller: Caller) -> RunOut:
    authorize(caller, "read")
    return RunOut.model_validate(runs.run_detail(service, run_id))


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunOut,
    responses=documented(401, 403, 404, 409, 422),
)
def cancel_run(run_id: RunId, service: Service, caller: Caller) -> RunOut:
    """Stop a running creation's or refresh's dbt build (its product's owner or creator, or an
    admin). 202: the build is being stopped; follow the run, which ends `error` with
    `cancelled by <user>` at the end of its log. 409: it has finished, or is not built by this
    API process."""
    return RunOut.model_validate(runs.cancel_run(service, run_id, caller))
