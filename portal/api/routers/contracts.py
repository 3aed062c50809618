"""`/api/v1/data-products/`: a product's data contract (ODCS v3, YAML), and a contract read into
a create body. Each route authorizes, calls `portal.contracts.odcs`, and formats."""

from __future__ import annotations

from fastapi import APIRouter, Response

from portal.api.deps import Caller, Service
from portal.api.errors import documented
from portal.api.schemas import ContractIn, ProductCreate
from portal.auth.access import authorize
from portal.contracts.odcs import MEDIA_TYPE, product_contract, spec_from_contract

router = APIRouter(prefix="/api/v1/data-products", tags=["data contracts"])


@router.get(
    "/{id}/contract",
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: {"schema": {"type": "string"}}}, "description": "The ODCS v3 contract"},
        **documented(401, 403, 404, 422),
    },
)
def product_contract_yaml(id: str, service: Service, caller: Caller) -> Response:
    """The product's data contract (ODCS v3.2 YAML): schema, key, quality rules, owner, SLA, server."""
    authorize(caller, "read")
    name, text = product_contract(service, id)
    return Response(
        text, media_type=MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/from-contract", response_model=ProductCreate, responses=documented(400, 401, 403, 413, 422))
def create_body_from_contract(body: ContractIn, caller: Caller) -> ProductCreate:
    """A create body pre-filled from an ODCS contract (name, description, type, owner, consumers,
    frequency, tags, primary key, materialization, column descriptions). Add `source_query` and
    POST it to `/api/v1/data-products/`; a contract does not say how the data is computed."""
    authorize(caller, "create")
    return ProductCreate.from_spec(spec_from_contract(body.contract))
