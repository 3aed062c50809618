"""Access requests (portal/catalog/access_requests.py): a consumer asks to read a product, its
owning team approves or refuses; on Trino a restricted product's grants are Trino's own rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from portal.api.deps import Caller, Service
from portal.api.errors import documented
from portal.api.schemas import AccessOut, AccessRequestIn, DecisionIn, RejectIn
from portal.auth.access import authorize, may
from portal.catalog import access_requests
from portal.catalog.access_requests import Access
from portal.service import PortalService

router = APIRouter(prefix="/api/v1", tags=["access"])
MAX_ID = 2**63 - 1
Product = Annotated[str, Path(min_length=1, max_length=200)]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _out(service: PortalService, access: Access) -> AccessOut:
    enforced = bool(service.settings.trino_access_rules_file) and access_requests.is_restricted(
        service, access.product
    )
    return AccessOut.model_validate(access).model_copy(
        update={"enforced": enforced, "shown_state": access.shown_state}
    )


@router.post(
    "/data-products/{id}/access-requests",
    response_model=AccessOut,
    status_code=201,
    responses=documented(401, 403, 404, 409, 422),
)
def request_access(id: Product, body: AccessRequestIn, service: Service, caller: Caller) -> AccessOut:
    """Ask for `days` of read access to a product, saying why; it waits for its owning team."""
    authorize(caller, "read")
    asked = access_requests.request_access(service, caller, id, reason=body.reason, days=body.days)
    return _out(service, asked)


@router.get(
    "/data-products/{id}/access-requests",
    response_model=list[AccessOut],
    responses=documented(401, 403, 404, 422),
)
def product_requests(id: Product, service: Service, caller: Caller) -> list[AccessOut]:
    """A product's access requests, newest first: all of them for its owners and admins, the
    caller's own for anyone else."""
    authorize(caller, "read")
    owners = access_requests.may_decide(service, caller, id)
    found = access_requests.requests(service, product=id, requester=None if owners else caller.user)
    return [_out(service, a) for a in found]


@router.get("/access-requests", response_model=list[AccessOut], responses=documented(401, 403, 422))
def my_requests(
    service: Service, caller: Caller, requester: Annotated[str | None, Query(max_length=200)] = None
) -> list[AccessOut]:
    """The caller's access requests (an admin may name another requester)."""
    authorize(caller, "read")
    who = requester if requester and may(caller, "manage_tokens") else caller.user
    return [_out(service, a) for a in access_requests.requests(service, requester=who)]


DECIDE = documented(401, 403, 404, 409, 422)


@router.post("/access-requests/{request_id}/approve", response_model=AccessOut, responses=DECIDE)
def approve(
    request_id: RequestId, service: Service, caller: Caller, body: DecisionIn | None = None
) -> AccessOut:
    """Grant a pending request for its days from now: the product's owning team or an admin."""
    decided = access_requests.decide(
        service, caller, request_id, approve=True, comment=body.comment if body else ""
    )
    return _out(service, decided)


@router.post("/access-requests/{request_id}/refuse", response_model=AccessOut, responses=DECIDE)
def refuse(request_id: RequestId, body: RejectIn, service: Service, caller: Caller) -> AccessOut:
    """Refuse a pending request, saying why in `comment`."""
    decided = access_requests.decide(service, caller, request_id, approve=False, comment=body.comment)
    return _out(service, decided)


@router.post("/access-requests/{request_id}/end", response_model=AccessOut, responses=DECIDE)
def end(request_id: RequestId, service: Service, caller: Caller) -> AccessOut:
    """Withdraw one's own request or grant; as its owners, revoke a grant."""
    return _out(service, access_requests.end(service, caller, request_id))
