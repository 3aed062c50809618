"""The Review page in a real Chromium, behind a sign-in proxy with review required: a reviewer
reads a proposal's diff and approves it, rejects another with a comment, and its author reads
why and resubmits the draft from the Create form; the author's own Approve button is disabled
with the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal.auth.access import Principal
from portal.creation.flow import create
from portal.service import PortalService
from portal.settings import Settings
from tests.browser import started_portal
from tests.conftest import copy_demo
from tests.products_in_git import sales_spec

pytestmark = pytest.mark.e2e
SAM_HEADERS = {
    "X-Auth-Request-Email": "sam@example.com",
    "X-Auth-Request-Groups": "team-sales,portal-creators",
}
RITA_HEADERS = {"X-Auth-Request-Email": "rita@example.com", "X-Auth-Request-Groups": "data-reviewers"}
SAM = Principal("sam@example.com", kind="proxy", groups=("team-sales", "portal-creators"), role="creator")
REVIEWED = {
    "PORTAL_AUTH": "proxy",
    "PORTAL_AUTH_PROXY_ADDRESSES": "127.0.0.1",
    "PORTAL_ROLE_MAP": "portal-creators=creator,data-reviewers=reviewer,team-*=viewer",
    "PORTAL_REVIEW": "required",
}


def test_a_reviewer_approves_and_rejects_and_the_author_reads_why(
    demo_env: dict[str, str], browser, tmp_path: Path
) -> None:
    environ = {**copy_demo(demo_env, tmp_path / "portal"), **REVIEWED}
    service = PortalService(Settings.from_env(environ))
    kept = create(
        service,
        sales_spec("dp_sales_kept", "select customer_id, count(*) as orders from int_orders group by 1"),
        SAM,
    )
    refused = create(
        service,
        sales_spec("dp_sales_refused", "select customer_id, sum(1) as lines from int_orders group by 1"),
        SAM,
    )
    assert kept.status == refused.status == "in_review", kept.log + refused.log
    with started_portal(environ, tmp_path / "streamlit.log") as url:
        reviewer = browser.new_page(extra_http_headers=RITA_HEADERS)
        reviewer.goto(f"{url}/review?proposal={kept.proposal_id}", wait_until="networkidle")
        reviewer.get_by_text(f"Proposal {kept.proposal_id}: Create dp_sales_kept").wait_for(timeout=60_000)
        # the file diff: the proposed SQL, as added lines
        reviewer.get_by_text("models/data_products/dp_sales_kept.sql (added)").wait_for(timeout=30_000)
        # the code block renders once its highlighter has loaded (from 127.0.0.1), a moment later
        reviewer.locator("code").filter(has_text="+FROM {{ ref('int_orders') }}").first.wait_for(
            timeout=30_000
        )
        reviewer.get_by_role("tab", name="Data").click()
        reviewer.get_by_text("rows proposed").wait_for(timeout=30_000)
        reviewer.get_by_role("button", name="Approve and publish").click()
        reviewer.get_by_text("dp_sales_kept is published").wait_for(timeout=120_000)

        reviewer.goto(f"{url}/review?proposal={refused.proposal_id}", wait_until="networkidle")
        reviewer.get_by_text(f"Proposal {refused.proposal_id}: Create dp_sales_refused").wait_for(
            timeout=60_000
        )
        reviewer.get_by_label("Comment").fill("Count orders, not order lines.")
        reviewer.get_by_label("Comment").press("Control+Enter")
        reviewer.get_by_role("button", name="Reject").click()
        reviewer.get_by_text(f"Proposal {refused.proposal_id} of dp_sales_refused is rejected").wait_for(
            timeout=60_000
        )
        reviewer.close()

        author = browser.new_page(extra_http_headers=SAM_HEADERS)
        author.goto(f"{url}/review?proposal={refused.proposal_id}", wait_until="networkidle")
        author.get_by_text("Rejected by rita@example.com").wait_for(timeout=60_000)
        author.get_by_text("Count orders, not order lines.").wait_for(timeout=10_000)
        # the draft goes back to the author's form as proposed, to fix and resubmit
        author.get_by_role("button", name="Resubmit its draft").click()
        author.get_by_text(f"Filled from proposal {refused.proposal_id}'s draft").wait_for(timeout=60_000)
        # the message is drawn before the form below it: wait for the textarea to hold the draft
        expect(author.locator(".st-key-create_sql textarea")).to_have_value(
            re.compile(r"sum\(1\) as lines", re.IGNORECASE), timeout=30_000
        )
        # and from the product's own page, where the rejection is said too
        author.goto(f"{url}/product?id=dp_sales_refused", wait_until="networkidle")
        author.get_by_role("button", name="Resubmit its draft").click()
        author.get_by_text(f"Filled from proposal {refused.proposal_id}'s draft").wait_for(timeout=60_000)
        author.close()

    # the author's own proposal in review: Approve is there, disabled, saying why
    again = create(
        service,
        sales_spec(
            "dp_sales_mine", "select customer_id, max(order_id) as last_order from int_orders group by 1"
        ),
        SAM,
    )
    assert again.status == "in_review", again.log
    with started_portal(environ, tmp_path / "streamlit-author.log") as url:
        author = browser.new_page(extra_http_headers=SAM_HEADERS)
        author.goto(f"{url}/review?proposal={again.proposal_id}", wait_until="networkidle")
        button = author.get_by_role("button", name="Approve and publish")
        button.wait_for(timeout=60_000)
        assert button.is_disabled()
        author.close()
