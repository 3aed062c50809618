"""Who may register and remove a product's consumers (portal/auth/access.py)."""

from __future__ import annotations

from dataclasses import dataclass

from portal.auth.access import Principal, authorize, consumer_removal_refusal, may


@dataclass
class Product:
    name: str = "dp_revenue_analytics"
    created_by: str = "carl"
    owner: str | None = "finance-analytics-team"


FINN = Principal("finn@example.com", kind="oidc", groups=("finance-bi",), role="viewer")
OLIVE = Principal("olive@example.com", kind="oidc", groups=("finance-analytics-team",), role="viewer")
VERA = Principal("vera", kind="token", role="creator")
ADA = Principal("ada", kind="token", role="admin")


def test_any_reader_may_register_a_consumer() -> None:
    authorize(FINN, "register_consumer")  # a viewer: reading is enough
    assert may(VERA, "register_consumer")


def test_registrant_owner_team_and_admin_may_remove_and_nobody_else() -> None:
    product = Product()
    assert consumer_removal_refusal(FINN, product, registered_by=FINN.user) is None
    assert consumer_removal_refusal(OLIVE, product, registered_by=FINN.user) is None  # the owner team
    assert consumer_removal_refusal(ADA, product, registered_by=FINN.user) is None
    refusal = consumer_removal_refusal(VERA, product, registered_by=FINN.user)
    assert refusal is not None
    assert "finn@example.com" in refusal and "finance-analytics-team" in refusal
    # a hand-written exposure names no registrant: a reader cannot pass for it
    assert consumer_removal_refusal(FINN, product, registered_by=None) is not None
