"""Access requests on the embedded demo: asked, decided by the owning team, audited, expiring.
(On Trino the same decisions become Trino's access rules: tests/trino/test_access_trino.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
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


@pytest.fixture
def enforcing(demo_env: dict[str, str], tmp_path: Path) -> Iterator[PortalService]:
    """The demo writing Trino's rules to a file of its own (no Trino needed to read what it says)."""
    env = copy_demo(demo_env, tmp_path / "portal")
    env["PORTAL_TRINO_ACCESS_RULES_FILE"] = str(tmp_path / "rules.json")
    service = PortalService(Settings.from_env(env))
    yield service
    access.stop_watching(tmp_path / "rules.json")


def _readers_in(rules_file: Path) -> set[str]:
    rules = json.loads(rules_file.read_text())["tables"]
    return {r["user"] for r in rules if r.get("table") == PRODUCT and "user" in r and r["privileges"]}


def test_the_end_of_a_grant_rewrites_the_rules_when_it_comes(enforcing: PortalService) -> None:
    rules_file = Path(enforcing.settings.trino_access_rules_file)
    asked = access.request_access(enforcing, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=1)
    # approved a day ago less three seconds: the grant ends three seconds from now
    decided = datetime.now(UTC) - timedelta(days=1) + timedelta(seconds=3)
    granted = access.decide(enforcing, OWNER, asked.id, approve=True, now=decided)
    assert _readers_in(rules_file) == {"carol"}
    assert access.watched_until(rules_file) == granted.expires_at
    deadline = time.monotonic() + 30
    while _readers_in(rules_file) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _readers_in(rules_file) == set(), "the rules still let carol read after her grant ended"
    assert access.watched_until(rules_file) is None  # no grant is live: nothing to wait for


def test_a_revoked_grant_moves_the_timer_and_a_start_closes_what_ended_meanwhile(
    enforcing: PortalService,
) -> None:
    rules_file = Path(enforcing.settings.trino_access_rules_file)
    first = access.request_access(enforcing, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=30)
    granted = access.decide(enforcing, OWNER, first.id, approve=True)
    assert access.watched_until(rules_file) == granted.expires_at
    access.end(enforcing, OWNER, first.id)
    assert access.watched_until(rules_file) is None and _readers_in(rules_file) == set()

    # A grant that ended while no portal ran: the file still lets its reader in until a start.
    second = access.request_access(enforcing, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=1)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    access.decide(enforcing, OWNER, second.id, approve=True, now=two_days_ago)
    access.sync_rules(enforcing, now=two_days_ago)  # the rules as written while it was live
    assert _readers_in(rules_file) == {"carol"}
    access.resume(enforcing)
    assert _readers_in(rules_file) == set()
