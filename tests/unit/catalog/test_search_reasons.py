"""A catalog search says why each result matched: which texts hold the words, and where."""

from __future__ import annotations

import pytest

from portal.catalog.browse import SNIPPET, CatalogQuery, Found, Match, browse, search
from portal.service import PortalService
from portal.settings import Settings
from tests.searchable_jaffle import HOSTILE, HOSTILE_DESCRIPTION, searchable_jaffle


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PortalService:
    return PortalService(Settings.from_env(searchable_jaffle(tmp_path_factory.mktemp("search"))))


def found(service: PortalService, text: str) -> dict[str, Found]:
    return {f.item.name: f for f in search(service, CatalogQuery(text=text))}


def marked(match: Match) -> list[str]:
    return [match.text[a:b] for a, b in match.spans]


def test_a_column_name_says_column_and_where(service: PortalService) -> None:
    results = found(service, "Number_Of")  # case does not matter
    assert set(results) == {"customers"}
    (match,) = results["customers"].matched
    assert (match.field, match.text, match.of) == ("column", "number_of_orders", None)
    assert marked(match) == ["number_of"]


def test_owner_dbt_tag_and_label_each_say_which(service: PortalService) -> None:
    assert [(m.field, m.text) for m in found(service, "growth")["customers"].matched] == [
        ("owner", "growth-team")
    ]
    assert [(m.field, m.text) for m in found(service, "pii")["customers"].matched] == [
        ("dbt tag", "pii"),  # the model's own texts before its columns'
        ("column description", "Customer's first name. PII."),
        ("column description", "Customer's last name. PII."),
    ]
    assert [(m.field, m.of) for m in found(service, "retention")["customers"].matched] == [("label", None)]


def test_a_column_description_names_its_column_and_cuts_a_snippet(service: PortalService) -> None:
    (match,) = found(service, "ledger")["customers"].matched
    assert (match.field, match.of) == ("column description", "total_order_amount")
    assert len(match.text) <= SNIPPET + 2 and match.text.startswith("…")  # the long text, cut around it
    assert marked(match) == ["ledger"]


def test_every_word_must_match_and_each_is_marked(service: PortalService) -> None:
    results = found(service, "customer orders")
    assert {"customers", "orders"} <= set(results)
    for result in results.values():
        words = {w.lower() for m in result.matched for w in marked(m)}
        assert {"customer", "orders"} <= words, (result.item.name, result.matched)
    name_match = results["customers"].matched[0]
    assert (name_match.field, marked(name_match)) == ("name", ["customer"])
    assert found(service, "customer nothing_like_this") == {}


def test_hostile_text_is_matched_as_the_characters_it_is(service: PortalService) -> None:
    (match,) = found(service, "`<b>`")["customers"].matched
    assert (match.field, match.text, marked(match)) == ("column", HOSTILE, ["`<b>`"])
    (described,) = found(service, "[here]")["customers"].matched
    assert (described.text, described.of, marked(described)) == (HOSTILE_DESCRIPTION, HOSTILE, ["[here]"])


def test_without_search_words_nothing_is_said_and_browse_is_unchanged(service: PortalService) -> None:
    everything = search(service, CatalogQuery())
    assert everything and all(f.matched == () for f in everything)
    assert [f.item.name for f in everything] == [h.name for h in browse(service)]
    assert [h.name for h in browse(service, CatalogQuery(text="ledger"))] == ["customers"]
