"""Access requests on Trino: a restricted product's grants are Trino's own file-based rules, so a
consumer's query is refused before approval, answers after, and is refused again once the grant
ends, with nobody acting then (the portal's timer rewrites the rules at the grant's end, and the
coordinator reloads the rules file every few seconds: deploy/trino/local/)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from trino_stack import STACK_DIR

from portal.auth.identity import Principal
from portal.catalog import access_requests
from portal.project.dbt_runner import DbtResult
from portal.service import PortalService
from portal.settings import ROOT, Settings
from portal.warehouse import AccessDenied, Relation, open_warehouse

pytestmark = pytest.mark.trino

PRODUCT = "dp_revenue_analytics"  # meta.restricted in the demo's YAML
CONSUMER = Principal("carol", "oidc", "viewer", groups=("marketing-team",))
OWNER = Principal("fred", "oidc", "creator", groups=("finance-analytics-team",))
LIVE_RULES = STACK_DIR / "etc" / "rules.json"  # what the stack's coordinator reads


@pytest.fixture
def service(project_settings: Settings, built: DbtResult) -> Iterator[PortalService]:
    """The portal over the Trino build, writing the coordinator's rules; the stack's own rules
    are put back afterwards (and the reload awaited), so later tests see the stack as it was."""
    saved = LIVE_RULES.read_text()
    settings = dataclasses.replace(
        project_settings,
        trino_access_rules_file=str(LIVE_RULES),
        trino_access_rules_base=ROOT / "deploy" / "trino" / "local" / "rules.json",
    )
    try:
        yield PortalService(settings)
    finally:
        access_requests.stop_watching(LIVE_RULES)
        LIVE_RULES.write_text(saved)
        _eventually(lambda: _reads(project_settings, "carol"), True)


def _reads(settings: Settings, user: str) -> bool:
    relation = Relation(settings.trino_catalog, settings.gold_schema, PRODUCT)
    try:
        open_warehouse(settings, user=user).preview(relation, limit=1)
    except AccessDenied:
        return False
    return True


def _eventually(check: Callable[[], bool], expected: bool, timeout_s: float = 40) -> None:
    """The coordinator applies a new rules file within its refresh period (5 s here)."""
    deadline = time.monotonic() + timeout_s
    while check() != expected:
        if time.monotonic() > deadline:
            pytest.fail(
                f"Trino's answer did not become {'allowed' if expected else 'denied'} in {timeout_s:g} s"
            )
        time.sleep(1)


def test_approval_opens_the_table_and_the_end_of_the_grant_closes_it(service: PortalService) -> None:
    settings = service.settings
    access_requests.sync_rules(service)
    _eventually(lambda: _reads(settings, "carol"), False)  # restricted: refused before any request
    assert _reads(settings, "portal")  # the builder still reads (and builds) it
    assert _reads(settings, "reader-ann") is False  # read-only readers are no exception
    # its owning team reads it without asking: a Trino group (deploy/trino/local/groups.txt)
    assert _reads(settings, "fred")
    asked = access_requests.request_access(
        service, CONSUMER, PRODUCT, reason="Campaign ROI dashboard", days=1
    )
    _eventually(lambda: _reads(settings, "carol"), False, timeout_s=6)  # asking opens nothing
    # approved a day ago less 60 s: the one-day grant ends 60 s from now, with nobody acting then
    # (room for a slow machine to see the grant open, within the coordinator's 5 s reload, first)
    approved = datetime.now(UTC) - timedelta(days=1) + timedelta(seconds=60)
    access_requests.decide(service, OWNER, asked.id, approve=True, comment="for the campaign", now=approved)
    _eventually(lambda: _reads(settings, "carol"), True, timeout_s=45)
    assert not _reads(settings, "dave")  # only the grantee
    # the portal's timer rewrites the rules at the grant's end; the coordinator reloads them
    _eventually(lambda: _reads(settings, "carol"), False, timeout_s=100)
    # other products stay open to everyone, as the stack's rules say
    other = Relation(settings.trino_catalog, settings.gold_schema, "dp_customer_360")
    assert len(open_warehouse(settings, user="carol").preview(other, limit=1).rows) == 1
