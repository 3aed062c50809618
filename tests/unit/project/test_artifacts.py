"""The typed artifact reader on real dbt artifacts (../shared/fixtures) and on bad files."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import orjson
import pytest

from portal.project.artifacts import (
    ArtifactError,
    Manifest,
    load_artifacts,
    load_catalog,
    load_manifest,
    load_run_results,
)

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
FLIPSIDE = "flipside_ethereum_models_2022-06-14"


@pytest.fixture(scope="module")
def manifests() -> dict[str, Manifest]:
    """Every fixture's manifest, read once (spellbook_dex alone takes about two seconds)."""
    return {folder: load_manifest(FIXTURES / folder / "manifest.json.gz") for folder in FOLDERS}


def counts(manifest: Manifest) -> Counter[str]:
    found = Counter(node.resource_type for node in manifest.nodes.values())
    found["source"] = len(manifest.sources)
    return found


# Schema and dbt version of each fixture, from the fixtures' README.
VERSIONS = {folder: (12, "1.11.16") for folder in FOLDERS}
VERSIONS[FLIPSIDE] = (4, "1.0.3")
VERSIONS["dbt_artifacts_v8"] = (8, "1.4.9")


def test_fixture_folders_are_all_covered() -> None:
    assert set(FOLDERS) == {
        "calitp_warehouse",
        "dbt_artifacts_v8",
        "dbt_dms_example",
        "dbt_project_evaluator_it",
        FLIPSIDE,
        "jaffle-shop",
        "jaffle_shop_duckdb",
        "mattermost_analytics",
        "ol_data_platform",
        "spellbook_dex",
        "starburst_dbt_demo",
        "tuva_it",
    }


# Numbers from the fixtures' README.
@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("jaffle_shop_duckdb", {"model": 5, "seed": 3, "test": 20}),
        ("jaffle-shop", {"model": 13, "seed": 6, "test": 27, "source": 6}),
        ("spellbook_dex", {"model": 1900, "test": 3160, "seed": 497, "source": 9807}),
        ("calitp_warehouse", {"model": 610, "test": 218, "seed": 16, "source": 218}),
    ],
)
def test_manifest_counts_match_the_readme(
    manifests: dict[str, Manifest], folder: str, expected: dict[str, int]
) -> None:
    found = counts(manifests[folder])
    assert {kind: found[kind] for kind in expected} == expected
    assert len(manifests[folder].models()) == expected["model"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_fixture_reads(manifests: dict[str, Manifest], folder: str) -> None:
    manifest = manifests[folder]
    assert (manifest.schema_version, manifest.dbt_version) == VERSIONS[folder]
    assert manifest.project_name
    assert manifest.models()
    for node in manifest.models():
        assert node.unique_id == f"model.{node.package_name}.{node.name}" or ".v" in node.unique_id
        assert node.original_file_path.endswith((".sql", ".py"))
        assert node.raw_code


def test_readme_features_are_visible(manifests: dict[str, Manifest]) -> None:
    calitp = manifests["calitp_warehouse"]
    assert len(calitp.raw["exposures"]) == 5
    assert sum(1 for n in calitp.models() if n.meta) > 10  # "many meta blocks"
    starburst = manifests["starburst_dbt_demo"]
    assert {s.database for s in starburst.sources.values()} >= {"webshop", "website"}
    dms = {n.name: n for n in manifests["dbt_dms_example"].models()}
    hard_delete = dms["stg_products_hard_delete"]
    assert hard_delete.materialized == "incremental"
    assert hard_delete.config["incremental_strategy"] == "merge"
    assert hard_delete.config["on_schema_change"] == "sync_all_columns"
    assert hard_delete.config["properties"]["partitioning"] == "ARRAY['month(last_update_time)']"
    assert len(hard_delete.config["post-hook"]) == 3
    jaffle = manifests["jaffle-shop"]
    assert len(jaffle.raw["semantic_models"]) == 6
    assert len(jaffle.raw["metrics"]) == 19
    assert len(jaffle.raw["unit_tests"]) == 3


@pytest.mark.parametrize("folder", FOLDERS)
def test_load_artifacts_reads_what_the_folder_holds(folder: str) -> None:
    artifacts = load_artifacts(FIXTURES / folder)
    assert (artifacts.run_results is not None) == (FIXTURES / folder / "run_results.json.gz").exists()
    assert (artifacts.catalog is not None) == (FIXTURES / folder / "catalog.json.gz").exists()


# -- tests attached to what they test --------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_generic_tests_are_attached_to_a_node_they_depend_on(
    manifests: dict[str, Manifest], folder: str
) -> None:
    manifest = manifests[folder]
    for node in manifest.nodes.values():
        if node.test is None:
            continue
        if node.test.name == "singular":
            assert node.test.attached_node is None
            continue
        assert node.test.attached_node in node.depends_on, node.unique_id
        assert manifest.get(node.test.attached_node) is not None


def test_tests_of_a_model(manifests: dict[str, Manifest]) -> None:
    manifest = manifests["jaffle_shop_duckdb"]
    tests = {t.unique_id: t.test for t in manifest.tests_of("model.jaffle_shop.orders")}
    assert len(tests) == 10  # 7 not_null, unique, accepted_values, relationships
    not_null = tests["test.jaffle_shop.not_null_orders_order_id.cf6c17daed"]
    assert not_null is not None
    assert (not_null.name, not_null.column_name) == ("not_null", "order_id")
    # A relationships test belongs to the model it is declared on, not to the one it points at.
    relationship = tests[
        "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2"
    ]
    assert relationship is not None
    assert relationship.name == "relationships"
    assert relationship.kwargs["to"] == "ref('customers')"


def test_old_v4_manifest_tests_are_attached(manifests: dict[str, Manifest]) -> None:
    manifest = manifests[FLIPSIDE]
    tests = [n for n in manifest.nodes.values() if n.test is not None]
    assert len(tests) == 601
    # v4 has no attached_node at all: every generic test is recovered from its `model` argument.
    assert sum(1 for t in tests if t.test and t.test.attached_node) == 600
    blocks = manifest.tests_of("model.ethereum_models.silver__blocks")
    assert blocks
    assert len(blocks) == 38
    not_null = [t.test for t in blocks if t.test and t.test.name == "not_null"]
    assert len(not_null) == 18
    assert "BLOCK_NUMBER" in {t.column_name for t in not_null}
    assert {t.test.name for t in blocks if t.test} >= {"unique_combination_of_columns", "sequence_gaps"}


def test_tests_on_sources_are_attached(manifests: dict[str, Manifest]) -> None:
    # dbt leaves attached_node empty for tests on sources; the reader recovers it.
    manifest = manifests["spellbook_dex"]
    tests = manifest.tests_of("source.dex.ton.blocks")
    assert {t.test.column_name for t in tests if t.test} >= {"block_time", "block_date"}
    unattached = [n for n in manifest.nodes.values() if n.test and not n.test.attached_node]
    assert [n.test.name for n in unattached if n.test] == ["singular"]


# -- run_results and catalog -----------------------------------------------------------------


def test_run_results_of_a_build() -> None:
    results = load_run_results(FIXTURES / "jaffle_shop_duckdb" / "run_results.json.gz")
    assert results.schema_version == 6
    assert results.invocation_id == "ff6459af-2d31-4279-99d6-227d2a378773"
    assert results.command == "build"
    assert results.selector is None
    assert results.elapsed_time == pytest.approx(1.429, abs=0.001)
    assert Counter(r.status for r in results.results) == {"pass": 20, "success": 8}
    orders = next(r for r in results.results if r.unique_id == "model.jaffle_shop.orders")
    assert orders.started_at == "2026-11-27T05:46:12.596748Z"  # compile start
    assert orders.completed_at == "2026-11-27T05:46:12.789920Z"  # execute end
    assert orders.failures is None
    test = next(r for r in results.results if r.unique_id.startswith("test."))
    assert test.failures == 0


def test_run_results_with_unit_tests_and_saved_queries() -> None:
    results = load_run_results(FIXTURES / "jaffle-shop" / "run_results.json.gz")
    assert len(results.results) == 52
    kinds = Counter(r.unique_id.split(".")[0] for r in results.results)
    assert kinds == {"model": 13, "seed": 6, "test": 27, "unit_test": 3, "saved_query": 3}
    assert {r.status for r in results.results if r.unique_id.startswith("saved_query.")} == {"no-op"}


@pytest.mark.parametrize("folder", ["jaffle_shop_duckdb", "jaffle-shop"])
def test_run_results_of_docs_generate(folder: str) -> None:
    results = load_run_results(FIXTURES / folder / "run_results.docs_generate.json.gz")
    assert results.command == "generate"
    assert {r.status for r in results.results} == {"success"}


def test_catalog_column_types() -> None:
    catalog = load_catalog(FIXTURES / "jaffle_shop_duckdb" / "catalog.json.gz")
    customers = catalog.get("model.jaffle_shop.customers")
    assert customers is not None
    assert (customers.schema, customers.name, customers.table_type) == ("main", "customers", "BASE TABLE")
    assert customers.column_type("customer_id") == "INTEGER"
    assert customers.column_type("customer_lifetime_value") == "DOUBLE"
    assert customers.column_type("first_order") == "DATE"
    assert customers.column_type("no_such_column") is None
    assert customers.row_count is None  # DuckDB reports no statistics
    assert list(customers.columns) == [
        c.name for c in sorted(customers.columns.values(), key=lambda c: c.index)
    ]


def test_snowflake_catalog_types_and_row_counts() -> None:
    catalog = load_catalog(FIXTURES / FLIPSIDE / "catalog.json.gz")
    pools = catalog.get("model.ethereum_models.silver_dex__pools")
    assert pools is not None
    assert pools.column_type("creation_block") == "NUMBER"  # Snowflake upper-cases names
    assert pools.column_type("CREATION_TIME") == "TIMESTAMP_NTZ"
    assert pools.row_count == 88342
    assert any(uid.startswith("source.") for uid in catalog.tables)


# -- refusals: each names the file, what was found and what is supported (or the fix) ---------


def write_artifact(path: Path, kind: str, version: int, **extra: object) -> Path:
    metadata = {"dbt_schema_version": f"https://schemas.getdbt.com/dbt/{kind}/v{version}.json"}
    path.write_bytes(orjson.dumps({"metadata": metadata, "nodes": {}, "sources": {}, **extra}))
    return path


@pytest.mark.parametrize("version", [3, 13])
def test_unsupported_manifest_versions_are_refused(tmp_path: Path, version: int) -> None:
    path = write_artifact(tmp_path / "manifest.json", "manifest", version)
    with pytest.raises(ArtifactError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"manifest v{version};" in message
    assert "manifest v4 to v12" in message


def test_unsupported_version_in_a_gzip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json.gz"
    path.write_bytes(gzip.compress(write_artifact(tmp_path / "plain.json", "manifest", 13).read_bytes()))
    with pytest.raises(ArtifactError, match=r"manifest v13; the portal reads manifest v4 to v12"):
        load_manifest(path)


def test_run_results_given_as_a_manifest_is_refused() -> None:
    path = FIXTURES / "jaffle_shop_duckdb" / "run_results.json.gz"
    with pytest.raises(ArtifactError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert str(path) in message
    assert "run-results v6" in message
    assert "manifest v4 to v12" in message


def test_manifest_given_as_run_results_is_refused() -> None:
    path = FIXTURES / "jaffle_shop_duckdb" / "manifest.json.gz"
    with pytest.raises(
        ArtifactError, match=r"manifest v12 artifact, not a run-results.*run-results v4 to v6"
    ):
        load_run_results(path)


def test_unsupported_catalog_version_is_refused(tmp_path: Path) -> None:
    path = write_artifact(tmp_path / "catalog.json", "catalog", 2)
    with pytest.raises(ArtifactError, match=r"catalog v2; the portal reads catalog v1 to v1"):
        load_catalog(path)


def test_missing_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(b'{"metadata": {}, "nodes": {}}')
    with pytest.raises(ArtifactError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value)
    assert "no recognisable dbt_schema_version (found '')" in str(caught.value)
    assert "manifest v4 to v12" in str(caught.value)


def test_missing_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    with pytest.raises(ArtifactError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert "dbt build" in str(caught.value)


def test_target_dir_without_manifest_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as caught:
        load_artifacts(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert "PORTAL_DBT_TARGET_DIR" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("manifest.json", b'{"metadata": {', "is not valid JSON"),
        ("manifest.json", b"[1, 2]", "holds a JSON list, not a dbt artifact object"),
        ("manifest.json.gz", b"not gzip at all", "is not a readable gzip file"),
        ("manifest.json.gz", gzip.compress(b'{"metadata": {}}')[:12], "is not a readable gzip file"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ArtifactError) as caught:
        load_manifest(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)
    assert "Re-run dbt" in str(caught.value) or "not a dbt artifact" in str(caught.value)


def test_disabled_nodes_are_not_part_of_the_project(manifests: dict[str, Manifest]) -> None:
    # tuva_it keeps 16 tests of disabled models in `nodes` with enabled: false; dbt runs none.
    raw_nodes = manifests["tuva_it"].raw["nodes"]
    disabled = {uid for uid, n in raw_nodes.items() if n["config"].get("enabled") is False}
    assert len(disabled) == 16
    assert not disabled & set(manifests["tuva_it"].nodes)
    assert len(manifests["tuva_it"].nodes) == len(raw_nodes) - 16
