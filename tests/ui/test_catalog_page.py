"""The catalog page says why a search found each product, with the words highlighted and the text
escaped, and lists a versioned model once with its versions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from portal.ui.components.markdown import escape, highlighted
from tests.conftest import FIXTURES
from tests.searchable_jaffle import HOSTILE, searchable_jaffle
from tests.ui import test_pages
from tests.ui.test_pages import text_of

app = test_pages.app  # the pages' fixture: the app over the demo, or over `environ`


def links(at: AppTest) -> set[str]:
    return {str(link.proto.label).strip("*") for link in at.get("page_link")}


def reasons(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("Matched ")]


def test_user_text_is_escaped_and_only_the_match_is_marked() -> None:
    assert escape(HOSTILE) == r"\*\_\[\`\<b\>\`"
    assert escape(":red[x] $y$ &lt;\n    code") == r"\:red\[x\] \$y\$ \&lt\; code"
    assert highlighted("customer_id", [(0, 8)]) == r":orange-background[customer]\_id"
    assert highlighted(HOSTILE, [(3, 8)]) == r"\*\_\[:orange-background[\`\<b\>\`]"


def test_a_search_by_column_says_column_with_the_word_highlighted(app: Callable[..., AppTest]) -> None:
    at = app()
    at.text_input(key="catalog_search").input("recency_score").run()
    assert links(at) == {"dp_customer_360"}
    assert reasons(at) == [r"Matched column :orange-background[recency\_score]"]


def test_hostile_names_and_descriptions_show_as_written(app: Callable[..., AppTest], tmp_path: Path) -> None:
    at = app(environ=searchable_jaffle(tmp_path))
    at.text_input(key="catalog_search").input("`<b>` here").run()
    assert links(at) == {"customers"}
    (said,) = reasons(at)
    assert said == (
        r"Matched column \*\_\[:orange-background[\`\<b\>\`]; "
        r"description of column \*\_\[\`\<b\>\`: Set by \<b\>ops\<\/b\> \:red\[loudly\] \$x\$ "
        r"\[:orange-background[here]\]\(http\:\/\/example\.com\) \*\*now\*\*"
    )
    at.text_input(key="catalog_search").input("growth pii").run()
    (said,) = reasons(at)
    assert said == (  # the first three of four, the model's own before its columns'
        r"Matched dbt tag :orange-background[pii]; owner :orange-background[growth]\-team; "
        r"description of column first\_name: Customer\'s first name\. :orange-background[PII]\.; and 1 more"
    )


def test_a_versioned_model_is_one_card_naming_its_versions(
    app: Callable[..., AppTest], tmp_path: Path
) -> None:
    environ = {
        "PORTAL_DBT_TARGET_DIR": str(FIXTURES / "dbt_project_evaluator_it"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PORTAL_DATA_PRODUCTS_PATH": "models/marts",
    }
    at = app(environ=environ, catalog_search="int_model_5")
    assert links(at) == {"int_model_5"}
    assert "_No description._" in text_of(at)  # its description is empty
    assert "versions: " + escape("v1 (deprecated), v2 (latest), v3 (prerelease)") in text_of(at)


def test_a_versioned_models_page_names_its_versions_and_opens_an_older_one(
    app: Callable[..., AppTest], tmp_path: Path
) -> None:
    environ = {
        "PORTAL_DBT_TARGET_DIR": str(FIXTURES / "dbt_project_evaluator_it"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PORTAL_DATA_PRODUCTS_PATH": "models/marts",
    }
    at = app("app_pages/product.py", environ=environ, id="int_model_5")
    captions = [c.value for c in at.caption]
    assert any(c.startswith("dbt versions: v1 \\(deprecated\\), **v2 \\(latest\\)**") for c in captions), (
        captions
    )
    at = app(
        "app_pages/product.py",
        environ=environ,
        id="model.dbt_project_evaluator_integration_tests.int_model_5.v1",
    )
    captions = [c.value for c in at.caption]
    assert any("**v1 \\(deprecated\\)**" in c for c in captions), captions
    assert not at.exception
