"""Sync of real dbt artifacts (../shared/fixtures) into a real SQLite catalog database."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, MetaData, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_db import AuditEvent, DataProduct, NodeResult, Run, open_catalog
from portal.project.artifacts import (
    Artifacts,
    Manifest,
    load_artifacts,
    load_manifest,
    load_run_results,
    read_json,
)
from portal.project.sync import SyncReport, is_data_product, run_status, sync

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
# For each fixture, a folder that makes some of its models data products (none has a
# models/data_products folder; spellbook_dex keeps the default and has none).
PRODUCTS_PATH = {
    "calitp_warehouse": "models/mart",
    "dbt_dms_example": "models",
    "flipside_ethereum_models_2022-06-14": "models",
    "jaffle-shop": "models/marts",
    "jaffle_shop_duckdb": "models",
    "spellbook_dex": "models/data_products",
    "starburst_dbt_demo": "models",
}
NOTHING = SyncReport(0, 0, 0, 0, 0)
JAFFLE = FIXTURES / "jaffle_shop_duckdb"
JAFFLE_INVOCATION = "ff6459af-2d31-4279-99d6-227d2a378773"  # of its run_results.json


# -- helpers, also used by tests/integration/test_postgres.py --------------------------------


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    with sessions() as session:
        bind = session.get_bind()
    assert isinstance(bind, Engine)
    return bind


def dump_tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the database (alembic_version too), in primary key order."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: [
                tuple(row) for row in connection.execute(table.select().order_by(*table.primary_key.columns))
            ]
            for name, table in metadata.tables.items()
        }


def run_sync(sessions: sessionmaker[Session], artifacts: Artifacts, **options: Any) -> SyncReport:
    with sessions.begin() as session:
        return sync(session, artifacts, **options)


def assert_sync_idempotent(
    sessions: sessionmaker[Session], artifacts: Artifacts, **options: Any
) -> SyncReport:
    """Sync twice: the second reports nothing and leaves every row as it was. Returns the first report."""
    first = run_sync(sessions, artifacts, **options)
    before = dump_tables(engine_of(sessions))
    assert run_sync(sessions, artifacts, **options) == NOTHING
    assert dump_tables(engine_of(sessions)) == before
    return first


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    factory = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield factory
    engine_of(factory).dispose()


@pytest.fixture(scope="module")
def jaffle() -> Artifacts:
    return load_artifacts(JAFFLE)


def edited_manifest(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], name: str = "manifest"
) -> Manifest:
    """jaffle_shop_duckdb's manifest after `edit` changed its JSON, written to and read from tmp_path."""
    raw = read_json(JAFFLE / "manifest.json.gz")
    edit(raw)
    path = tmp_path / f"{name}.json"
    path.write_bytes(orjson.dumps(raw))
    return load_manifest(path)


def set_meta(raw: dict[str, Any], model: str, **meta: Any) -> None:
    node = raw["nodes"][f"model.jaffle_shop.{model}"]
    node["meta"].update(meta)
    node["config"]["meta"].update(meta)


def only_manifest(manifest: Manifest) -> Artifacts:
    return Artifacts(manifest=manifest, run_results=None, catalog=None)


def products(session: Session) -> dict[str, DataProduct]:
    return {p.name: p for p in session.scalars(select(DataProduct))}


def audit(session: Session) -> list[tuple[str, str]]:
    return [(e.action, e.object_id) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


# -- whole fixtures -----------------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(PRODUCTS_PATH))
def test_sync_twice_changes_nothing(sessions: sessionmaker[Session], folder: str) -> None:
    artifacts = load_artifacts(FIXTURES / folder)
    first = assert_sync_idempotent(sessions, artifacts, data_products_path=PRODUCTS_PATH[folder])
    expected_products = sum(is_data_product(n, PRODUCTS_PATH[folder]) for n in artifacts.manifest.models())
    assert first.products_added == expected_products
    assert (folder == "spellbook_dex") == (expected_products == 0)
    assert first.runs_added == (artifacts.run_results is not None)
    # Re-reading the files gives the same answer too.
    assert (
        run_sync(sessions, load_artifacts(FIXTURES / folder), data_products_path=PRODUCTS_PATH[folder])
        == NOTHING
    )


def test_sync_jaffle_shop_duckdb(sessions: sessionmaker[Session], jaffle: Artifacts) -> None:
    report = run_sync(sessions, jaffle, data_products_path="models", actor="ci")
    assert report == SyncReport(products_added=5, products_updated=0, products_removed=0, runs_added=1,
                                node_results_added=28)  # fmt: skip
    with sessions() as session:
        rows = products(session)
        assert set(rows) == {"customers", "orders", "stg_customers", "stg_orders", "stg_payments"}
        customers = rows["customers"]
        assert customers.unique_id == "model.jaffle_shop.customers"
        assert customers.description.startswith("This table has basic information about a customer")
        assert (customers.data_product_type, customers.owner, customers.consumers, customers.tags) == (
            "CUSTOM",
            None,
            [],
            [],
        )
        assert (customers.materialization, customers.access, customers.group_name) == (
            "table",
            "protected",
            None,
        )
        assert customers.relation_name == '"jaffle_shop"."main"."customers"'
        assert (customers.status, customers.origin, customers.created_by) == ("published", "dbt", "ci")
        assert customers.created_at == customers.updated_at
        assert customers.created_at.tzinfo == UTC
        assert customers.row_count is None  # DuckDB's catalog has no statistics

        run = session.scalars(select(Run)).one()
        assert (run.invocation_id, run.command, run.status, run.triggered_by) == (
            JAFFLE_INVOCATION,
            "build",
            "success",
            "ci",
        )
        assert run.finished_at == datetime(2026, 11, 27, 5, 46, 13, 212827, tzinfo=UTC)
        assert run.elapsed_s is not None and run.elapsed_s == pytest.approx(1.429, abs=0.001)
        assert run.started_at == run.finished_at - timedelta(seconds=run.elapsed_s)
        assert (run.selector, run.target, run.product_id) == (None, None, None)

        results = {r.unique_id: r for r in session.scalars(select(NodeResult))}
        assert Counter(r.resource_type for r in results.values()) == {"test": 20, "model": 5, "seed": 3}
        test = results["test.jaffle_shop.not_null_orders_order_id.cf6c17daed"]
        assert (test.attached_node, test.test_name, test.column_name) == (
            "model.jaffle_shop.orders",
            "not_null",
            "order_id",
        )
        assert (test.status, test.failures) == ("pass", 0)
        assert test.completed_at == datetime(2026, 11, 27, 5, 46, 13, 183304, tzinfo=UTC)
        # Every test is attached; nothing else is.
        assert all((r.attached_node is not None) == (r.resource_type == "test") for r in results.values())
        model = results["model.jaffle_shop.orders"]
        assert (model.status, model.message, model.test_name) == ("success", "OK", None)

        assert Counter(audit(session)) == Counter(("product.registered", name) for name in rows)


def test_sync_jaffle_shop_with_unit_tests_and_saved_queries(sessions: sessionmaker[Session]) -> None:
    report = run_sync(sessions, load_artifacts(FIXTURES / "jaffle-shop"), data_products_path="models/marts")
    assert (report.products_added, report.runs_added, report.node_results_added) == (7, 1, 52)
    with sessions() as session:
        assert "stg_orders" not in products(session)
        assert session.scalars(select(Run.status)).one() == "success"  # the saved queries' no-op is neutral
        results = {r.unique_id: r for r in session.scalars(select(NodeResult))}
        unit = results["unit_test.jaffle_shop.order_items.test_supply_costs_sum_correctly"]
        assert (unit.resource_type, unit.attached_node) == ("unit_test", "model.jaffle_shop.order_items")
        assert results["saved_query.jaffle_shop.revenue_metrics"].status == "no-op"
        relationship = results[
            "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_stg_customers_.918495ce16"
        ]
        assert (relationship.attached_node, relationship.test_name) == (
            "model.jaffle_shop.orders",
            "relationships",
        )


# -- data products ------------------------------------------------------------------------------


def test_meta_and_group_owner(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        set_meta(
            raw,
            "customers",
            data_product_type="CONSUMER_ALIGNED",
            owner="alice@example.com",
            consumers=["finance", "marketing"],
            update_frequency="daily",
            tags="pii",  # one tag written as a plain string
        )
        set_meta(raw, "orders", data_product_type="SOURCE_ALIGNED")  # no owner: the group's is used
        raw["nodes"]["model.jaffle_shop.orders"]["group"] = "sales"
        raw["groups"] = {
            "group.jaffle_shop.sales": {
                "name": "sales",
                "owner": {"name": "Sales team", "email": "s@example.com"},
            }
        }

    # The default data_products_path matches no file here: meta.data_product_type alone selects.
    report = run_sync(sessions, only_manifest(edited_manifest(tmp_path, edit)))
    assert report.products_added == 2
    with sessions() as session:
        rows = products(session)
        customers, orders = rows["customers"], rows["orders"]
        assert customers.data_product_type == "CONSUMER_ALIGNED"
        assert customers.owner == "alice@example.com"
        assert customers.consumers == ["finance", "marketing"]
        assert customers.update_frequency == "daily"
        assert customers.tags == ["pii"]
        assert (orders.data_product_type, orders.owner, orders.group_name) == (
            "SOURCE_ALIGNED",
            "Sales team",
            "sales",
        )


def test_only_real_changes_touch_updated_at_and_the_audit(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    base = only_manifest(edited_manifest(tmp_path, lambda raw: None, "base"))
    run_sync(sessions, base, data_products_path="models")
    with sessions() as session:
        before = {name: p.updated_at for name, p in products(session).items()}

    def describe(raw: dict[str, Any]) -> None:
        raw["nodes"]["model.jaffle_shop.customers"]["description"] = "One row per customer."
        set_meta(raw, "customers", consumers=["finance"])

    changed = only_manifest(edited_manifest(tmp_path, describe, "changed"))
    assert run_sync(sessions, changed, data_products_path="models") == SyncReport(0, 1, 0, 0, 0)
    assert run_sync(sessions, changed, data_products_path="models") == NOTHING
    with sessions() as session:
        after = {name: p.updated_at for name, p in products(session).items()}
        assert {name for name in after if after[name] != before[name]} == {"customers"}
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "product.updated")).one()
        assert event.object_id == "customers"
        assert event.at == after["customers"]
        assert set(event.detail) == {"description", "consumers"}
        assert event.detail["consumers"] == {"from": [], "to": ["finance"]}
        assert event.detail["description"]["to"] == "One row per customer."


def test_products_gone_from_the_manifest_are_marked_removed(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    base = only_manifest(edited_manifest(tmp_path, lambda raw: None, "base"))
    without_orders = only_manifest(
        edited_manifest(tmp_path, lambda raw: raw["nodes"].pop("model.jaffle_shop.orders"), "without")
    )
    run_sync(sessions, base, data_products_path="models")
    with sessions.begin() as session:
        # A product made in the portal and not yet in any manifest: not sync's to remove.
        session.add(DataProduct(name="draft_one", status="draft", origin="portal", created_by="alice"))

    assert run_sync(sessions, without_orders, data_products_path="models") == SyncReport(0, 0, 1, 0, 0)
    assert run_sync(sessions, without_orders, data_products_path="models") == NOTHING
    with sessions() as session:
        rows = products(session)
        assert rows["orders"].status == "removed"  # kept, with its history
        assert rows["draft_one"].status == "draft"
        assert audit(session)[-1] == ("product.removed", "orders")

    # Back in the manifest: published again.
    assert run_sync(sessions, base, data_products_path="models") == SyncReport(0, 1, 0, 0, 0)
    with sessions() as session:
        assert products(session)["orders"].status == "published"
        assert audit(session)[-1] == ("product.restored", "orders")


def test_deprecation(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    run_sync(
        sessions,
        only_manifest(edited_manifest(tmp_path, lambda raw: None, "base")),
        data_products_path="models",
    )
    with sessions.begin() as session:
        products(session)["customers"].status = "deprecated"  # a person deprecated it in the portal

    def deprecate_orders(raw: dict[str, Any]) -> None:
        set_meta(raw, "orders", deprecated=True)
        new = dict(
            raw["nodes"]["model.jaffle_shop.stg_orders"],
            name="new_one",
            unique_id="model.jaffle_shop.new_one",
        )
        new["meta"] = {"deprecated": "true"}  # YAML people write it as a string too
        new["config"] = dict(new["config"], meta=new["meta"])
        raw["nodes"][new["unique_id"]] = new

    report = run_sync(
        sessions,
        only_manifest(edited_manifest(tmp_path, deprecate_orders, "deprecated")),
        data_products_path="models",
    )
    assert report == SyncReport(products_added=1, products_updated=1, products_removed=0, runs_added=0,
                                node_results_added=0)  # fmt: skip
    with sessions() as session:
        rows = products(session)
        assert rows["customers"].status == "deprecated"  # kept, though dbt does not say so
        assert rows["orders"].status == "deprecated"  # meta.deprecated: true
        assert rows["new_one"].status == "deprecated"  # registered deprecated
        assert ("product.deprecated", "orders") in audit(session)


def test_portal_products_keep_their_origin_and_status(
    sessions: sessionmaker[Session], jaffle: Artifacts
) -> None:
    with sessions.begin() as session:
        session.add(DataProduct(name="customers", status="building", origin="portal", created_by="alice"))
    report = run_sync(sessions, only_manifest(jaffle.manifest), data_products_path="models")
    assert (report.products_added, report.products_updated) == (4, 1)
    with sessions() as session:
        customers = products(session)["customers"]
        assert (customers.origin, customers.status, customers.created_by) == ("portal", "building", "alice")
        assert customers.unique_id == "model.jaffle_shop.customers"  # dbt's facts filled in
        assert customers.materialization == "table"


def test_latest_model_version_is_the_product(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    def versions(raw: dict[str, Any]) -> None:
        v1 = raw["nodes"].pop("model.jaffle_shop.customers")
        for version in (1, 2):
            uid = f"model.jaffle_shop.customers.v{version}"
            raw["nodes"][uid] = dict(v1, unique_id=uid, version=version, latest_version=2)

    run_sync(sessions, only_manifest(edited_manifest(tmp_path, versions)), data_products_path="models")
    with sessions() as session:
        assert products(session)["customers"].unique_id == "model.jaffle_shop.customers.v2"


def test_row_counts_come_from_the_catalog_unless_newer_ones_exist(sessions: sessionmaker[Session]) -> None:
    flipside = load_artifacts(FIXTURES / "flipside_ethereum_models_2022-06-14")
    run_sync(sessions, flipside, data_products_path="models")
    measured = datetime(2022, 6, 14, 21, 32, 13, 190618, tzinfo=UTC)  # the catalog's generated_at
    with sessions.begin() as session:
        pools = products(session)["silver_dex__pools"]
        assert (pools.row_count, pools.row_count_measured_at) == (88342, measured)
        assert pools.updated_at == pools.created_at
        later = datetime.now(UTC)
        pools.row_count, pools.row_count_measured_at = 90000, later  # e.g. the portal counted since
    assert run_sync(sessions, flipside, data_products_path="models") == NOTHING
    with sessions() as session:
        assert products(session)["silver_dex__pools"].row_count == 90000


# -- runs -----------------------------------------------------------------------------------------


def test_portal_run_gets_its_node_results(sessions: sessionmaker[Session], jaffle: Artifacts) -> None:
    started = datetime(2026, 11, 27, 5, 46, 8, tzinfo=UTC)
    with sessions.begin() as session:
        run = Run(
            invocation_id=JAFFLE_INVOCATION,
            command="build",
            selector="customers+",
            status="running",
            triggered_by="alice",
            started_at=started,
        )
        # One result the builder already recorded while dbt was running.
        run.node_results.append(
            NodeResult(unique_id="seed.jaffle_shop.raw_orders", resource_type="seed", status="success",
                       execution_time=0.2)
        )  # fmt: skip
        session.add(run)

    report = run_sync(sessions, jaffle, data_products_path="models/none")
    assert (report.runs_added, report.node_results_added) == (0, 27)
    assert run_sync(sessions, jaffle, data_products_path="models/none") == NOTHING
    with sessions() as session:
        run = session.scalars(select(Run)).one()
        # The builder's own fields are the builder's.
        assert (run.status, run.triggered_by, run.selector, run.started_at) == (
            "running",
            "alice",
            "customers+",
            started,
        )
        assert len(run.node_results) == 28
        kept = next(r for r in run.node_results if r.unique_id == "seed.jaffle_shop.raw_orders")
        assert kept.execution_time == 0.2


def test_run_results_without_a_manifest_match_are_still_recorded(
    sessions: sessionmaker[Session], jaffle: Artifacts
) -> None:
    # run_results from a node the manifest no longer has (renamed since): its type comes from its id.
    assert jaffle.run_results is not None
    result = dataclasses.replace(jaffle.run_results.results[0], unique_id="model.jaffle_shop.renamed")
    run_results = dataclasses.replace(jaffle.run_results, invocation_id="other", results=[result])
    run_sync(sessions, dataclasses.replace(jaffle, run_results=run_results), data_products_path="models/none")
    with sessions() as session:
        row = session.scalars(select(NodeResult)).one()
        assert (row.unique_id, row.resource_type, row.attached_node) == (
            "model.jaffle_shop.renamed",
            "model",
            None,
        )


def test_compile_only_invocations_are_not_runs(sessions: sessionmaker[Session], jaffle: Artifacts) -> None:
    # `dbt docs generate` reports every test as "success" (compiled): not a test result.
    docs = load_run_results(JAFFLE / "run_results.docs_generate.json.gz")
    assert docs.command == "generate"
    run_sync(sessions, jaffle, data_products_path="models")
    report = run_sync(sessions, dataclasses.replace(jaffle, run_results=docs), data_products_path="models")
    assert report == NOTHING
    with sessions() as session:
        assert session.scalars(select(Run.command)).all() == ["build"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "success"),
        (["success", "pass", "warn", "skipped", "no-op"], "success"),
        (["success", "fail", "skipped"], "partial"),
        (["pass", "error"], "partial"),
        (["error", "skipped"], "error"),
        (["runtime error"], "error"),
    ],
)
def test_run_status(statuses: list[str], expected: str) -> None:
    assert run_status(statuses) == expected


# -- what is a data product -----------------------------------------------------------------------


def test_is_data_product(jaffle: Artifacts) -> None:
    manifest = jaffle.manifest
    orders = manifest.nodes["model.jaffle_shop.orders"]  # models/orders.sql

    def at(path: str, **meta: Any) -> Any:
        return dataclasses.replace(orders, original_file_path=path, meta=meta)

    assert is_data_product(at("models/data_products/orders.sql"))
    assert is_data_product(at("models/data_products/finance/orders.sql"))
    assert is_data_product(at("models\\data_products\\orders.sql"))  # written on Windows
    assert not is_data_product(at("models/data_products_old/orders.sql"))
    assert not is_data_product(at("models/orders.sql"))
    assert is_data_product(at("models/orders.sql", data_product_type="CUSTOM"))
    assert is_data_product(orders, "models/") and is_data_product(orders, "models")
    assert is_data_product(orders, "models/orders.sql")  # one file
    seed = manifest.nodes["seed.jaffle_shop.raw_orders"]
    assert not is_data_product(seed, "seeds") and not is_data_product(
        dataclasses.replace(seed, meta={"data_product_type": "X"})
    )
