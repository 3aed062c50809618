"""`/api/v1/data-products/{id}/consumers`: the teams that read a product, as dbt exposures in the
project (portal/creation/consumers.py). Each route calls the core, which authorizes, and formats."""

from __future__ import annotations

from fastapi import APIRouter

from portal.api.deps import Caller, Service
from portal.api.errors import ApiProblem, documented, field_errors
from portal.api.schemas import ConsumerIn, ConsumerOut
from portal.auth.access import authorize
from portal.creation import consumers
from portal.creation.consumers import ConsumerRefused

router = APIRouter(prefix="/api/v1/data-products", tags=["consumers"])


@router.get("/{id}/consumers", response_model=list[ConsumerOut], responses=documented(401, 403, 404, 422))
def list_consumers(id: str, service: Service, caller: Caller) -> list[ConsumerOut]:
    """The exposures that read the product directly: registered here or written by hand."""
    authorize(caller, "read")
    return [ConsumerOut.model_validate(c) for c in consumers.consumers_of(service, id)]


@router.post(
    "/{id}/consumers",
    status_code=201,
    response_model=ConsumerOut,
    responses=documented(401, 403, 404, 409, 422, 503),
)
def register_consumer(id: str, body: ConsumerIn, service: Service, caller: Caller) -> ConsumerOut:
    """Register a consumer: a dbt exposure reading the product, committed on main by the caller,
    parsed, so `dbt ls --select +exposure:<name>` and the portal's impact analysis know it."""
    try:
        return ConsumerOut.model_validate(consumers.register(service, id, body.to_request(), caller))
    except ConsumerRefused as refused:  # the input's fault: every problem, by field
        raise ApiProblem(422, str(refused), field_errors(refused.problems)) from None


@router.delete(
    "/{id}/consumers/{name}", response_model=ConsumerOut, responses=documented(401, 403, 404, 409, 422, 503)
)
def remove_consumer(id: str, name: str, service: Service, caller: Caller) -> ConsumerOut:
    """Remove a consumer the portal registered (its registrant, the product's owners or an admin)."""
    try:
        return ConsumerOut.model_validate(consumers.remove(service, id, name, caller))
    except ConsumerRefused as refused:
        raise ApiProblem(409, str(refused), field_errors(refused.problems)) from None
