"""The one place that picks the publisher (write-audit-publish strategy) of the configured engine."""

from __future__ import annotations

from portal.creation.publish.base import Publisher
from portal.creation.publish.duckdb import DuckDBPublisher
from portal.creation.publish.nessie import NessiePublisher
from portal.settings import Settings

# PORTAL_WAREHOUSE -> its publisher. On Trino the Iceberg tables live in Nessie, whose branches
# are the audit's staging area.
PUBLISHERS: dict[str, type[Publisher]] = {"duckdb": DuckDBPublisher, "trino": NessiePublisher}


def publisher_for(settings: Settings) -> Publisher:
    """The publisher of `settings.warehouse`."""
    return PUBLISHERS[settings.warehouse](settings)
