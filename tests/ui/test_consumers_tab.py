"""The product page's Consumers tab as a consuming team uses it (Streamlit AppTest, real dbt parse on
a private copy of the demo): the form refuses bad input field by field, registers a consumer that
the list then shows, and its registrant (the local user here) removes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from portal.settings import ROOT
from tests.conftest import copy_demo

pytestmark = pytest.mark.slow
APP = str(ROOT / "portal" / "ui" / "app.py")


def consumers_tab(use_env: Callable[[dict[str, str]], None], environ: dict[str, str]) -> AppTest:
    use_env(environ)
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["id"] = "dp_customer_360"
    at.query_params["tab"] = "Consumers"
    at.run()
    at.switch_page("app_pages/product.py")
    at.run()
    assert not at.exception, at.exception
    return at


def fill(at: AppTest, **values: str) -> None:
    for key, value in values.items():
        widget = (
            at.text_area(key="consumer_description")
            if key == "description"
            else at.text_input(key=f"consumer_{key}")
        )
        widget.input(value)


def test_register_a_consumer_with_the_form_and_remove_it(
    use_env: Callable[[dict[str, str]], None], demo_env: dict[str, str], tmp_path: Path
) -> None:
    environ = copy_demo(demo_env, tmp_path / "portal")
    at = consumers_tab(use_env, environ)
    assert any("No consumer has registered dp_customer_360" in i.value for i in at.info)
    assert any(
        "Its YAML names its consumers as " in i.value and "`meta.consumers`" in i.value for i in at.info
    )

    fill(at, team="Growth Team", email="growth", url="notes", description="")
    at.button(key="FormSubmitter:consumer_register-Register").click().run()
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "is not a team name" in warnings and "is not an e-mail address" in warnings
    assert "not a link to the dashboard or job" in warnings and "Say what the product is used for" in warnings
    assert not (Path(environ["PORTAL_DBT_PROJECT_DIR"]) / "models/data_products/consumers").exists()

    fill(at, team="growth-team", email="growth@example.com", url="https://nb.example.com/churn",
         description="Churn notebook.")  # fmt: skip
    at.selectbox(key="consumer_type").select("notebook")
    at.button(key="FormSubmitter:consumer_register-Register").click().run()
    assert not at.exception, at.exception
    assert any("Registered growth_team_dp_customer_360" in s.value for s in at.success), [
        w.value for w in at.warning
    ]
    grid = next(d.value for d in at.dataframe if "exposure" in d.value.columns)
    row = grid.set_index("exposure").loc["growth_team_dp_customer_360"]
    assert (row["team"], row["type"], row["contact"]) == ("growth-team", "notebook", "growth@example.com")
    assert (
        Path(environ["PORTAL_DBT_PROJECT_DIR"])
        / "models/data_products/consumers/growth_team_dp_customer_360.yml"
    ).exists()

    at.selectbox(key="consumer_remove_pick").select("growth_team_dp_customer_360")
    at.button(key="consumer_remove").click().run()
    assert not at.exception, at.exception
    assert any("Removed growth_team_dp_customer_360" in s.value for s in at.success)
    assert any("No consumer has registered dp_customer_360" in i.value for i in at.info)
