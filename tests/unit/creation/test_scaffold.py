"""Generating a product's dbt files: golden files, YAML safety, atomic writes, orphans, discard.

Golden files live in tests/unit/creation/golden/. After an intended change of the output, regenerate
them with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/creation/test_scaffold.py` and review
the diff like any other code change.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.creation.scaffold import (
    GeneratedFiles,
    ProductExistsError,
    ScaffoldError,
    _check_readable_back,
    find_orphans,
    quarantined,
    remove_product,
    render_product,
    write_product,
)
from portal.creation.spec import NAME_RE, ProductSpec, name_from_display, validate_spec
from portal.creation.sqlguard import GuardResult, KnownRelations, validate_sql
from portal.errors import InvalidInput
from portal.project.artifacts import load_manifest
from portal.settings import ROOT

GOLDEN = Path(__file__).parent / "golden"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "jaffle-shop" / "manifest.json.gz"


@pytest.fixture(scope="module")
def known() -> KnownRelations:
    return KnownRelations.from_manifest(load_manifest(FIXTURE), catalogs=("nessie",))


SPEC = ProductSpec(
    name="dp_customer_orders",
    description="Orders per customer, one row each.",
    data_product_type="CUSTOMER_360",
    owner="customer-analytics-team",
    consumers=("Marketing", "finance@asgard.example"),
    update_frequency="daily",
    tags=("customer", "orders"),
    primary_key=("customer_id",),
    materialization="table",
    sql="select customer_id, count(*) as order_count, sum(order_total) as revenue from stg_orders group by 1",
    column_descriptions={"customer_id": "The customer.", "order_count": "Orders placed: all of them."},
)
COLUMNS = [("customer_id", "VARCHAR"), ("order_count", "BIGINT"), ("revenue", "DECIMAL(18,2)")]


def guarded(spec: ProductSpec, known: KnownRelations, dialect: str = "duckdb") -> GuardResult:
    guard = validate_sql(spec.sql, dialect=dialect, known=known)
    assert guard.ok, guard.problems
    return guard


def render(
    spec: ProductSpec,
    known: KnownRelations,
    columns: list[tuple[str, str]] | None = COLUMNS,
    dialect: str = "duckdb",
    **options: Any,
) -> GeneratedFiles:
    options = {"created_by": "local-user", "group": "customer_analytics", **options}
    return render_product(spec, guarded(spec, known, dialect), columns, **options)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it, then review it"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed: if intended, rerun with UPDATE_GOLDEN=1"
    )


# --- golden files --------------------------------------------------------------------------


class GoldenCase(NamedTuple):
    spec: ProductSpec
    columns: list[tuple[str, str]] | None
    dialect: str
    options: dict[str, Any]


GOLDEN_CASES = {
    "table_single_key": GoldenCase(SPEC, COLUMNS, "duckdb", {}),
    "incremental_composite_key": GoldenCase(
        dataclasses.replace(
            SPEC,
            name="dp_monthly_customer_revenue",
            description=(
                "# Monthly revenue per customer\n\nKey: `customer_id` + `order_month`.\n"
                "* Includes 'quotes', \"double quotes\", colons: and # hashes\n* Ünïcödé ✓\n"
            ),
            data_product_type="REVENUE_ANALYTICS",
            primary_key=("customer_id", "order_month"),
            materialization="incremental",
            update_frequency="monthly",
            tags=(),
            consumers=(),
            sql=(
                "select o.customer_id, date_trunc('month', o.ordered_at) as order_month, sum(o.order_total) as revenue,"
                " current_timestamp as data_product_updated_at from nessie.main.orders o group by 1, 2"
            ),
            column_descriptions={"order_month": "First day of the month.\nUTC."},
        ),
        [
            ("customer_id", "varchar"),
            ("order_month", "date"),
            ("revenue", "decimal(18,2)"),
            ("data_product_updated_at", "timestamp(6) with time zone"),
        ],
        "trino",
        {"group": "finance_analytics"},
    ),
    "view_without_types": GoldenCase(
        dataclasses.replace(
            SPEC,
            name="dp_customer_locations",
            materialization="view",
            sql="with c as (select * from ecom.raw_customers) select c.id as customer_id, l.location_name from c "
            "cross join stg_locations l",
            column_descriptions={},
        ),
        None,
        "duckdb",
        {"group": None},
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_generated_files_match_golden(known: KnownRelations, case: str) -> None:
    spec, columns, dialect, options = GOLDEN_CASES[case]
    files = render(spec, known, columns, dialect, **options)
    check_golden(f"{case}.sql", files.sql_text)
    check_golden(f"{case}.yml", files.yml_text)


def test_yaml_says_what_the_form_said(known: KnownRelations) -> None:
    model = yaml.safe_load(render(SPEC, known).yml_text)["models"][0]
    assert model["name"] == "dp_customer_orders"
    assert model["config"]["access"] == "public"
    assert model["config"]["contract"] == {"enforced": True}
    assert model["config"]["group"] == "customer_analytics"
    assert model["config"]["meta"] == {
        "data_product_type": "CUSTOMER_360",
        "owner": "customer-analytics-team",
        "consumers": ["Marketing", "finance@asgard.example"],
        "update_frequency": "daily",
        "tags": ["customer", "orders"],
        "created_by": "local-user",
    }
    columns = {c["name"]: c for c in model["columns"]}
    assert columns["customer_id"]["data_tests"] == ["unique", "not_null"]
    assert columns["revenue"] == {"name": "revenue", "data_type": "decimal(18,2)"}
    assert "data_tests" not in model  # a single key needs no combination test


def test_composite_key_uses_the_projects_combination_test(known: KnownRelations) -> None:
    spec = dataclasses.replace(SPEC, primary_key=("customer_id", "order_count"))
    model = yaml.safe_load(render(spec, known).yml_text)["models"][0]
    assert model["data_tests"] == [
        {
            "unique_combination_of_columns": {
                "arguments": {"combination_of_columns": ["customer_id", "order_count"]}
            }
        }
    ]
    assert {c["name"]: c.get("data_tests") for c in model["columns"]}["customer_id"] == ["not_null"]
    assert (ROOT / "dbt" / "tests" / "generic" / "unique_combination_of_columns.sql").exists()


def test_config_block_for_incremental(known: KnownRelations) -> None:
    spec = dataclasses.replace(
        SPEC, materialization="incremental", primary_key=("customer_id", "order_count")
    )
    sql = render(spec, known).sql_text
    assert "materialized='incremental'" in sql
    assert "unique_key=['customer_id', 'order_count']" in sql
    assert "on_schema_change='append_new_columns'" in sql


@settings(max_examples=150, deadline=None)
@given(description=st.text(min_size=1, max_size=300), note=st.text(max_size=100))
def test_any_accepted_text_round_trips_through_yaml(description: str, note: str) -> None:
    """Whatever the spec validation lets through comes back from YAML exactly, and as text."""
    spec = dataclasses.replace(SPEC, description=description, column_descriptions={"customer_id": note})
    if validate_spec(spec):
        return
    guard = GuardResult(ok=True, problems=[], rewritten_sql="SELECT 1 AS customer_id", upstream=[])
    files = render_product(spec, guard, [("customer_id", "bigint")], created_by="local-user")
    model = yaml.safe_load(files.yml_text)["models"][0]
    assert model["description"] == description
    assert model["columns"][0].get("description", "") == note


# --- render refuses --------------------------------------------------------------------------


def refused(call: Callable[[], object]) -> list[str]:
    with pytest.raises(ScaffoldError) as info:
        call()
    return [problem.message for problem in info.value.problems]


def test_refuses_sql_that_failed_validation(known: KnownRelations) -> None:
    guard = validate_sql("drop table x", dialect="duckdb", known=known)
    messages = refused(lambda: render_product(SPEC, guard, COLUMNS, created_by="u"))
    assert any("`DROP` statements" in m for m in messages)


def test_refuses_an_unvalidated_guard() -> None:
    messages = refused(
        lambda: render_product(SPEC, GuardResult(ok=False, problems=[]), COLUMNS, created_by="u")
    )
    assert any("Validate it first" in m for m in messages)


def test_refuses_an_invalid_spec(known: KnownRelations) -> None:
    spec = dataclasses.replace(SPEC, description="{{ evil }}")
    assert any("Jinja" in m for m in refused(lambda: render(spec, known)))


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        ([("customer_id", "varchar"), ("Order Count", "bigint")], "rename it with AS"),
        ([("customer_id", "varchar"), ("{{x}}", "bigint")], "rename it with AS"),
        ([("customer_id", "varchar"), ("customer_id", "bigint")], "two columns named `customer_id`"),
        ([("customer_id", "varchar); drop table x; --")], "cannot go into a contract"),
        ([("order_count", "bigint")], "primary key column `customer_id` is not among"),
        ([("customer_id", "varchar")], "given for `order_count`, which the query does not return"),
    ],
)
def test_refuses_columns_unfit_for_a_contract(
    known: KnownRelations, columns: list[tuple[str, str]], fragment: str
) -> None:
    assert any(fragment in m for m in refused(lambda: render(SPEC, known, columns)))


@pytest.mark.parametrize(
    ("option", "value"), [("created_by", "{{ x }}"), ("created_by", ""), ("group", "a-b"), ("group", "{{x}}")]
)
def test_refuses_unsafe_generator_options(known: KnownRelations, option: str, value: str) -> None:
    assert refused(lambda: render(SPEC, known, COLUMNS, "duckdb", **{option: value}))


# --- writing ---------------------------------------------------------------------------------


def files_for(name: str, marker: str = "a") -> GeneratedFiles:
    return GeneratedFiles(
        name=name, sql_text=f"select '{marker}' as x\n", yml_text=f"# {marker}\nversion: 2\n"
    )


def test_write_creates_both_files_and_nothing_else(tmp_path: Path) -> None:
    sql_path, yml_path = write_product(tmp_path, files_for("dp_orders"))
    assert sorted(tmp_path.iterdir()) == [sql_path, yml_path]
    assert sql_path.stat().st_mode & 0o777 == yml_path.stat().st_mode & 0o777 == 0o644
    assert sql_path.read_text() == "select 'a' as x\n" and yml_path.read_text() == "# a\nversion: 2\n"


def test_create_never_replaces_an_existing_product(tmp_path: Path) -> None:
    write_product(tmp_path, files_for("dp_orders", "first"))
    with pytest.raises(ProductExistsError, match="already exists"):
        write_product(tmp_path, files_for("dp_orders", "second"))
    assert (tmp_path / "dp_orders.sql").read_text() == "select 'first' as x\n"
    assert (tmp_path / "dp_orders.yml").read_text().startswith("# first")
    assert find_orphans(tmp_path) == []


def test_create_over_an_orphan_model_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "dp_orders.sql").write_text("old")
    with pytest.raises(ProductExistsError):
        write_product(tmp_path, files_for("dp_orders"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp_orders.sql"]


def test_overwrite_replaces_both(tmp_path: Path) -> None:
    write_product(tmp_path, files_for("dp_orders", "first"))
    write_product(tmp_path, files_for("dp_orders", "second"), overwrite=True)
    assert (tmp_path / "dp_orders.sql").read_text() == "select 'second' as x\n"
    assert (tmp_path / "dp_orders.yml").read_text().startswith("# second")
    assert len(list(tmp_path.iterdir())) == 2


def test_twenty_concurrent_creations_give_one_product(tmp_path: Path) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def create(i: int) -> None:
        barrier.wait()
        try:
            write_product(tmp_path, files_for("dp_orders", f"writer{i}"))
            outcomes.append(f"writer{i}")
        except ProductExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1 and len(outcomes) == 20
    # Both files come from the one winner, and no temporary files are left.
    assert (tmp_path / "dp_orders.sql").read_text() == f"select '{winners[0]}' as x\n"
    assert (tmp_path / "dp_orders.yml").read_text().startswith(f"# {winners[0]}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp_orders.sql", "dp_orders.yml"]


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from portal.creation import scaffold

    where = sys.argv[2]
    real_link, real_fsync = os.link, os.fsync
    fsyncs = []

    def link(src, dst):
        if where == "before-sql-commit" and str(dst).endswith(".sql"):
            os._exit(9)  # killed: no finally blocks, no cleanup
        real_link(src, dst)

    def fsync(fd):
        fsyncs.append(fd)
        if where == "while-writing-temps" and len(fsyncs) == 2:
            os._exit(9)
        real_fsync(fd)

    os.link, os.fsync = link, fsync
    files = scaffold.GeneratedFiles("dp_orders", "select 1 as x\\n" * 1000, "version: 2\\n")
    scaffold.write_product(Path(sys.argv[1]), files)
    """
)


@pytest.mark.parametrize("where", ["while-writing-temps", "before-sql-commit"])
def test_a_killed_write_leaves_whole_files_and_reports_orphans(tmp_path: Path, where: str) -> None:
    killed = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path), where], cwd=ROOT, check=False)
    assert killed.returncode == 9
    assert not (tmp_path / "dp_orders.sql").exists()  # the commit point was never reached
    if (tmp_path / "dp_orders.yml").exists():
        assert (tmp_path / "dp_orders.yml").read_text() == "version: 2\n"  # whole, never partial
    orphans = find_orphans(tmp_path)
    assert orphans and {o.path for o in orphans} == set(tmp_path.iterdir())
    assert all(o.path.name.endswith(".tmp") or o.path.name == "dp_orders.yml" for o in orphans)
    remove_product(tmp_path, "dp_orders")
    assert list(tmp_path.iterdir()) == []


def test_find_orphans_ignores_shared_files_and_complete_products(tmp_path: Path) -> None:
    write_product(tmp_path, files_for("dp_complete"))
    (tmp_path / "_groups.yml").write_text("version: 2\n")
    (tmp_path / "dp_lonely.sql").write_text("select 1")
    (orphan,) = find_orphans(tmp_path)
    assert orphan.path == tmp_path / "dp_lonely.sql"
    assert "no contract or tests" in orphan.reason
    assert find_orphans(tmp_path / "missing") == []


def test_remove_product_discards_files(tmp_path: Path) -> None:
    write_product(tmp_path, files_for("dp_orders"))
    write_product(tmp_path, files_for("dp_other"))
    removed = remove_product(tmp_path, "dp_orders")
    assert [p.name for p in removed] == ["dp_orders.sql", "dp_orders.yml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp_other.sql", "dp_other.yml"]
    assert remove_product(tmp_path, "dp_orders") == []
    with pytest.raises(ValueError, match="not a valid product name"):
        remove_product(tmp_path, "../dp_other")


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("display", "name"),
    [
        ("My Data Product", "dp_my_data_product"),
        ("  Café Crème: Sales / Region  ", "dp_cafe_creme_sales_region"),
        ("dp_already_prefixed", "dp_already_prefixed"),
        ("2024 Revenue", "dp_product_2024_revenue"),
        ("A", "dp_a_product"),
        ("../x", "dp_x_product"),
        ("x" * 100, "dp_" + "x" * 100),  # never cut to fit: validate_spec refuses it, saying the limit
    ],
)
def test_name_from_display(display: str, name: str) -> None:
    assert name_from_display(display) == name


def test_a_display_name_too_long_for_a_name_is_refused_not_cut() -> None:
    spec = ProductSpec(
        name=name_from_display("Revenue " * 16), description="d", data_product_type="CUSTOM", owner="o"
    )
    (problem,) = [p for p in validate_spec(spec, existing_names=()) if p.field == "name"]
    assert "130 characters long; the limit is 64" in problem.message


@given(st.text(max_size=120))
def test_name_from_display_always_makes_a_valid_name(display: str) -> None:
    try:
        name = name_from_display(display)
    except InvalidInput:
        assert not any(c.isascii() and c.isalnum() for c in display)
        return
    assert NAME_RE.match(name) or len(name) > 64  # a longer one is refused by validate_spec


def test_spec_is_frozen_with_tuples() -> None:
    spec = ProductSpec(
        name="dp_x_y", description="d", data_product_type="CUSTOM", owner="o", tags=["a"], consumers="team-a"
    )
    assert spec.tags == ("a",) and spec.consumers == ("team-a",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "dp_other"  # type: ignore[misc]


def test_configured_types_extend_the_builtin_ones() -> None:
    spec = dataclasses.replace(SPEC, data_product_type="SUPPLY_CHAIN")
    assert validate_spec(spec)
    assert validate_spec(spec, extra_types=["SUPPLY_CHAIN"]) == []
    assert validate_spec(spec, extra_types=["supply chain; drop"])  # malformed configured types are ignored


# --- the generated files work in dbt ---------------------------------------------------------


@pytest.mark.slow
def test_generated_product_builds_and_tests_in_dbt(tmp_path: Path) -> None:
    """A small DuckDB project with one source: dbt parses, builds and tests a generated
    incremental product with a composite key and an enforced contract, twice (the second run merges)."""
    from portal.project.dbt_runner import dbt_executable

    project = tmp_path / "project"
    (project / "models" / "data_products").mkdir(parents=True)
    (project / "tests" / "generic").mkdir(parents=True)
    generic = ROOT / "dbt" / "tests" / "generic" / "unique_combination_of_columns.sql"
    (project / "tests" / "generic" / generic.name).write_text(generic.read_text())
    (project / "dbt_project.yml").write_text(
        "name: scaffold_check\nversion: '1.0.0'\nconfig-version: 2\nprofile: scaffold_check\n"
    )
    (project / "profiles.yml").write_text(
        f"scaffold_check:\n  target: local\n  outputs:\n    local:\n      type: duckdb\n"
        f"      path: '{tmp_path / 'warehouse.duckdb'}'\n      schema: gold\n      threads: 1\n"
    )
    (project / "models" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: silver\n    schema: silver\n    tables:\n      - name: orders\n"
    )
    (project / "models" / "data_products" / "_groups.yml").write_text(
        "version: 2\ngroups:\n  - name: customer_analytics\n    owner: {name: Customer Analytics}\n"
    )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create schema silver")
        con.execute(
            "create table silver.orders as select i as order_id, 'c' || (i % 7) as customer_id, "
            "timestamp '2024-01-01' + i * interval 3 day as ordered_at, i * 1.5 as amount from range(100) t(i)"
        )

    def dbt(*command: str) -> None:
        argv = [dbt_executable(), *command, "--project-dir", str(project), "--profiles-dir", str(project)]
        run = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:]

    dbt("parse")
    known = KnownRelations.from_manifest(load_manifest(project / "target" / "manifest.json"))
    spec = dataclasses.replace(
        SPEC,
        name="dp_monthly_orders",
        materialization="incremental",
        primary_key=("customer_id", "order_month"),
        sql="select customer_id, cast(date_trunc('month', ordered_at) as date) as order_month, "
        "count(*) as order_count, cast(sum(amount) as decimal(18, 2)) as revenue, "
        "cast(current_timestamp as timestamp) as data_product_updated_at from silver.orders group by all",
        column_descriptions={},
    )
    guard = guarded(spec, known)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        columns = [(row[0], row[1]) for row in con.execute(f"describe {guard.normalized_sql}").fetchall()]
    files = render_product(spec, guard, columns, created_by="local-user", group="customer_analytics")
    write_product(project / "models" / "data_products", files)
    dbt("build")
    dbt("build")


# --- quarantine ----------------------------------------------------------------------------


def test_a_quarantined_product_is_pinned_to_the_audit_schema(known: KnownRelations) -> None:
    files = render_product(SPEC, guarded(SPEC, known), COLUMNS, created_by="ann")
    pinned = quarantined(files, "audit")
    assert pinned.yml_text == files.yml_text and pinned.name == files.name
    head, _, body = pinned.sql_text.partition(") }}\n")
    assert "{{ config(\n    schema='audit',\n    materialized='table'" in head
    assert "resubmit it in the portal" in head.split("{{ config(")[0]  # a comment outside the expression
    assert body == files.sql_text.partition(") }}\n")[2]  # the query itself is untouched
    with pytest.raises(ScaffoldError, match="not a schema name"):
        quarantined(files, "gold; drop")
    with pytest.raises(ScaffoldError, match="no config block"):
        quarantined(GeneratedFiles("dp_x", "select 1", files.yml_text), "audit")


@pytest.mark.parametrize("text", ["x\udfff", "x\ud800y"])
def test_files_dbt_could_not_read_back_are_never_written(text: str) -> None:
    """The last line of defence behind the text checks: a lone surrogate cannot reach a file."""
    files = GeneratedFiles(
        name="dp_x_y", sql_text="select 1 as x", yml_text=f"version: 2\nmodels:\n- name: '{text}'\n"
    )
    with pytest.raises(ScaffoldError, match="could not be written so that dbt reads them back"):
        _check_readable_back(files, {"version": 2, "models": [{"name": text}]})
    readable = GeneratedFiles(
        name="dp_x_y", sql_text="select 1 as x", yml_text="version: 2\nmodels:\n- name: x\n"
    )
    _check_readable_back(readable, {"version": 2, "models": [{"name": "x"}]})
    with pytest.raises(ScaffoldError, match="reads back differently"):
        _check_readable_back(readable, {"version": 2, "models": [{"name": "y"}]})
