"""Named selectors (selectors.yml) select what `dbt ls --selector NAME` lists, and a project's default
selector applies when neither --select nor --exclude is given, as in `dbt ls`.

dbt-core is the oracle, as in test_selector_vs_dbt.py: dbt's `SelectorConfig` reads the selectors.yml
list and dbt's selector evaluates it. The portal reads the manifest's `selectors`, which is what dbt
parse writes there (`SelectorDict.parse_from_selectors_list`, the definitions normalised).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from portal.errors import Kind
from portal.lineage.errors import SelectorError, UnknownSelectorError
from portal.lineage.index import ManifestIndex
from portal.lineage.selector import select
from tests.unit.lineage import test_selector_vs_dbt as vs_dbt
from tests.unit.lineage.test_selector_vs_dbt import MANIFESTS, DbtOracle

pytest.importorskip("dbt.graph")

both = vs_dbt.both  # the portal's index and dbt's selector for a manifest, once per module

# A selectors.yml of every form dbt's parse_from_definition reads, over the governed jaffle-shop.
SELECTORS: list[dict[str, Any]] = [
    {"name": "a_string", "definition": "+tag:nightly"},
    {"name": "one_key", "definition": {"tag": "weekly"}},
    {"name": "method_and_value", "definition": {
        "method": "fqn", "value": "orders", "parents": True, "parents_depth": 1, "children": True}},
    {"name": "childrens_parents", "definition": {"method": "fqn", "value": "stg_orders", "childrens_parents": True}},
    {"name": "union_with_exclude", "definition": {"union": [
        "path:models/marts", {"method": "tag", "value": "nightly", "children": True},
        {"exclude": ["customers", {"method": "resource_type", "value": "metric"}]}]}},
    {"name": "intersection", "definition": {"intersection": [{"method": "access", "value": "public"}, "group:*"]}},
    {"name": "mapping_with_exclude", "definition": {
        "method": "path", "value": "models", "exclude": [{"method": "config.materialized", "value": "view"}]}},
    {"name": "reuses_a_selector", "definition": {"union": [
        {"method": "selector", "value": "intersection"}, "source:ecom+"]}},
    {"name": "cautious", "definition": {"method": "fqn", "value": "orders", "indirect_selection": "cautious"}},
    {"name": "buildable", "definition": {
        "method": "fqn", "value": "orders", "parents": True, "parents_depth": "1", "indirect_selection": "buildable"}},
    {"name": "empty", "definition": {"method": "fqn", "value": "orders", "indirect_selection": "empty"}},
    {"name": "nested", "definition": {"intersection": [
        {"union": ["tag:nightly", "tag:weekly", "+exposure:weekly_report"]},
        {"union": ["+exposure:weekly_report", "@stg_orders", {"exclude": ["dim_customers.v1"]}]}]}},
    {"name": "yaml_scalars", "definition": {"intersection": [  # YAML's true and 1, not text
        {"method": "config.enabled", "value": True}, {"method": "fqn", "value": "orders", "children": True, "children_depth": 1}]}},
    {"name": "versions", "definition": {"union": [
        "version:latest", {"method": "fqn", "value": "dim_customers.v1", "parents": True}]}},
    {"name": "the_default", "default": True, "description": "finance and what reads it", "definition": {"union": [
        {"method": "group", "value": "finance", "children": True}, {"exclude": ["order_items"]}]}},
]  # fmt: skip
NAMES = [selector["name"] for selector in SELECTORS]


def _manifest_selectors(selectors: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest's `selectors`, as dbt parse writes them from selectors.yml."""
    from dbt.config.selectors import SelectorDict

    normalised: dict[str, Any] = SelectorDict.parse_from_selectors_list(copy.deepcopy(selectors))
    return normalised


@pytest.fixture(scope="module")
def governed(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> tuple[ManifestIndex, DbtOracle, ManifestIndex]:
    """The portal's index with the selectors as dbt writes them, dbt's selector, and an index with the
    selectors as written in selectors.yml (which the portal reads the same)."""
    raw = MANIFESTS["governed"]()
    raw["selectors"] = _manifest_selectors(SELECTORS)
    as_written = {**MANIFESTS["governed"](), "selectors": {s["name"]: copy.deepcopy(s) for s in SELECTORS}}
    return ManifestIndex.from_raw(raw), both("governed")[1], ManifestIndex.from_raw(as_written)


@pytest.mark.parametrize("name", NAMES)
def test_a_named_selector_selects_what_dbt_ls_selector_lists(
    governed: tuple[ManifestIndex, DbtOracle, ManifestIndex], name: str
) -> None:
    index, dbt, as_written = governed
    expected = dbt.named(SELECTORS, name)
    assert expected, f"dbt selects nothing for {name!r}: the case proves nothing"
    chosen = select(index, selector_name=name, with_tests=True)
    assert (list(chosen.unique_ids), chosen.selector, chosen.warnings) == (expected, name, ())
    assert list(select(as_written, selector_name=name, with_tests=True).unique_ids) == expected
    without_tests = [uid for uid in expected if not uid.startswith(("test.", "unit_test."))]
    assert list(select(index, selector_name=name).unique_ids) == without_tests


def test_indirect_selection_modes_differ_as_in_dbt(
    governed: tuple[ManifestIndex, DbtOracle, ManifestIndex],
) -> None:
    # Guard against the cautious, buildable and empty cases passing vacuously.
    _, dbt, _ = governed
    eager = set(dbt.select("orders"))
    cautious, empty = set(dbt.named(SELECTORS, "cautious")), dbt.named(SELECTORS, "empty")
    assert cautious < eager
    assert not [uid for uid in empty if uid.startswith(("test.", "unit_test."))]
    assert set(dbt.named(SELECTORS, "buildable")) < set(dbt.select("1+orders"))


def test_the_default_selector_applies_without_select_or_exclude(
    governed: tuple[ManifestIndex, DbtOracle, ManifestIndex],
) -> None:
    index, dbt, _ = governed
    default = select(index, with_tests=True)
    assert (list(default.unique_ids), default.selector) == (dbt.named(SELECTORS), "the_default")
    assert select(index, [], ()).selector == "the_default"  # empty, as an empty --select
    # With --select or --exclude, dbt ls ignores the default selector.
    only_exclude = select(index, exclude="order_items", with_tests=True)
    assert (list(only_exclude.unique_ids), only_exclude.selector) == (dbt.select(None, "order_items"), None)
    assert select(index, "orders").selector is None


def test_mattermost_default_selector_matches_dbt_ls(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> None:
    # The real selectors.yml of mattermost-analytics: everything but views, and every test.
    index, dbt = both("mattermost_analytics")
    selectors = list(index.selectors.values())
    expected = dbt.named(selectors)
    default = select(index, with_tests=True)
    assert default.selector == "skip_views_but_test_views"
    assert list(default.unique_ids) == expected
    assert (
        list(select(index, selector_name="skip_views_but_test_views", with_tests=True).unique_ids) == expected
    )
    assert any(uid.startswith("test.") for uid in expected)
    assert len(expected) < len(dbt.select(None))  # the views are left out


# selectors.yml definitions dbt refuses, and the part of the portal's message that says why.
REFUSED = [
    ({"name": "later", "definition": {"method": "selector", "value": "defined_after"}},
     "names the selector 'defined_after', which is not defined before it"),
    ({"name": "two_excludes", "definition": {"union": ["tag:a", {"exclude": ["tag:b"]}, {"exclude": ["tag:c"]}]}},
     "has two 'exclude' entries in one 'union'"),
    ({"name": "bad_method", "definition": {"method": "tga", "value": "nightly"}}, "Did you mean 'tag:'?"),
    ({"name": "bad_mode", "definition": {"method": "tag", "value": "a", "indirect_selection": "eagerly"}},
     "has indirect_selection 'eagerly'"),
    ({"name": "crowded_root", "definition": {"union": ["tag:a"], "intersection": ["tag:b"]}},
     "a root 'union' or 'intersection' must be the definition's only key"),
    ({"name": "union_of_text", "definition": {"union": "tag:a"}}, "has a 'union' that is not a list"),
    ({"name": "no_value", "definition": {"method": "tag", "parents": True}}, "give it 'method' and 'value'"),
    ({"name": "at_and_plus", "definition": {"method": "tag", "value": "a", "children": True, "childrens_parents": True}},
     "combines childrens_parents ('@') with children ('+')"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "message"), REFUSED, ids=[r[0]["name"] for r in REFUSED])
def test_definitions_dbt_refuses_are_refused_with_the_fix(
    governed: tuple[ManifestIndex, DbtOracle, ManifestIndex], definition: dict[str, Any], message: str
) -> None:
    from dbt.exceptions import DbtSelectorsError
    from dbt_common.exceptions import DbtRuntimeError

    _, dbt, _ = governed
    selectors = [*SELECTORS, definition, {"name": "defined_after", "definition": "tag:nightly"}]
    with pytest.raises((DbtSelectorsError, DbtRuntimeError, ValueError)):  # ValueError: dbt crashes
        dbt.named(selectors, definition["name"])
    written = ManifestIndex.from_raw(
        {**MANIFESTS["governed"](), "selectors": {s["name"]: s for s in selectors}}
    )
    with pytest.raises(SelectorError) as caught:
        select(written, selector_name=definition["name"])
    assert caught.value.kind == Kind.INVALID
    assert f"The selector {definition['name']!r} in selectors.yml" in str(caught.value)
    assert message in str(caught.value)
    # The other selectors still work: only the one asked for (and those it names) is read.
    assert select(written, selector_name="a_string").unique_ids


def test_an_unknown_selector_suggests_the_defined_ones(
    governed: tuple[ManifestIndex, DbtOracle, ManifestIndex],
) -> None:
    index, _, _ = governed
    with pytest.raises(UnknownSelectorError) as caught:
        select(index, selector_name="the_defualt")
    assert caught.value.kind == Kind.NOT_FOUND
    assert "No selector is called 'the_defualt'. Did you mean the_default?" in str(caught.value)
    assert "a_string" in str(caught.value)
    bare = ManifestIndex.from_raw(MANIFESTS["jaffle-shop"]())
    with pytest.raises(UnknownSelectorError, match="The project defines no selectors"):
        select(bare, selector_name="nightly")


def test_a_named_selector_with_select_or_exclude_is_refused(
    governed: tuple[ManifestIndex, DbtOracle, ManifestIndex],
) -> None:
    # dbt ls silently ignores --select and --exclude next to --selector; the portal says so instead.
    index, _, _ = governed
    for select_, exclude in (("orders", None), (None, "orders")):
        with pytest.raises(SelectorError, match="not both: dbt ignores --select and --exclude"):
            select(index, select_, exclude, selector_name="a_string")
