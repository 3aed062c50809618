"""Hostile and broken input: every one is refused with a message saying what and how to fix,
and nothing is written.

Each case goes through the whole create path the service uses: `validate_spec`, `validate_sql`,
then (only if both pass) `render_product` and `write_product` into an empty directory. The
directory must still be empty afterwards. `render_product` is also called regardless, to show it
refuses on its own and cannot be used to skip validation.

Relations come from the public jaffle-shop artifacts (sources `ecom.raw_*` in schema `raw`,
models such as `stg_orders` in schema `main`).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import sqlglot.expressions as exp
from hypothesis import find, given, settings
from hypothesis import strategies as st

from portal.creation.scaffold import GeneratedFiles, ScaffoldError, render_product, write_product
from portal.creation.spec import Problem, ProductSpec, validate_spec
from portal.creation.sqlguard import ALLOWED_ANONYMOUS_FUNCTIONS, ALLOWED_NODES, KnownRelations, validate_sql
from portal.project.artifacts import load_manifest

FIXTURE = (
    Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "jaffle-shop" / "manifest.json.gz"
)
EXISTING = ("stg_orders", "customers", "dp_existing")


@pytest.fixture(scope="module")
def known() -> KnownRelations:
    return KnownRelations.from_manifest(load_manifest(FIXTURE), catalogs=("nessie",))


VALID = ProductSpec(
    name="dp_customer_orders",
    description="Orders per customer, one row each.",
    data_product_type="CUSTOMER_360",
    owner="customer-analytics",
    consumers=("marketing",),
    update_frequency="daily",
    tags=("customer",),
    primary_key=("customer_id",),
    materialization="table",
    sql="select customer_id, count(*) as order_count from stg_orders group by 1",
    column_descriptions={"customer_id": "The customer."},
)


def attempt(
    spec: ProductSpec, known: KnownRelations, models_dir: Path, dialect: str = "duckdb"
) -> list[Problem]:
    """The create path; returns the refusals (and writes only when there are none)."""
    guard = validate_sql(spec.sql, dialect=dialect, known=known)
    problems = validate_spec(spec, existing_names=EXISTING) + guard.problems
    try:
        files = render_product(spec, guard, None, created_by="hostile-corpus")
    except ScaffoldError as refused:
        assert refused.problems
    else:
        if not problems:
            write_product(models_dir, files)
    return problems


def assert_refused(problems: list[Problem], fragment: str, models_dir: Path) -> None:
    assert problems, "expected a refusal"
    messages = [problem.message for problem in problems]
    assert any(fragment in message for message in messages), messages
    assert list(models_dir.iterdir()) == [], "a refused product must leave nothing behind"


def test_the_valid_spec_is_written(known: KnownRelations, tmp_path: Path) -> None:
    """The corpus below proves something only if the same path writes a valid product."""
    assert attempt(VALID, known, tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp_customer_orders.sql", "dp_customer_orders.yml"]


# --- hostile SQL ---------------------------------------------------------------------------

DUCKDB, TRINO = "duckdb", "trino"
NOT_A_QUERY = "statements are not allowed"
TABLE_FUNCTION = "Reading from the table function"
FILE_OR_URL = "looks like a file or URL"
UNKNOWN = "is not a source or model of the project"

SQL_CASES: list[tuple[str, str, str, str]] = [
    # (id, dialect, sql, expected message fragment)
    (
        "jinja-expression",
        DUCKDB,
        "select * from stg_orders where order_id = {{ var('x') }}",
        "Jinja marker `{{`",
    ),
    ("jinja-statement", DUCKDB, "{% set x = 1 %}select * from stg_orders", "Jinja marker `{%`"),
    ("jinja-comment", DUCKDB, "select * from stg_orders {# hi #}", "Jinja marker `{#`"),
    (
        "jinja-in-string",
        DUCKDB,
        "select '{{ run_query(\"drop\") }}' as x from stg_orders",
        "Jinja marker `{{`",
    ),
    ("jinja-in-comment", DUCKDB, "select * from stg_orders -- {{ log('x') }}", "Jinja marker `{{`"),
    ("jinja-dollar-string", DUCKDB, "select $${{ x }}$$ as x from stg_orders", "Jinja marker `{{`"),
    ("nul-byte", DUCKDB, "select * from stg_orders\x00; drop table x", "U+0000"),
    ("lone-surrogate-in-string", DUCKDB, "select 'x\udfff' as x from stg_orders", "U+DFFF, half of a UTF-16"),
    ("noncharacter-in-comment", DUCKDB, "select order_id from stg_orders -- \uffff", "U+FFFF, a Unicode"),
    ("alias-twice", DUCKDB, "select order_id, customer_id as order_id from stg_orders", "named twice"),
    (
        "alias-twice-other-case",
        DUCKDB,
        "select order_id as x, customer_id as X from stg_orders",
        "named twice",
    ),
    ("alias-trailing-newline", DUCKDB, 'select order_id as "order_id\n" from stg_orders', "holds characters"),
    ("alias-with-space", DUCKDB, 'select order_id as "order id" from stg_orders', "holds characters"),
    ("quoted-column-newline", DUCKDB, 'select "order_id\n" from stg_orders', "holds characters"),
    ("nameless-expression", DUCKDB, "select count(*) from stg_orders", "has no name"),
    (
        "list-aggregate-by-name",
        DUCKDB,
        "select list_aggregate([1], 'getenv') as x from stg_orders",
        "quoted name",
    ),
    ("list-aggr-alias", DUCKDB, "select list_aggr([1], 'read_text') as x from stg_orders", "quoted name"),
    (
        "list-aggregate-computed-name",
        DUCKDB,
        "select list_aggregate([1], 'su' || 'm') as x from stg_orders",
        "quoted name",
    ),
    ("bidi-override", DUCKDB, "select * from stg_orders -- \u202e", "U+202E"),
    ("empty", DUCKDB, "  \n ", "empty"),
    ("huge", DUCKDB, "select * from stg_orders" + " " * 30_000, "the limit is 20,000"),
    ("paren-bomb", DUCKDB, "(" * 100_000, "the limit is 20,000"),
    (
        "paren-bomb-short",
        DUCKDB,
        "select " + "(" * 500 + "1" + ")" * 500,
        "nests brackets more than 20 levels",
    ),
    ("bracket-bomb", DUCKDB, "select " + "[" * 30 + "1" + "]" * 30, "nests brackets more than 20 levels"),
    ("not-bomb", DUCKDB, "select " + "not " * 3000 + "true from stg_orders", "nested too deeply"),
    ("case-bomb", DUCKDB, "select " + "case when true then " * 600 + "1" + " end" * 600, "nested too deeply"),
    ("two-statements", DUCKDB, "select 1; select 2", "holds 2 statements"),
    (
        "comment-hides-drop",
        DUCKDB,
        "select * from stg_orders /* fine */; drop table stg_orders",
        "holds 2 statements",
    ),
    (
        "line-comment-hides-delete",
        DUCKDB,
        "select * from stg_orders --\n; delete from stg_orders",
        "holds 2 statements",
    ),
    ("copy", DUCKDB, "COPY stg_orders TO '/tmp/out.csv'", f"`COPY` {NOT_A_QUERY}"),
    ("copy-from", DUCKDB, "COPY stg_orders FROM 's3://bucket/x.csv'", f"`COPY` {NOT_A_QUERY}"),
    ("attach", DUCKDB, "ATTACH 'other.duckdb' AS other", f"`ATTACH` {NOT_A_QUERY}"),
    ("detach", DUCKDB, "DETACH other", NOT_A_QUERY),
    ("pragma", DUCKDB, "PRAGMA database_list", f"`PRAGMA` {NOT_A_QUERY}"),
    ("set", DUCKDB, "SET enable_external_access = true", f"`SET` {NOT_A_QUERY}"),
    ("install", DUCKDB, "INSTALL httpfs", f"`INSTALL` {NOT_A_QUERY}"),
    ("load", DUCKDB, "LOAD httpfs", f"`LOAD` {NOT_A_QUERY}"),
    ("checkpoint", DUCKDB, "CHECKPOINT", f"`CHECKPOINT` {NOT_A_QUERY}"),
    ("delete", DUCKDB, "DELETE FROM stg_orders", f"`DELETE` {NOT_A_QUERY}"),
    ("insert", DUCKDB, "INSERT INTO stg_orders SELECT * FROM stg_orders", f"`INSERT` {NOT_A_QUERY}"),
    ("update", DUCKDB, "UPDATE stg_orders SET order_total = 0", f"`UPDATE` {NOT_A_QUERY}"),
    ("create", DUCKDB, "CREATE TABLE x AS SELECT * FROM stg_orders", f"`CREATE` {NOT_A_QUERY}"),
    ("drop", DUCKDB, "DROP TABLE stg_orders", f"`DROP` {NOT_A_QUERY}"),
    ("alter", DUCKDB, "ALTER TABLE stg_orders ADD COLUMN x INT", f"`ALTER` {NOT_A_QUERY}"),
    (
        "merge",
        DUCKDB,
        "MERGE INTO stg_orders t USING stg_orders s ON t.order_id = s.order_id WHEN MATCHED THEN DELETE",
        f"`MERGE` {NOT_A_QUERY}",
    ),
    ("call", DUCKDB, "CALL dbgen(sf = 1)", f"`CALL` {NOT_A_QUERY}"),
    ("execute", DUCKDB, "EXECUTE stmt", f"`EXECUTE` {NOT_A_QUERY}"),
    ("export-database", DUCKDB, "EXPORT DATABASE '/tmp/everything'", "does not parse as duckdb SQL"),
    ("describe", DUCKDB, "DESCRIBE stg_orders", NOT_A_QUERY),
    ("summarize", DUCKDB, "SUMMARIZE stg_orders", NOT_A_QUERY),
    ("values-only", DUCKDB, "VALUES (1), (2)", f"`VALUES` {NOT_A_QUERY}"),
    ("pivot-statement", DUCKDB, "PIVOT stg_orders ON status USING count(*)", NOT_A_QUERY),
    ("select-into", DUCKDB, "select * into copy_of_orders from stg_orders", "SELECT ... INTO"),
    ("for-update", DUCKDB, "select * from stg_orders for update", "FOR UPDATE"),
    ("read-csv-auto", DUCKDB, "select * from read_csv_auto('/etc/passwd')", TABLE_FUNCTION),
    ("read-csv-scalar", DUCKDB, "select read_csv('x.csv') as x", "function `read_csv` is not allowed"),
    ("read-parquet", DUCKDB, "select * from read_parquet('s3://bucket/*.parquet')", TABLE_FUNCTION),
    ("read-json", DUCKDB, "select * from stg_orders, read_json('x.json')", TABLE_FUNCTION),
    ("read-text", DUCKDB, "select * from read_text('/etc/passwd')", TABLE_FUNCTION),
    (
        "read-text-scalar",
        DUCKDB,
        "select read_text('/etc/passwd') as x",
        "function `read_text` is not allowed",
    ),
    ("glob", DUCKDB, "select * from glob('/home/*')", TABLE_FUNCTION),
    ("sqlite-scan", DUCKDB, "select * from sqlite_scan('x.db', 't')", TABLE_FUNCTION),
    ("query-table", DUCKDB, "select * from query_table('stg_orders')", TABLE_FUNCTION),
    ("query", DUCKDB, "select * from query('select 1')", TABLE_FUNCTION),
    ("file-as-table", DUCKDB, "select * from 'orders.parquet'", FILE_OR_URL),
    ("url-as-table", DUCKDB, "FROM 'http://x/y.csv'", FILE_OR_URL),
    ("s3-quoted-table", DUCKDB, 'select * from "s3://bucket/data"', FILE_OR_URL),
    ("getenv", DUCKDB, "select getenv('HOME') as home", "function `getenv` is not allowed"),
    ("getvariable", DUCKDB, "select getvariable('secret') as s from stg_orders", "function `getvariable`"),
    ("current-setting", DUCKDB, "select current_setting('threads') as t", "function `current_setting`"),
    (
        "function-hidden-in-window",
        DUCKDB,
        "select sum(order_total) over (partition by getenv('x')) as s from stg_orders",
        "function `getenv`",
    ),
    (
        "function-hidden-in-lambda",
        DUCKDB,
        "select list_transform([1], x -> getenv('a')) as l",
        "function `getenv`",
    ),
    (
        "file-hidden-in-exists",
        DUCKDB,
        "select * from stg_orders where exists (select * from read_csv('x.csv'))",
        TABLE_FUNCTION,
    ),
    (
        "file-hidden-in-limit",
        DUCKDB,
        "select * from stg_orders limit (select count(*) from read_csv('x.csv'))",
        TABLE_FUNCTION,
    ),
    ("query-parameter", DUCKDB, "select * from stg_orders where order_id = ?", "query parameter"),
    ("named-parameter", DUCKDB, "select * from stg_orders where order_id = $id", "query parameter"),
    ("time-travel", DUCKDB, "select * from stg_orders at (version => 1)", "time travel"),
    ("sample", DUCKDB, "select * from stg_orders using sample 10%", "TABLESAMPLE"),
    ("lateral", DUCKDB, "select * from stg_orders s cross join lateral (select 1)", "LATERAL"),
    (
        "recursive-cte-bomb",
        DUCKDB,
        "with recursive r as (select 1 as n union all select n + 1 from r) select * from r",
        "WITH RECURSIVE is not allowed",
    ),
    ("unknown-table", DUCKDB, "select * from secret_salaries", UNKNOWN),
    ("typo-table", DUCKDB, "select * from stg_ordrs", "Did you mean `stg_orders`"),
    ("unknown-schema", DUCKDB, "select * from information_schema.tables", UNKNOWN),
    ("duckdb-catalog-table", DUCKDB, "select * from duckdb_settings()", TABLE_FUNCTION),
    (
        "unknown-catalog",
        DUCKDB,
        "select * from evil.raw.raw_orders",
        "The catalog `evil` is not the warehouse's",
    ),
    ("four-part-name", DUCKDB, "select * from a.b.c.d", "more than three name parts"),
    ("quoted-dotted-name", DUCKDB, 'select * from "main.stg_orders"', "A quoted name is one name"),
    ("quoted-injection-name", DUCKDB, 'select * from "stg_orders; drop table x"', UNKNOWN),
    (
        "cte-used-before-defined",
        DUCKDB,
        "with a as (select * from b), b as (select 1) select * from a",
        "`b` is not",
    ),
    (
        "cte-out-of-scope",
        DUCKDB,
        "select * from (with stg as (select 1) select * from stg) s, stg",
        "`stg` is not",
    ),
    ("parse-error", DUCKDB, "select from where", "does not parse as duckdb SQL"),
    ("unclosed-quote", DUCKDB, "select 'abc from stg_orders", "is not closed"),
    (
        "trino-query-passthrough",
        TRINO,
        "SELECT * FROM TABLE(system.query(query => 'select 1'))",
        TABLE_FUNCTION,
    ),
    (
        "trino-qualified-function",
        TRINO,
        "SELECT system.query('drop table x') AS x",
        "through a catalog or schema",
    ),
    ("trino-catalog-function", TRINO, "select nessie.system.foo(1) as x", "through a catalog or schema"),
    (
        "trino-call",
        TRINO,
        "CALL system.sync_partition_metadata('raw', 'orders', 'FULL')",
        f"`CALL` {NOT_A_QUERY}",
    ),
    ("trino-show", TRINO, "SHOW CATALOGS", NOT_A_QUERY),
    ("trino-execute-immediate", TRINO, "EXECUTE IMMEDIATE 'drop table x'", NOT_A_QUERY),
    ("trino-metadata-table", TRINO, 'select * from nessie."raw"."raw_orders$snapshots"', UNKNOWN),
    ("trino-unknown-catalog", TRINO, "select * from postgres.public.users", UNKNOWN),
    ("trino-time-travel", TRINO, "select * from raw.raw_orders for version as of 1", "time travel"),
]


@pytest.mark.parametrize(
    ("dialect", "sql", "fragment"), [c[1:] for c in SQL_CASES], ids=[c[0] for c in SQL_CASES]
)
def test_hostile_sql_is_refused(
    known: KnownRelations, tmp_path: Path, dialect: str, sql: str, fragment: str
) -> None:
    spec = dataclasses.replace(VALID, sql=sql)
    assert_refused(attempt(spec, known, tmp_path, dialect), fragment, tmp_path)


def test_refusals_say_how_to_fix(known: KnownRelations) -> None:
    """Beyond naming the problem, every SQL refusal tells the user what to do next."""
    fixes = re.compile(
        r"\b(Remove|Write|Read|Fix|Flatten|Shorten|Delete|Close|Check|Compute|ask|Call|pick|rename)\b",
        re.IGNORECASE,
    )
    for case_id, dialect, sql, _ in SQL_CASES:
        for problem in validate_sql(sql, dialect=dialect, known=known).problems:
            assert fixes.search(problem.message), (case_id, problem.message)


# --- hostile metadata ----------------------------------------------------------------------

JINJA = "{{ run_query('drop table x') }}"
SPEC_CASES: list[tuple[str, dict[str, Any], str]] = [
    # (id, fields replaced in VALID, expected message fragment)
    ("name-path-traversal", {"name": "../x"}, "path separator"),
    ("name-deep-path", {"name": "dp_x/../../etc/passwd"}, "path separator"),
    ("name-backslash", {"name": "dp_x\\..\\y"}, "path separator"),
    ("name-space", {"name": "dp_a b"}, "contains a space"),
    ("name-plus-selector", {"name": "dp_orders+"}, "contains `+`"),
    ("name-star-selector", {"name": "dp_*"}, "contains `*`"),
    ("name-tag-selector", {"name": "tag:finance"}, "contains `:`"),
    ("name-at-selector", {"name": "@dp_orders"}, "contains `@`"),
    ("name-comma", {"name": "dp_a,dp_b"}, "contains `,`"),
    ("name-uppercase", {"name": "dp_Orders"}, "contains `O`"),
    ("name-no-prefix", {"name": "orders_summary"}, "does not start with `dp_`"),
    ("name-too-short", {"name": "dp_ab"}, "wrong length"),
    ("name-too-long", {"name": "dp_" + "a" * 80}, "the limit is 64"),
    ("name-jinja", {"name": "dp_{{x}}"}, "Jinja marker"),
    ("name-nul", {"name": "dp_orders\x00"}, "U+0000"),
    ("name-newline", {"name": "dp_orders\nx"}, "U+000A"),
    ("name-exists", {"name": "dp_existing"}, "already exists"),
    ("name-exists-other-case", {"name": "dp_EXISTING"}, "contains `E`"),
    ("description-jinja", {"description": f"Nice product {JINJA}"}, "description contains the Jinja marker"),
    ("description-jinja-block", {"description": "{% for x in y %}{% endfor %}"}, "Jinja marker `{%`"),
    ("description-jinja-comment", {"description": "{# secret #}"}, "Jinja marker `{#`"),
    ("description-too-long", {"description": "x" * 10_001}, "the limit is 10,000"),
    ("description-empty", {"description": "   "}, "description is empty"),
    ("description-control", {"description": "bell \x07"}, "U+0007"),
    ("type-jinja", {"data_product_type": JINJA}, "is not one of"),
    ("type-unknown", {"data_product_type": "SECRET_STUFF"}, "is not one of"),
    ("owner-jinja", {"owner": JINJA}, "owner contains the Jinja marker"),
    ("owner-shell", {"owner": "team; rm -rf /"}, "owner entry"),
    ("owner-empty", {"owner": ""}, "owner is empty"),
    ("consumer-jinja", {"consumers": ("marketing", "{{ x }}")}, "consumers contains the Jinja marker"),
    ("consumer-path", {"consumers": ("../../etc",)}, "consumers entry"),
    ("consumer-yaml", {"consumers": ("a: b",)}, "consumers entry"),
    ("frequency-jinja", {"update_frequency": JINJA}, "is not one of"),
    ("frequency-unknown", {"update_frequency": "secondly"}, "is not one of"),
    ("tag-jinja", {"tags": ("{%raw%}",)}, "tags contains the Jinja marker"),
    ("tag-selector", {"tags": ("tag:x",)}, "tags entry `tag:x`"),
    ("tag-plus", {"tags": ("+finance",)}, "tags entry `+finance`"),
    ("tag-space", {"tags": ("a b",)}, "tags entry `a b`"),
    ("tag-too-many", {"tags": tuple(f"t{i}" for i in range(30))}, "the limit is 20"),
    ("primary-key-jinja", {"primary_key": ("{{ x }}",)}, "primary_key contains the Jinja marker"),
    ("primary-key-injection", {"primary_key": ("id; drop table x",)}, "primary_key entry"),
    ("primary-key-empty", {"primary_key": ()}, "primary_key is empty"),
    ("primary-key-repeated", {"primary_key": ("customer_id", "customer_id")}, "twice"),
    ("materialization-jinja", {"materialization": JINJA}, "is not one of"),
    ("materialization-ephemeral", {"materialization": "ephemeral"}, "is not one of"),
    (
        "column-description-jinja",
        {"column_descriptions": {"customer_id": JINJA}},
        "column_descriptions.customer_id",
    ),
    ("column-description-bad-column", {"column_descriptions": {"a b": "x"}}, "not a valid column name"),
    ("not-text", {"description": 42}, "must be text"),
    ("description-lone-surrogate", {"description": "x\udfff"}, "U+DFFF, half of a UTF-16 surrogate"),
    ("description-noncharacter", {"description": "x\ufdd0"}, "U+FDD0, a Unicode noncharacter"),
    ("column-description-lone-surrogate", {"column_descriptions": {"customer_id": "x\udfff"}}, "U+DFFF"),
    (
        "column-description-key-newline",
        {"column_descriptions": {"customer_id\n": "x"}},
        "not a valid column name",
    ),
    ("owner-lone-surrogate", {"owner": "team\ud800"}, "U+D800"),
    ("tag-lone-surrogate", {"tags": ("a\udc00",)}, "U+DC00"),
    ("primary-key-trailing-newline", {"primary_key": ("customer_id\n",)}, "U+000A"),
    ("name-trailing-newline", {"name": "dp_orders\n"}, "U+000A"),
    ("name-130-characters", {"name": "dp_" + "revenue_" * 16}, "the limit is 64"),
]


@pytest.mark.parametrize(("fields", "fragment"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_hostile_metadata_is_refused(
    known: KnownRelations, tmp_path: Path, fields: dict[str, Any], fragment: str
) -> None:
    spec = dataclasses.replace(VALID, **fields)
    assert_refused(attempt(spec, known, tmp_path), fragment, tmp_path)


def test_problems_point_at_the_field(known: KnownRelations, tmp_path: Path) -> None:
    spec = dataclasses.replace(VALID, description="line one\nline {{ two }}")
    (problem,) = attempt(spec, known, tmp_path)
    assert (problem.field, problem.position) == ("description", (2, 6))


@pytest.mark.parametrize("name", ["../x", "dp_a b", "/etc/passwd", "dp_x/../../y", ""])
def test_writing_refuses_a_name_that_is_a_path(tmp_path: Path, name: str) -> None:
    """Even files built by hand (skipping render_product) cannot escape the models directory."""
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(ValueError, match="not a valid product name"):
        write_product(models, GeneratedFiles(name=name, sql_text="select 1", yml_text="version: 2"))
    assert list(tmp_path.rglob("*")) == [models]


def test_corpus_is_large_enough() -> None:
    assert len(SQL_CASES) + len(SPEC_CASES) >= 60


# --- property: nothing forbidden gets through ----------------------------------------------

# An independent oracle: node classes and function names that must never appear in accepted SQL,
# written down here rather than derived from the allowlist under test.
NEVER_NODES = (
    exp.Command, exp.Copy, exp.Attach, exp.Pragma, exp.Set, exp.Install, exp.Insert, exp.Delete,
    exp.Update, exp.Create, exp.Drop, exp.Alter, exp.Merge, exp.Into, exp.ReadCSV, exp.ReadParquet,
    exp.Placeholder, exp.Parameter, exp.Lateral, exp.Describe, exp.Use, exp.Kwarg,
)  # fmt: skip
NEVER_WORDS = re.compile(
    r"read_|glob|getenv|getvariable|query|system|sqlite|current_setting|copy|attach|pragma"
)

SELECT_ITEMS = [
    "order_id", "count(*) as n", "upper(status) as s", "getenv('x') as e", "read_text('x') as t",
    "(select max(order_id) from stg_orders) as m", "system.query('x') as q", "?", "row_number() over () as rn",
    "current_setting('a') as c", "{{ x }} as j", "order_id + 1 as p", "list_transform([1], x -> x) as l",
]  # fmt: skip
FROM_ITEMS = [
    "stg_orders", "main.stg_orders o", "ecom.raw_orders", "nessie.raw.raw_orders r", "read_csv_auto('x.csv')",
    "'x.parquet'", "secret_table", "(select * from stg_customers) s", "cte_a", "glob('*')", "query_table('t')",
    "stg_orders at (version => 1)", "evil.raw.raw_orders", '"main"."stg_orders"',
]  # fmt: skip
SUFFIXES = [
    "",
    "; drop table stg_orders",
    " -- ; copy x to 'y'",
    " /* */; attach 'x'",
    " into t",
    " for update",
]
PREFIXES = ["", "with cte_a as (select * from stg_orders) ", "with recursive cte_a as (select 1) ", "copy ("]


@st.composite
def sql_from_fragments(draw: st.DrawFn) -> str:
    items = draw(st.lists(st.sampled_from(SELECT_ITEMS), min_size=1, max_size=3))
    tables = draw(st.lists(st.sampled_from(FROM_ITEMS), min_size=1, max_size=2))
    query = f"select {', '.join(items)} from {', '.join(tables)}"
    if draw(st.booleans()):
        query += " union all " + query
    return draw(st.sampled_from(PREFIXES)) + query + draw(st.sampled_from(SUFFIXES))


def test_the_grammar_also_makes_acceptable_queries(known: KnownRelations) -> None:
    """Otherwise the property below would hold vacuously."""
    find(sql_from_fragments(), lambda sql: validate_sql(sql, dialect=DUCKDB, known=known).ok)


@settings(max_examples=250, deadline=None)
@given(sql=sql_from_fragments(), dialect=st.sampled_from([DUCKDB, TRINO]))
def test_accepted_sql_holds_nothing_forbidden(known: KnownRelations, sql: str, dialect: str) -> None:
    result = validate_sql(sql, dialect=dialect, known=known)
    if not result.ok:
        assert result.problems and result.rewritten_sql is None
        return
    assert result.rewritten_sql is not None and result.normalized_sql is not None
    # The only Jinja is ref()/source() with plain names.
    jinja_free = re.sub(
        r"\{\{ (ref|source)\('[A-Za-z_]\w*'(, '[A-Za-z_]\w*')?\) \}\}", "", result.rewritten_sql
    )
    assert not any(marker in jinja_free for marker in ("{{", "{%", "{#", "}}", "%}", "#}"))
    assert not NEVER_WORDS.search(result.normalized_sql.lower())
    (tree,) = sqlglot.parse(result.normalized_sql, read=dialect)
    assert tree is not None
    for node in tree.walk():
        assert not isinstance(node, NEVER_NODES), node
        if isinstance(node, exp.Anonymous):
            assert node.name.lower() in ALLOWED_ANONYMOUS_FUNCTIONS
        else:
            assert type(node) in ALLOWED_NODES, type(node)
        if isinstance(node, exp.Table):
            assert isinstance(node.this, exp.Identifier)
            assert node.name.lower() == "cte_a" or node.db in {"main", "raw"}, node.sql()
