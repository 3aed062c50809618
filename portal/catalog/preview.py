"""Previewing a product's data: bounded, read-only, and recorded as a read of whoever asked."""

from __future__ import annotations

from collections.abc import Sequence

from portal import audit
from portal.auth.identity import Identity
from portal.errors import NotFound
from portal.service import PortalService
from portal.warehouse import Filter, Preview


def preview(
    service: PortalService,
    key: str,
    *,
    identity: Identity,
    columns: Sequence[str] | None = None,
    filters: Sequence[Filter] = (),
    limit: int | None = None,
    order_by: str | None = None,
    descending: bool = False,
    face: str = "ui",
) -> Preview:
    """A bounded read-only read of a product, recorded as a usage event of `identity`."""
    node = service.resolve(key)
    if node.resource_type not in {"model", "seed", "snapshot", "source"}:
        raise NotFound(f"{node.unique_id} is a {node.resource_type}; only built relations can be previewed.")
    result = service.warehouse(identity).preview(
        service.relation(node),
        columns=columns,
        filters=filters,
        limit=service.settings.preview_default_rows if limit is None else limit,
        order_by=order_by,
        descending=descending,
    )
    audit.record_read(
        service,
        identity,
        node.name,
        face=face,
        rows=len(result.rows),
        duration_ms=result.elapsed_s * 1000,
        detail={"limit": result.limit, "filters": len(filters)},
    )
    return result
