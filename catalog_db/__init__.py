"""The catalog database: SQLAlchemy models, engines/sessions and Alembic migrations."""

from catalog_db.models import (
    PRODUCT_ORIGINS,
    PRODUCT_STATUSES,
    RUN_STATUSES,
    AuditEvent,
    Base,
    DataProduct,
    NodeResult,
    Run,
)
from catalog_db.session import CatalogMigrationError, alembic_config, make_engine, migrate, open_catalog

__all__ = [
    "PRODUCT_ORIGINS",
    "PRODUCT_STATUSES",
    "RUN_STATUSES",
    "AuditEvent",
    "Base",
    "CatalogMigrationError",
    "DataProduct",
    "NodeResult",
    "Run",
    "alembic_config",
    "make_engine",
    "migrate",
    "open_catalog",
]
