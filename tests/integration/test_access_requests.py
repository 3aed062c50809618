"""Access requests on the embedded demo: asked, decided by the owning team, audited, expiring.
(On Trino the same decisions become Trino's access rules: tests/trino/test_access_trino.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog_db.models import AuditEvent
from portal.auth.access import PermissionDenied
from portal.auth.identity import Principal
from portal.catalog import access_requests as access
from portal.errors import Conflict, InvalidInput, NotFound
from portal.service import PortalService
from portal.settings import Settings
from tests.conftest import copy_demo

PRODUCT = "dp_revenue_analytics"  # owned by finance-analytics-team
CONSUMER = Principal("carol", "oidc", "creator", groups=("marketing-team",))
OWNER = Principal("fred", "oidc", "creator", groups=("finance-analytics-team",))
STRANGER = Principal("sam", "oidc", "creator", groups=("sales-team",))
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def service(demo_env: dict[str, str], tmp_path: Path) -> PortalService:
    return PortalService(Settings.from_env(copy_demo(demo_env, tmp_path / "portal")))


def test_a_request_approved_by_the_owning_team_is_live_for_its_days(service: PortalService) -> None:
    asked = access.request_access(
        service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=7, now=NOW
    )
    assert asked.state == "pending" and not asked.live
    with pytest.raises(PermissionDenied, match="products of their teams"):
        access.decide(service, STRANGER, asked.id, approve=True, now=NOW)
    approved = access.decide(service, OWNER, asked.id, approve=True, comment="ok for the campaign", now=NOW)
    assert approved.live and approved.expires_at == NOW + timedelta(days=7)
    assert access.live_readers(service, now=NOW) == {PRODUCT: ("carol",)}
    later = NOW + timedelta(days=7, seconds=1)
    (shown,) = access.requests(service, requester="carol", now=later)
    assert shown.shown_state == "expired" and not shown.live
    assert access.live_readers(service, now=later) == {}
    with service.sessions() as session:
        actions = session.scalars(
            sa.select(AuditEvent.action).where(
                AuditEvent.object_id == PRODUCT, AuditEvent.action.like("access.%")
            )
        ).all()
    assert sorted(actions) == ["access.approved", "access.requested"]


def test_refusals_say_what_to_do(service: PortalService) -> None:
    with pytest.raises(InvalidInput, match="10 to 2000 characters"):
        access.request_access(service, CONSUMER, PRODUCT, reason="pls", days=7)
    with pytest.raises(InvalidInput, match="1 to 90 days"):
        access.request_access(service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=365)
    with pytest.raises(Conflict, match="no request is needed"):
        access.request_access(service, OWNER, PRODUCT, reason="my own team's data", days=7)
    with pytest.raises(NotFound):
        access.request_access(service, CONSUMER, "no_such_product", reason="Campaign ROI dashboard", days=7)
    asked = access.request_access(service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=7)
    with pytest.raises(Conflict, match="waits for a decision"):
        access.request_access(service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=7)
    with pytest.raises(InvalidInput, match="Say why the request is refused"):
        access.decide(service, OWNER, asked.id, approve=False)
    refused = access.decide(service, OWNER, asked.id, approve=False, comment="use dp_product_performance")
    assert refused.state == "refused" and refused.comment == "use dp_product_performance"
    with pytest.raises(Conflict, match="decided already"):
        access.decide(service, OWNER, asked.id, approve=True)


def test_a_grant_ends_when_withdrawn_or_revoked(service: PortalService) -> None:
    first = access.request_access(
        service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=30, now=NOW
    )
    access.decide(service, OWNER, first.id, approve=True, now=NOW)
    assert access.end(service, OWNER, first.id, now=NOW).state == "revoked"
    second = access.request_access(
        service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=30, now=NOW
    )
    with pytest.raises(PermissionDenied):
        access.end(service, STRANGER, second.id, now=NOW)
    assert access.end(service, CONSUMER, second.id, now=NOW).state == "withdrawn"
    assert access.live_readers(service, now=NOW) == {}
