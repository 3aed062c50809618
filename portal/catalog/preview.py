"""Previewing a product's data: bounded, read-only, and recorded as a read of whoever asked.

A preview is a page of rows (sorted by any column, narrowed by any number of filters within the
warehouse's cap), optionally with a summary of each column over every matching row; an export is
the whole filtered, sorted result up to the maximum rows, streamed as CSV or Parquet. Each is one
recorded read.
"""

from __future__ import annotations

from collections.abc import Sequence

from portal import audit
from portal.auth.identity import Identity
from portal.errors import NotFound
from portal.service import PortalService
from portal.warehouse import Filter, Preview, Relation
from portal.warehouse.export import EXPORT_FORMATS, Export

__all__ = ["EXPORT_FORMATS", "Export", "export", "preview"]


def _relation(service: PortalService, key: str) -> tuple[str, Relation]:
    """The product's name and where it is built; NotFound for what holds no data."""
    node = service.resolve(key)
    if node.resource_type not in {"model", "seed", "snapshot", "source"}:
        raise NotFound(f"{node.unique_id} is a {node.resource_type}; only built relations can be previewed.")
    return node.name, service.relation(node)


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
    summarize: bool = False,
    face: str = "ui",
) -> Preview:
    """A bounded read-only read of a product, recorded as a usage event of `identity`; with
    `summarize`, each column's nulls, distinct values, min and max over every matching row."""
    name, relation = _relation(service, key)
    settings = service.settings
    # The default within the maximum: a portal whose maximum is set below the default still previews.
    default = min(settings.preview_default_rows, settings.preview_max_rows)
    result = service.warehouse(identity).preview(
        relation,
        columns=columns,
        filters=filters,
        limit=default if limit is None else limit,
        order_by=order_by,
        descending=descending,
        summarize=summarize,
    )
    audit.record_read(
        service,
        identity,
        name,
        face=face,
        rows=len(result.rows),
        duration_ms=result.elapsed_s * 1000,
        detail={"limit": result.limit, "filters": len(filters), "summary": summarize},
    )
    return result


def export(
    service: PortalService,
    key: str,
    *,
    identity: Identity,
    format: str,
    columns: Sequence[str] | None = None,
    filters: Sequence[Filter] = (),
    order_by: str | None = None,
    descending: bool = False,
    face: str = "ui",
) -> Export:
    """The whole filtered, sorted result of a product as CSV or Parquet chunks, cut at the maximum
    rows (PORTAL_PREVIEW_MAX_ROWS; `Export.cut` says so). Recorded when it starts, with the rows it
    holds: a download its client abandons was still a read."""
    name, relation = _relation(service, key)
    result = service.warehouse(identity).export(
        relation,
        format=format,
        columns=columns,
        filters=filters,
        order_by=order_by,
        descending=descending,
    )
    audit.record_read(
        service,
        identity,
        name,
        face=face,
        rows=result.rows,
        duration_ms=result.elapsed_s * 1000,
        detail={"export": format, "filters": len(filters), "cut": result.cut, "limit": result.limit},
    )
    return result
