"""The SQL workspace's history on a real, throwaway PostgreSQL catalog (tests/postgres_server.py):
per user, newest first, pruned to the newest few by the same statement SQLite runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.auth.identity import Identity
from portal.catalog import workspace
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo
from tests.integration.test_postgres import database_url  # noqa: F401  (a fixture)
from tests.postgres_server import BIN

pytestmark = pytest.mark.skipif(
    BIN is None,
    reason="no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); `apt-get install postgresql`",
)


def test_history_is_per_user_and_bounded_on_postgresql(
    demo_env: dict[str, str],
    tmp_path: Path,
    database_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {**copy_demo(demo_env, tmp_path / "portal"), "PORTAL_CATALOG_DB_URL": database_url}
    service = PortalService(Settings.from_env(environ))
    monkeypatch.setattr(workspace, "HISTORY_KEPT", 3)
    ann, bob = Identity("ann"), Identity("bob")
    for n in range(5):
        result = workspace.run_query(
            service, f"select order_id from stg_orders where order_id = {n}", ann, limit=1
        )
        assert result.ok and result.history_id is not None
    workspace.run_query(service, "select customer_id from stg_customers", bob, limit=1)
    assert [entry.sql[-1] for entry in workspace.history(service, ann)] == ["4", "3", "2"]
    assert [entry.status for entry in workspace.history(service, bob)] == ["ok"]
