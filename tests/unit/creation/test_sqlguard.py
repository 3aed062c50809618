"""Accepted queries: the rewrite into ref()/source(), the upstream list and the dry-run SQL.

The relations come from a small hand-written manifest shaped like the demo project (silver
sources, staging/intermediate models), loaded through the real artifact reader. Refusals are
in test_hostile_corpus.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from portal.creation.sqlguard import KnownRelations, validate_sql
from portal.project.artifacts import load_manifest

SCHEMA_URL = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def _source(source_name: str, name: str, schema: str, identifier: str | None = None) -> dict[str, object]:
    return {
        "unique_id": f"source.asgard.{source_name}.{name}",
        "resource_type": "source",
        "package_name": "asgard",
        "source_name": source_name,
        "name": name,
        "identifier": identifier or name,
        "database": "warehouse",
        "schema": schema,
    }


def _model(name: str, schema: str, package: str = "asgard", alias: str | None = None) -> dict[str, object]:
    return {
        "unique_id": f"model.{package}.{name}",
        "resource_type": "model",
        "package_name": package,
        "name": name,
        "alias": alias or name,
        "database": "warehouse",
        "schema": schema,
    }


NODES = [
    _model("stg_orders", "staging"),
    _model("stg_customers", "staging"),
    _model("int_orders", "intermediate"),
    _model("dp_customer_360", "gold", alias="customer_360"),
    _model("orders", "silver"),  # deliberately at the same schema.table as the silver source
    _model("util_dates", "utils", package="dbt_dates"),
    _model("weird-name", "staging"),  # cannot be written into ref() safely: left out
]
SOURCES = [
    _source("silver", "orders", "silver"),
    _source("silver", "customers", "silver"),
    _source("crm", "accounts", "landing", identifier="raw_accounts"),
]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownRelations:
    path = tmp_path_factory.mktemp("manifest") / "manifest.json"
    path.write_text(
        json.dumps(
            {
                "metadata": {"dbt_schema_version": SCHEMA_URL, "project_name": "asgard"},
                "nodes": {n["unique_id"]: n for n in NODES},
                "sources": {s["unique_id"]: s for s in SOURCES},
            }
        )
    )
    return KnownRelations.from_manifest(load_manifest(path), catalogs=("nessie",))


def accepted(sql: str, known: KnownRelations, dialect: str = "duckdb") -> tuple[str, list[str], str]:
    result = validate_sql(sql, dialect=dialect, known=known)
    assert result.ok, result.problems
    assert result.problems == []
    assert result.rewritten_sql is not None and result.normalized_sql is not None
    return result.rewritten_sql, result.upstream, result.normalized_sql


def flat(sql: str) -> str:
    return " ".join(sql.split())


# --- how tables may be written --------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "dialect"),
    [
        ("silver.customers", "duckdb"),
        ("SILVER.Customers", "duckdb"),
        ('"silver"."customers"', "duckdb"),
        ("warehouse.silver.customers", "duckdb"),  # the DuckDB database name, from the manifest
        ("nessie.silver.customers", "trino"),  # a configured catalog name
        ("silver.customers", "trino"),
    ],
)
def test_source_spellings_become_source_calls(known: KnownRelations, written: str, dialect: str) -> None:
    rewritten, upstream, normalized = accepted(f"select customer_id from {written}", known, dialect)
    assert "{{ source('silver', 'customers') }}" in rewritten
    assert upstream == ["source.asgard.silver.customers"]
    assert '"silver"."customers"' in normalized


def test_source_name_form_and_identifier_form_reach_the_same_source(known: KnownRelations) -> None:
    by_source_name, up1, norm1 = accepted("select * from crm.accounts", known)
    by_relation, up2, _ = accepted("select * from landing.raw_accounts", known)
    assert up1 == up2 == ["source.asgard.crm.accounts"]
    assert "{{ source('crm', 'accounts') }} AS accounts" in by_source_name
    assert "{{ source('crm', 'accounts') }} AS raw_accounts" in by_relation
    assert '"landing"."raw_accounts" AS accounts' in norm1


@pytest.mark.parametrize("written", ["stg_orders", "staging.stg_orders", "warehouse.staging.stg_orders"])
def test_model_spellings_become_ref_calls(known: KnownRelations, written: str) -> None:
    rewritten, upstream, normalized = accepted(f"select * from {written}", known)
    assert flat(rewritten) == "SELECT * FROM {{ ref('stg_orders') }} AS stg_orders"
    assert upstream == ["model.asgard.stg_orders"]
    assert flat(normalized) == 'SELECT * FROM "staging"."stg_orders" AS stg_orders'


def test_model_with_an_alias_is_read_by_name_or_relation(known: KnownRelations) -> None:
    rewritten, upstream, normalized = accepted("select * from gold.customer_360 c", known)
    assert "{{ ref('dp_customer_360') }} AS c" in rewritten
    assert '"gold"."customer_360" AS c' in normalized
    assert accepted("select * from dp_customer_360", known)[1] == upstream


def test_package_model_is_a_two_argument_ref(known: KnownRelations) -> None:
    rewritten, _, _ = accepted("select * from util_dates", known)
    assert "{{ ref('dbt_dates', 'util_dates') }}" in rewritten


def test_names_that_cannot_be_written_into_jinja_are_not_known(known: KnownRelations) -> None:
    result = validate_sql('select * from "weird-name"', dialect="duckdb", known=known)
    assert not result.ok


def test_a_spelling_shared_by_two_relations_is_refused_with_both(known: KnownRelations) -> None:
    result = validate_sql("select * from silver.orders", dialect="duckdb", known=known)
    assert not result.ok
    assert "`silver.orders` or `orders`" in result.problems[0].message
    # ... and each can still be named on its own
    assert accepted("select * from orders", known)[1] == ["model.asgard.orders"]


def test_excluding_a_product_stops_it_reading_itself(known: KnownRelations) -> None:
    editing = known.excluding("model.asgard.dp_customer_360")
    assert not validate_sql("select * from dp_customer_360", dialect="duckdb", known=editing).ok
    assert validate_sql("select * from stg_orders", dialect="duckdb", known=editing).ok


# --- query shapes --------------------------------------------------------------------------


def test_ctes_and_joins(known: KnownRelations) -> None:
    sql = """
        with recent as (
            select * from stg_orders where ordered_at > current_date - interval 30 day
        )
        select c.customer_id, count(r.order_id) as orders
        from silver.customers as c
        left join recent r on r.customer_id = c.customer_id
        group by c.customer_id
    """
    rewritten, upstream, _ = accepted(sql, known)
    assert "FROM {{ ref('stg_orders') }} AS stg_orders" in rewritten
    assert "FROM {{ source('silver', 'customers') }} AS c" in rewritten
    assert "LEFT JOIN recent AS r" in rewritten  # the CTE stays a CTE
    assert upstream == ["model.asgard.stg_orders", "source.asgard.silver.customers"]


def test_cte_shadowing_a_model_is_only_the_cte(known: KnownRelations) -> None:
    rewritten, upstream, _ = accepted(
        "with stg_orders as (select 1 as order_id) select * from stg_orders", known
    )
    assert upstream == []
    assert "{{" not in rewritten


def test_cte_reading_the_model_it_shadows(known: KnownRelations) -> None:
    # Inside its own (non-recursive) body a CTE name still means the real relation.
    sql = "with stg_orders as (select * from stg_orders where order_id > 0) select * from stg_orders"
    rewritten, upstream, _ = accepted(sql, known)
    assert upstream == ["model.asgard.stg_orders"]
    assert rewritten.count("{{ ref('stg_orders') }}") == 1
    assert flat(rewritten).endswith("SELECT * FROM stg_orders")


def test_cte_is_visible_in_later_ctes_and_subqueries(known: KnownRelations) -> None:
    sql = """
        with a as (select * from int_orders), b as (select * from a)
        select * from b where exists (select 1 from a where a.order_id = b.order_id)
    """
    rewritten, upstream, _ = accepted(sql, known)
    assert upstream == ["model.asgard.int_orders"]
    assert rewritten.count("{{") == 1


def test_cte_in_a_subquery_does_not_leak_out(known: KnownRelations) -> None:
    sql = "select * from (with stg_customers as (select 1 as x) select * from stg_customers) s, stg_customers"
    rewritten, upstream, _ = accepted(sql, known)
    assert upstream == ["model.asgard.stg_customers"]
    assert rewritten.count("{{ ref('stg_customers') }}") == 1


def test_qualified_name_is_never_a_cte(known: KnownRelations) -> None:
    _, upstream, _ = accepted("with customers as (select 1 as x) select * from silver.customers", known)
    assert upstream == ["source.asgard.silver.customers"]


def test_window_functions_and_qualify(known: KnownRelations) -> None:
    sql = """
        select customer_id, order_id,
               row_number() over (partition by customer_id order by ordered_at desc) as rn,
               sum(amount) over w as running,
               lag(amount, 1) over (order by ordered_at) as previous_amount
        from int_orders
        window w as (partition by customer_id order by ordered_at rows between unbounded preceding and current row)
        qualify rn = 1
    """
    rewritten, upstream, _ = accepted(sql, known)
    assert "ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY ordered_at DESC)" in flat(rewritten)
    assert upstream == ["model.asgard.int_orders"]


def test_set_operations_keep_upstream_unique_and_ordered(known: KnownRelations) -> None:
    sql = """
        select customer_id from stg_customers
        union all select customer_id from silver.customers
        except select customer_id from stg_customers
        intersect select customer_id from int_orders
    """
    _, upstream, _ = accepted(sql, known)
    assert upstream == [
        "model.asgard.stg_customers",
        "source.asgard.silver.customers",
        "model.asgard.int_orders",
    ]


def test_subqueries_in_where_and_select(known: KnownRelations) -> None:
    sql = """
        select o.order_id, (select max(ordered_at) from stg_orders) as latest
        from int_orders o
        where o.customer_id in (select customer_id from stg_customers where region = 'EU')
    """
    _, upstream, _ = accepted(sql, known)
    assert set(upstream) == {
        "model.asgard.stg_orders",
        "model.asgard.int_orders",
        "model.asgard.stg_customers",
    }


def test_trino_dialect_features(known: KnownRelations) -> None:
    sql = """
        select o.order_id, approx_percentile(o.amount, 0.5) over (partition by o.customer_id) as median_amount,
               date_diff('day', o.ordered_at, current_timestamp) as age_days, t.tag
        from nessie.intermediate.int_orders o
        cross join unnest(array['a', 'b']) as t(tag)
        where try_cast(o.amount as double) > 0
    """
    rewritten, upstream, normalized = accepted(sql, known, "trino")
    assert "FROM {{ ref('int_orders') }} AS o" in rewritten
    assert "CROSS JOIN UNNEST(ARRAY['a', 'b']) AS t(tag)" in rewritten
    assert '"intermediate"."int_orders" AS o' in normalized
    assert upstream == ["model.asgard.int_orders"]


def test_schema_qualified_columns_follow_the_table(known: KnownRelations) -> None:
    rewritten, _, normalized = accepted("select silver.customers.customer_id from silver.customers", known)
    assert (
        flat(rewritten)
        == "SELECT customers.customer_id FROM {{ source('silver', 'customers') }} AS customers"
    )
    assert "customers.customer_id" in normalized


def test_comments_are_dropped(known: KnownRelations) -> None:
    rewritten, _, normalized = accepted("select 1 as x -- note\nfrom stg_orders /* ; drop table x */", known)
    assert "note" not in rewritten and "drop" not in rewritten.lower() and "drop" not in normalized.lower()


def test_placeholder_text_in_the_input_cannot_collide(known: KnownRelations) -> None:
    rewritten, _, _ = accepted("select '__asgard_0000000000000000_0' as __asgard_x_0 from stg_orders", known)
    assert "'__asgard_0000000000000000_0' AS __asgard_x_0" in rewritten
    assert rewritten.count("{{ ref('stg_orders') }}") == 1


def test_trailing_semicolon_is_one_statement(known: KnownRelations) -> None:
    assert accepted("select * from stg_orders;", known)[1] == ["model.asgard.stg_orders"]


def test_the_only_jinja_is_ours(known: KnownRelations) -> None:
    rewritten, _, _ = accepted(
        "select a.*, b.customer_id from stg_orders a join silver.customers b using (customer_id)", known
    )
    jinja = [part.split("}}")[0] for part in rewritten.split("{{")[1:]]
    assert jinja == [" ref('stg_orders') ", " source('silver', 'customers') "]
    assert "{%" not in rewritten and "{#" not in rewritten


def test_normalized_sql_runs_on_duckdb(known: KnownRelations) -> None:
    """The dry-run SQL names real relations: it plans against a warehouse with those tables."""
    sql = """
        with o as (select customer_id, count(*) as n from stg_orders group by 1)
        select c.customer_id, coalesce(o.n, 0) as orders, a.account_name
        from silver.customers c left join o using (customer_id) left join crm.accounts a on a.customer_id = c.customer_id
    """
    _, _, normalized = accepted(sql, known)
    con = duckdb.connect()
    con.execute("create schema silver; create schema staging; create schema landing")
    con.execute("create table silver.customers (customer_id int)")
    con.execute("create table staging.stg_orders (order_id int, customer_id int)")
    con.execute("create table landing.raw_accounts (customer_id int, account_name varchar)")
    assert [row[0] for row in con.execute(f"describe {normalized}").fetchall()] == [
        "customer_id",
        "orders",
        "account_name",
    ]


def test_refusals_carry_no_sql(known: KnownRelations) -> None:
    result = validate_sql("select * from nowhere", dialect="duckdb", known=known)
    assert (result.ok, result.rewritten_sql, result.normalized_sql, result.upstream) == (
        False,
        None,
        None,
        [],
    )


def test_unknown_table_points_at_it(known: KnownRelations) -> None:
    result = validate_sql("select\n  1 as one\nfrom  stg_ordrs", dialect="duckdb", known=known)
    (problem,) = result.problems
    assert problem.position == (3, 7)
    assert "Did you mean `stg_orders`" in problem.message


def test_unsupported_dialect_is_a_programming_error(known: KnownRelations) -> None:
    with pytest.raises(ValueError, match="duckdb, trino"):
        validate_sql("select 1", dialect="bigquery", known=known)


def test_jaffle_shop_manifest_relations() -> None:
    """Real artifacts: every source and model of a public project is readable by its names."""
    fixture = (
        Path(__file__).resolve().parents[3].parent
        / "shared"
        / "fixtures"
        / "jaffle-shop"
        / "manifest.json.gz"
    )
    manifest = load_manifest(fixture)
    known = KnownRelations.from_manifest(manifest)
    for model in manifest.models():
        result = validate_sql(f"select * from {model.schema}.{model.alias}", dialect="duckdb", known=known)
        assert result.upstream == [model.unique_id], result.problems
    for source in manifest.sources.values():
        result = validate_sql(
            f"select * from {source.source_name}.{source.name}", dialect="duckdb", known=known
        )
        assert result.upstream == [source.unique_id], result.problems


def test_catalog_qualified_table_with_schema_qualified_columns(known: KnownRelations) -> None:
    rewritten, _, _ = accepted("select silver.customers.customer_id from warehouse.silver.customers", known)
    assert (
        flat(rewritten)
        == "SELECT customers.customer_id FROM {{ source('silver', 'customers') }} AS customers"
    )


def test_unknown_catalog_lists_the_known_ones(known: KnownRelations) -> None:
    (problem,) = validate_sql("select * from evil.silver.customers", dialect="trino", known=known).problems
    assert "(known: `nessie`, `warehouse`)" in problem.message
    assert "did you mean `silver.customers`?" in problem.message
