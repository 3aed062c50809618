"""Read-only warehouse access with one interface over DuckDB and Trino."""

from __future__ import annotations

from portal.settings import Settings
from portal.warehouse.base import (
    FILTER_OPS,
    AccessDenied,
    BadRequest,
    ColumnInfo,
    Filter,
    Preview,
    QueryTimeout,
    Relation,
    RelationMissing,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)

__all__ = [
    "FILTER_OPS",
    "AccessDenied",
    "BadRequest",
    "ColumnInfo",
    "Filter",
    "Preview",
    "QueryTimeout",
    "Relation",
    "RelationMissing",
    "Warehouse",
    "WarehouseError",
    "WarehouseUnavailable",
    "open_warehouse",
]


def open_warehouse(settings: Settings, user: str | None = None) -> Warehouse:
    """The configured warehouse; on Trino, queries run as `user` when given."""
    if settings.warehouse == "trino":
        from portal.warehouse.trino import TrinoWarehouse, service_password

        password = service_password(settings)
        return TrinoWarehouse(
            host=settings.trino_host,
            port=settings.trino_port,
            catalog=settings.trino_catalog,
            user=user or settings.trino_user,
            http_scheme=settings.trino_http_scheme,
            timeout_s=settings.query_timeout_s,
            max_rows=settings.preview_max_rows,
            service_user=settings.trino_user,
            password=password,
            ca_file=settings.trino_ca_file or None,
        )
    from portal.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(
        settings.duckdb_path, timeout_s=settings.query_timeout_s, max_rows=settings.preview_max_rows
    )
