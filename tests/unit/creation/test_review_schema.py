"""What a reviewer is shown of a proposed change's columns and contract: the schema and contract
diff on real YAML from `render_product`. It needs no warehouse; the data diff is tested in
`test_review_diff`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from portal.creation.review_schema import ColumnChange, contract_changes, schema_diff
from portal.creation.scaffold import render_product
from portal.creation.spec import ProductSpec
from portal.creation.sqlguard import KnownRelations, validate_sql
from portal.project.artifacts import load_manifest
from portal.settings import ROOT
from portal.warehouse import ColumnInfo

FIXTURE = ROOT.parent / "shared" / "fixtures" / "jaffle-shop" / "manifest.json.gz"


def roundtrips(value: object) -> None:
    """JSON-ready means the strict encoder takes it (no NaN, no dates, no decimals)."""
    json.dumps(value, allow_nan=False)


def test_columns_compared_without_case_in_the_proposed_order() -> None:
    before = [ColumnInfo("ID", "INTEGER"), ColumnInfo("amount", "DECIMAL(18, 2)"), ColumnInfo("gone", "DATE")]
    after = [ColumnInfo("new", "VARCHAR"), ColumnInfo("amount", "decimal(18,2)"), ColumnInfo("id", "BIGINT")]
    diff = schema_diff(before, after)
    assert diff.columns == [
        ColumnChange("new", "added", None, "VARCHAR"),
        ColumnChange("amount", "unchanged", "DECIMAL(18, 2)", "decimal(18,2)"),
        ColumnChange("id", "retyped", "INTEGER", "BIGINT"),
        ColumnChange("gone", "removed", "DATE", None),
    ]
    assert (diff.added, diff.removed, diff.retyped) == (["new"], ["gone"], ["id"])
    assert diff.contract == []
    assert diff.as_dict()["columns"][0] == {
        "name": "new",
        "change": "added",
        "before_type": None,
        "after_type": "VARCHAR",
    }
    roundtrips(diff.as_dict())


def test_a_new_product_has_every_column_added() -> None:
    diff = schema_diff(None, [ColumnInfo("a", "INTEGER"), ColumnInfo("b", "VARCHAR")])
    assert diff.added == ["a", "b"] and diff.removed == diff.retyped == []


@pytest.fixture(scope="module")
def known() -> KnownRelations:
    return KnownRelations.from_manifest(load_manifest(FIXTURE), catalogs=("nessie",))


SPEC = ProductSpec(
    name="dp_customer_orders",
    description="Orders per customer, one row each.",
    data_product_type="CUSTOMER_360",
    owner="customer-analytics-team",
    primary_key=("customer_id",),
    sql="select customer_id, count(*) as order_count, sum(order_total) as revenue from stg_orders group by 1",
)
COLUMNS = [("customer_id", "VARCHAR"), ("order_count", "BIGINT"), ("revenue", "DECIMAL(18,2)")]


def yml(
    known: KnownRelations, spec: ProductSpec = SPEC, columns: list[tuple[str, str]] | None = COLUMNS
) -> str:
    guard = validate_sql(spec.sql, dialect="duckdb", known=known)
    assert guard.ok, guard.problems
    return render_product(spec, guard, columns, created_by="local-user", group="customer_analytics").yml_text


def test_contract_of_generated_files(known: KnownRelations) -> None:
    published = yml(known)
    assert contract_changes(published, published) == []
    composite = dataclasses.replace(SPEC, primary_key=("customer_id", "order_count"))
    assert contract_changes(published, yml(known, composite)) == [
        "The model gains test unique_combination_of_columns",
        "`customer_id` loses test unique",
        "`order_count` gains test not_null",
    ]
    retyped = [("customer_id", "BIGINT"), *COLUMNS[1:]]
    assert contract_changes(published, yml(known, columns=retyped)) == [
        "`customer_id`'s declared data_type changes from varchar to bigint"
    ]
    untyped = contract_changes(published, yml(known, columns=None))
    assert untyped[0] == (
        "The contract is no longer enforced: columns may change name or type without a failing build"
    )
    # Without a dry run only the key is listed, by name: no type is declared.
    assert untyped[1:] == ["`customer_id`'s declared data_type changes from varchar to (none)"]


def test_schema_diff_carries_the_contract(known: KnownRelations) -> None:
    columns = [ColumnInfo(n, t) for n, t in COLUMNS]
    rekeyed = dataclasses.replace(SPEC, primary_key=("order_count",))
    diff = schema_diff(columns, columns, before_yml=yml(known), after_yml=yml(known, rekeyed))
    assert diff.contract == [
        "`customer_id` loses test unique",
        "`customer_id` loses test not_null",
        "`order_count` gains test unique",
        "`order_count` gains test not_null",
    ]
    assert diff.as_dict()["contract"] == diff.contract


BEFORE_YML = """
version: 2
models:
  - name: dp_orders
    config:
      contract: {enforced: false}
    constraints:
      - type: primary_key
        columns: [customer_id]
    columns:
      - name: customer_id
        data_type: bigint
        constraints: [{type: primary_key}, {type: not_null}]
      - name: email
        data_type: varchar
      - name: region
        data_type: varchar
        data_tests:
          - accepted_values:
              arguments: {values: [EU, US]}
"""
AFTER_YML = """
version: 2
models:
  - name: dp_orders
    config:
      contract: {enforced: true}
    constraints:
      - type: primary_key
        columns: [customer_id, region]
      - type: check
        expression: "amount >= 0"
    columns:
      - name: customer_id
        data_type: bigint
        constraints: [{type: not_null}]
      - name: email
        data_type: varchar
        data_tests: [not_null]
      - name: region
        data_type: varchar
        data_tests:
          - accepted_values:
              arguments: {values: [EU, US, APAC]}
"""


def test_contract_constraints_and_tests() -> None:
    assert contract_changes(BEFORE_YML, AFTER_YML) == [
        "The contract is now enforced: the build fails when a column's name or type differs from the YAML",
        "The primary key changes from (customer_id) to (customer_id, region)",
        "The model gains a check (amount >= 0) constraint",
        "`customer_id` loses its primary_key constraint",
        "`email` gains test not_null",
        "`region`'s test accepted_values changes",
    ]
    assert contract_changes(AFTER_YML, BEFORE_YML)[:3] == [
        "The contract is no longer enforced: columns may change name or type without a failing build",
        "The primary key changes from (customer_id, region) to (customer_id)",
        "The model loses its check (amount >= 0) constraint",
    ]


def test_missing_or_broken_yaml_is_one_sentence() -> None:
    assert contract_changes(None, AFTER_YML) == [
        "The published version has no YAML, so the contract was not compared"
    ]
    assert contract_changes(BEFORE_YML, "models: [") == [
        "The proposed YAML does not parse (expected the node content, but found '<stream end>' at line 1), "
        "so the contract was not compared"
    ]
    assert contract_changes("version: 2\n", AFTER_YML) == [
        "The published YAML declares no model, so the contract was not compared"
    ]
    assert contract_changes(BEFORE_YML, "[" * 5000) != []  # too deep to parse: still a sentence
    assert (
        schema_diff(None, [], after_yml="models: {")
        .contract[0]
        .startswith("The published version has no YAML")
    )
