"""Every demo product's ODCS contract, field by field against what the portal knows; a contract
read back into the same facts and the Create form's spec; malformed contracts refused at a path."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from portal.catalog.detail import product_detail
from portal.contracts.facts import ContractFacts, facts_of
from portal.contracts.odcs import (
    build_contract,
    contract_yaml,
    facts_from_contract,
    read_contract,
    spec_from_contract,
)
from portal.errors import InvalidInput
from portal.observability.profile import primary_key
from portal.service import PortalService
from portal.settings import Settings

PRODUCTS = ("dp_customer_360", "dp_product_performance", "dp_revenue_analytics")


@pytest.fixture(scope="module")
def service(demo_env: dict[str, str]) -> PortalService:
    return PortalService(Settings.from_env(demo_env))


@pytest.mark.parametrize("name", PRODUCTS)
def test_the_contract_states_what_the_product_page_shows(service: PortalService, name: str) -> None:
    detail = product_detail(service, name)
    entry, node = detail.entry, detail.node
    document = yaml.safe_load(contract_yaml(facts_of(service, name)))
    assert (document["apiVersion"], document["kind"], document["name"]) == ("v3.2.0", "DataContract", name)
    assert document["status"] == "active"
    assert document["description"]["purpose"] == entry.description
    assert document["tags"] == list(entry.labels)
    assert document["team"]["name"] == entry.owner
    assert document["team"]["members"] == [{"username": detail.group_owner, "role": "owner"}]
    custom = {p["property"]: p["value"] for p in document["customProperties"]}
    assert custom["dataProductType"] == entry.data_product_type
    assert custom["consumers"] == list(entry.consumers)
    assert custom["updateFrequency"] == entry.update_frequency
    (table,) = document["schema"]
    properties = {p["name"]: p for p in table["properties"]}
    assert list(properties) == [c.name for c in detail.columns]
    for column in detail.columns:
        assert properties[column.name]["physicalType"] == column.type
        assert properties[column.name].get("description", "") == column.description
    key = primary_key(service.artifacts().manifest, node)
    assert [p["name"] for p in table["properties"] if p.get("primaryKey")] == list(key)
    assert [properties[c]["primaryKeyPosition"] for c in key] == list(range(1, len(key) + 1))
    # Every generic test is one quality rule, on its column (or the table), named by the test.
    rules = [(q["name"], p["name"]) for p in table["properties"] for q in p.get("quality", [])]
    rules += [(q["name"], None) for q in table.get("quality", [])]
    tests = [
        (t.test.name, t.test.column_name)
        for t in service.artifacts().manifest.tests_of(node.unique_id)
        if t.test is not None and t.test.name != "singular"
    ]
    assert sorted(rules, key=str) == sorted(tests, key=str)
    (server,) = document["servers"]
    assert server == {
        "server": "duckdb",
        "type": "duckdb",
        "database": str(service.settings.duckdb_path),
        "schema": node.schema,
    }
    sla = {s["property"]: s for s in document["slaProperties"]}
    assert sla["freshness"]["element"] == f"{name}.data_product_updated_at"
    assert (sla["frequency"]["value"], sla["frequency"]["unit"]) == (
        (31, "d") if entry.update_frequency == "monthly" else (1, "d")
    )


def test_quality_rules_say_each_test_the_way_datacontract_runs_it(service: PortalService) -> None:
    document = yaml.safe_load(contract_yaml(facts_of(service, "dp_customer_360")))
    properties = {p["name"]: p for p in document["schema"][0]["properties"]}
    rules = {q["id"]: q for p in properties.values() for q in p.get("quality", [])}
    assert rules["unique_customer_id"] | {"description": ""} == {
        "id": "unique_customer_id",
        "name": "unique",
        "description": "",
        "dimension": "uniqueness",
        "severity": "error",
        "metric": "duplicateValues",
        "mustBe": 0,
    }
    assert rules["accepted_values_recency_score"]["arguments"] == {"validValues": [1, 2, 3, 4, 5]}
    assert rules["not_null_email"]["metric"] == "nullValues"
    # A where-filtered not_null and a relationships test are SQL counting the rows that break them.
    filtered = rules["not_null_recency_score"]
    assert filtered["type"] == "sql" and filtered["mustBe"] == 0
    assert "recency_score is null and (order_count > 0)" in filtered["query"]
    related = rules["relationships_customer_id_customer_id"]
    assert "not exists (select 1 from staging.stg_customers as parent" in related["query"]


@pytest.mark.parametrize("name", PRODUCTS)
def test_a_round_trip_keeps_every_field(service: PortalService, name: str) -> None:
    """contract -> facts (and the Create form's spec) -> contract: nothing the portal knows is lost."""
    facts = facts_of(service, name)
    text = contract_yaml(facts)
    again = facts_from_contract(read_contract(text))
    for field in dataclasses.fields(ContractFacts):
        assert getattr(again, field.name) == getattr(facts, field.name), field.name
    assert contract_yaml(again) == text
    spec = spec_from_contract(text)
    entry = product_detail(service, name).entry
    assert spec.name == name
    assert spec.description == entry.description
    assert spec.data_product_type == entry.data_product_type
    assert spec.owner == entry.owner
    assert spec.consumers == entry.consumers
    assert spec.update_frequency == entry.update_frequency
    assert spec.tags == entry.labels
    assert spec.primary_key == facts.primary_key
    assert spec.materialization == entry.materialization
    assert spec.column_descriptions == {c.name: c.description for c in facts.columns if c.description}
    assert spec.sql == ""  # a contract says what the data is, not how it is computed


GOOD_HEAD = (
    "apiVersion: v3.2.0\nkind: DataContract\nid: orders\nversion: 1.0.0\nstatus: draft\nname: dp_orders\n"
)


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("apiVersion: v3.2.0\nkind: [DataContract\n", "contract", "not valid YAML"),
        ("- just\n- a list\n", "contract", "not a mapping"),
        ("a: &x [1, 2]\nb: [*x, *x]\n", "contract", "alias"),
        ("", "contract", "empty"),
        (GOOD_HEAD + "schema:\n- name: t\n  properties:\n  - name: a\n    primaryKey: perhaps\n",
         "contract.schema[0].properties[0].primaryKey", "not of type 'boolean'"),
        (GOOD_HEAD + "owner: me\n", "contract", "owner"),
        (GOOD_HEAD.replace("v3.2.0", "v9"), "contract.apiVersion", "v9"),
        (GOOD_HEAD, "contract.schema", "no schema"),
        (GOOD_HEAD + "customProperties:\n- property: updateFrequency\n  value: fortnightly\n"
         "schema:\n- name: t\n", "contract.customProperties.updateFrequency", "fortnightly"),
    ],
)  # fmt: skip
def test_a_malformed_contract_is_refused_saying_what_and_where(text: str, field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        spec_from_contract(text.encode())
    problems = refused.value.problems
    assert any(p.field == field and says in p.message for p in problems), problems
    assert field in str(refused.value)


def test_a_yaml_error_names_its_line_and_column() -> None:
    with pytest.raises(InvalidInput) as refused:
        read_contract("apiVersion: v3.2.0\nkind: DataContract\nschema: [\n")
    (problem,) = refused.value.problems
    assert problem.position is not None and problem.position[0] == 4


def test_a_contract_from_elsewhere_fills_what_it_says(service: PortalService) -> None:
    """No portal custom properties: the owner is the team, the frequency the SLA's, the key the
    properties marked primaryKey in their positions."""
    text = GOOD_HEAD + (
        "description: {purpose: Orders by day.}\n"
        "team: {name: sales-team}\n"
        "tags: [sales]\n"
        "slaProperties:\n- {property: frequency, value: 7, unit: d}\n"
        "schema:\n- name: dp_orders\n  properties:\n"
        "  - {name: day, primaryKey: true, primaryKeyPosition: 2, description: The day.}\n"
        "  - {name: shop, primaryKey: true, primaryKeyPosition: 1}\n"
    )
    spec = spec_from_contract(text)
    assert (spec.name, spec.description, spec.owner, spec.tags) == (
        "dp_orders",
        "Orders by day.",
        "sales-team",
        ("sales",),
    )
    assert spec.update_frequency == "weekly"
    assert spec.primary_key == ("shop", "day")
    assert spec.column_descriptions == {"day": "The day."}
    assert build_contract(facts_from_contract(read_contract(text))).name == "dp_orders"
