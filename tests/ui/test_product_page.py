"""The product page as its owner and its readers use it: the actions where the product is, and
a page view that reads (and counts) only what was opened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from catalog_db.models import UsageEvent
from portal.auth.identity import Identity
from portal.creation.flow import create
from portal.creation.spec import ProductSpec
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo

APP = str(ROOT / "portal" / "ui" / "app.py")


def page(use_env: Callable[[dict[str, str]], None], environ: dict[str, str], **params: str) -> AppTest:
    use_env(environ)
    st.cache_resource.clear()  # the service is cached per process; each test gets its own settings
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("app_pages/product.py")
    at.run()
    assert not at.exception, at.exception
    return at


def reads(environ: dict[str, str], product: str) -> int:
    engine = sa.create_engine(environ["PORTAL_CATALOG_DB_URL"])
    with engine.connect() as connection:
        count = connection.scalar(sa.select(sa.func.count()).where(UsageEvent.product == product))
    engine.dispose()
    return int(count or 0)


def test_a_page_view_counts_a_read_only_when_the_preview_is_opened(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    for _ in range(3):
        page(use_env, environ, id="dp_customer_360")
    assert reads(environ, "dp_customer_360") == 0  # three views of the Overview read no data
    at = page(use_env, environ, id="dp_customer_360", tab="Preview")
    assert at.dataframe, "the Preview tab shows rows"
    assert reads(environ, "dp_customer_360") == 1


def test_a_failed_products_page_offers_edit_and_discard(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    service = PortalService(Settings.from_env(environ))
    local = Identity(service.settings.local_user)
    # order lines repeat their customer: customer_id is no key, so the unique test fails
    spec = ProductSpec(
        name="dp_lines_failing",
        description="Order lines by customer.",
        data_product_type="CUSTOMER_360",
        owner="sales-team",
        sql="select customer_id, order_id from int_orders",
        primary_key=("customer_id",),
    )
    assert create(service, spec, local).status == "failed"
    at = page(use_env, environ, id="dp_lines_failing")
    labels = {b.label for b in at.button}
    assert {"Edit"} <= labels and "Refresh now" not in labels  # not published: nothing to refresh
    at.button(key="action_discard").click().run()
    assert not at.exception
    assert any("Discarded dp_lines_failing" in s.value for s in at.success), [s.value for s in at.success]
