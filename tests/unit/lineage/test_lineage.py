"""The lineage graph, selection errors, the index cache and impact analysis, on real manifests.

Whether selection gives dbt's answers is tested against dbt itself in test_selector_vs_dbt.py.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from portal.errors import Kind
from portal.lineage import selector as lineage
from portal.lineage.errors import MalformedSelectorError, SelectorError, UnknownNodeError
from portal.lineage.graph import Lineage, apply_run_results, build_graph, impact, neighbourhood, require_node
from portal.lineage.index import ManifestIndex, load_index
from portal.lineage.selector import select
from portal.lineage.selector_spec import parse_criterion
from portal.project.artifacts import ArtifactError, Manifest, load_manifest, load_run_results

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
JAFFLE = FIXTURES / "jaffle-shop" / "manifest.json.gz"
CALITP = FIXTURES / "calitp_warehouse" / "manifest.json.gz"


@pytest.fixture(scope="module")
def jaffle() -> Manifest:
    return load_manifest(JAFFLE)


@pytest.fixture(scope="module")
def jaffle_index(jaffle: Manifest) -> ManifestIndex:
    return ManifestIndex.from_manifest(jaffle)


@pytest.fixture(scope="module")
def calitp() -> Lineage:
    return Lineage(load_manifest(CALITP), data_products_path="models/mart")


def write_manifest(raw: dict, directory: Path) -> Path:
    path = directory / "manifest.json"
    path.write_text(json.dumps(raw))
    return path


# ---- the index ----


def test_index_holds_every_member_of_dbts_graph(jaffle_index: ManifestIndex) -> None:
    types = set(jaffle_index.resource_types)
    # Tests and unit tests are members because dbt's graph operators walk through them.
    assert {
        "model",
        "seed",
        "source",
        "test",
        "unit_test",
        "metric",
        "semantic_model",
        "saved_query",
    } <= types
    orders = jaffle_index.position("model.jaffle_shop.orders")
    parents = {jaffle_index.unique_ids[p] for p in jaffle_index.parents[orders]}
    assert parents == {"model.jaffle_shop.stg_orders", "model.jaffle_shop.order_items"}
    assert orders in jaffle_index.children[jaffle_index.position("model.jaffle_shop.stg_orders")]


def test_an_unknown_unique_id_suggests_close_ones(jaffle_index: ManifestIndex) -> None:
    with pytest.raises(UnknownNodeError) as caught:
        jaffle_index.position("model.jaffle_shop.ordres")
    assert "model.jaffle_shop.orders" in caught.value.suggestions
    assert "Did you mean" in str(caught.value)


# ---- selection: syntax and messages (answers are checked against dbt elsewhere) ----


def test_graph_operators_parse_like_dbt() -> None:
    spec = parse_criterion("2+tag:nightly+1")
    assert (spec.method, spec.value, spec.parents_depth, spec.children_depth) == ("tag", "nightly", 2, 1)
    assert parse_criterion("config.materialized:view").arguments == ("materialized",)
    assert parse_criterion("models/staging").method == "path"
    assert parse_criterion("stg_orders.sql").method == "file"
    assert parse_criterion("@orders").childrens_parents


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("tga:nightly", "'tga:' in 'tga:nightly' is not a selector method. Did you mean 'tag:'?"),
        ("@orders+", "combines '@' with a trailing '+'"),
        ("orders,,customers", "has an empty part around a comma"),
        ("resource_type:table", "'resource_type:table' is not a dbt resource type"),
        ("source:a.b.c.d", "'source:a.b.c.d' has too many dots"),
        ("config:view", "names no config key; write it like 'config.materialized:view'"),
        ("config.:view", "names no config key"),
        ("path:.", "names the project root itself"),
        ("path:./", "names the project root itself"),
        ("dp_customer_360 &&& ((", "malformed at character 17: `&&&` holds `&`"),
        ("orders,customers,a&b", "malformed at character 18: `a&b`"),
        ("orders++", "`+` selects parents before a name"),
        ("stg_orders\tstg_customers", "`stg_orders\\tstg_customers` holds a tab"),
        ("state:modified", "--state"),
        ("tag:", "has no value to select"),
        ("path:/abs/models", "write the path relative to the dbt project root"),
        ("test_type:unitt", "use generic, singular, unit or data"),
        (
            "9" * 5000 + "+orders",
            "asks for a depth of 5000 digits",
        ),  # int() of 4,300+ digits raised ValueError
        ("orders+" + "1" * 7, "write at most 6 digits"),
        (" ".join(["orders"] * 501), "more than 500 parts"),  # 10,000 parts took 5 s
        (",".join(["orders"] * 501), "more than 500 parts"),
    ],
)
def test_invalid_selectors_name_the_bad_part(
    jaffle_index: ManifestIndex, selector: str, message: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        select(jaffle_index, selector)
    assert message in str(caught.value)


def test_a_malformed_selector_names_every_bad_part(jaffle_index: ManifestIndex) -> None:
    with pytest.raises(MalformedSelectorError) as caught:
        select(jaffle_index, ["customers", "&&& (("], exclude=None)
    assert caught.value.kind == Kind.INVALID
    # A list of selectors reads as one, joined with spaces, as dbt chains --select's values.
    assert [(p.token, p.position) for p in caught.value.problems] == [("&&&", 11), ("((", 15)]
    assert "Also at character 15: `((`" in str(caught.value)


def test_a_selector_matching_nothing_warns_and_suggests(jaffle_index: ManifestIndex) -> None:
    selection = select(jaffle_index, "custmers orders")
    assert "model.jaffle_shop.orders" in selection.unique_ids
    assert len(selection.warnings) == 1
    assert "'custmers' does not match any enabled node" in selection.warnings[0]
    assert "customers" in selection.warnings[0]


def test_tests_are_listed_only_when_asked(jaffle_index: ManifestIndex) -> None:
    without = select(jaffle_index, "orders")
    with_tests = select(jaffle_index, "orders", with_tests=True)
    assert all(not uid.startswith(("test.", "unit_test.")) for uid in without)
    tests = set(with_tests.unique_ids) - set(without.unique_ids)
    assert tests and all(uid.startswith(("test.", "unit_test.")) for uid in tests)
    # Eager: the relationships test from order_items to orders joins through its `orders` parent.
    assert "test.jaffle_shop.relationships_order_items_order_id__order_id__ref_orders_.a799023ee8" in tests


def test_old_manifests_select_too() -> None:
    index = load_index(FIXTURES / "flipside_ethereum_models_2022-06-14" / "manifest.json.gz", use_cache=False)
    chosen = select(index, "+silver__blocks+").unique_ids
    assert "model.ethereum_models.silver__blocks" in chosen
    assert any(uid.startswith("source.") for uid in chosen)


# ---- the index cache ----


def test_the_cache_answers_without_reading_the_manifest_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "manifest.json.gz"
    manifest.write_bytes(JAFFLE.read_bytes())
    cache = tmp_path / "cache"
    first = select(load_index(manifest, directory=cache), "+customers", with_tests=True)
    assert len(list(cache.glob("*.pickle"))) == 1

    def no_reading(path: Path) -> dict:
        raise AssertionError(f"{path} was read although the cache is fresh")

    monkeypatch.setattr("portal.project.artifacts.read_json", no_reading)
    cached = load_index(manifest, directory=cache)
    assert select(cached, "+customers", with_tests=True) == first
    # Configs are the cache's lazy part: a config selector still works.
    assert "model.jaffle_shop.customers" in select(cached, "config.materialized:table").unique_ids


def test_a_changed_manifest_replaces_its_cache(tmp_path: Path) -> None:
    raw = json.loads(gzip.decompress(JAFFLE.read_bytes()))
    manifest = write_manifest(raw, tmp_path)
    cache = tmp_path / "cache"
    assert (
        "model.jaffle_shop.customers" in select(load_index(manifest, directory=cache), "customers").unique_ids
    )
    del raw["nodes"]["model.jaffle_shop.customers"]
    manifest.write_text(json.dumps(raw))
    os.utime(manifest, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert select(load_index(manifest, directory=cache), "customers").unique_ids == (
        "semantic_model.jaffle_shop.customers",
    )
    assert len(list(cache.glob("*.pickle"))) == 1


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_index(JAFFLE, directory=cache)
    for stale in cache.glob("*.pickle"):
        stale.write_bytes(b"not a pickle")
    assert len(load_index(JAFFLE, directory=cache)) > 0


def test_a_missing_manifest_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"does not exist\. Run `dbt parse`"):
        load_index(tmp_path / "manifest.json", directory=tmp_path)


# ---- the UI graph ----


def test_graph_nodes_carry_what_the_ui_shows(jaffle: Manifest) -> None:
    graph = build_graph(jaffle, data_products_path="models/marts")
    assert not [n for n, d in graph.nodes(data=True) if d["resource_type"] in {"test", "unit_test"}]
    customers = graph.nodes["model.jaffle_shop.customers"]
    assert customers["layer"] == "marts" and customers["folder"] == "models/marts"
    assert customers["is_data_product"] and customers["materialized"] == "table"
    assert customers["status"] is None
    assert {t["name"] for t in customers["tests"]} >= {"unique", "not_null", "accepted_values"}
    # A relationships test hangs on the model it is declared on, not on the one it refers to.
    relationships = [t["unique_id"] for t in graph.nodes["model.jaffle_shop.orders"]["tests"]]
    assert (
        "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_stg_customers_.918495ce16"
        in relationships
    )
    assert graph.nodes["source.jaffle_shop.ecom.raw_orders"]["label"] == "ecom.raw_orders"
    assert graph.has_edge("source.jaffle_shop.ecom.raw_orders", "model.jaffle_shop.stg_orders")
    assert graph.has_edge("metric.jaffle_shop.revenue", "saved_query.jaffle_shop.revenue_metrics")


def test_tests_can_be_graph_nodes(jaffle: Manifest) -> None:
    graph = build_graph(jaffle, data_products_path="models/marts", with_tests=True)
    assert graph.has_edge(
        "model.jaffle_shop.customers", "test.jaffle_shop.unique_customers_customer_id.c5af1ff4b1"
    )


def test_owner_and_product_type_come_from_meta_and_groups(tmp_path: Path) -> None:
    raw = json.loads(gzip.decompress(JAFFLE.read_bytes()))
    raw["groups"] = {"group.jaffle_shop.finance": {"name": "finance", "owner": {"name": "Finance team"}}}
    orders = raw["nodes"]["model.jaffle_shop.orders"]
    orders["config"]["group"] = orders["group"] = "finance"
    raw["nodes"]["model.jaffle_shop.stg_orders"]["config"]["meta"] = {
        "data_product_type": "source-aligned", "owner": "ops@example.com", "consumers": ["bi", "ml"]
    }  # fmt: skip
    graph = build_graph(
        load_manifest(write_manifest(raw, tmp_path)), data_products_path="models/data_products"
    )
    assert graph.nodes["model.jaffle_shop.orders"]["owner"] == "Finance team"
    assert not graph.nodes["model.jaffle_shop.orders"]["is_data_product"]
    stg_orders = graph.nodes["model.jaffle_shop.stg_orders"]
    assert stg_orders["is_data_product"] and stg_orders["data_product_type"] == "source-aligned"
    assert (stg_orders["owner"], stg_orders["consumers"]) == ("ops@example.com", ["bi", "ml"])


def test_run_results_fill_statuses(jaffle: Manifest) -> None:
    graph = build_graph(jaffle, data_products_path="models/marts")
    apply_run_results(graph, load_run_results(FIXTURES / "jaffle-shop" / "run_results.json.gz"))
    customers = graph.nodes["model.jaffle_shop.customers"]
    assert customers["status"] == "success"
    assert {t["status"] for t in customers["tests"]} == {"pass"}
    assert customers["failing_tests"] == 0


def test_neighbourhood_is_one_hop_by_default(jaffle: Manifest) -> None:
    graph = build_graph(jaffle, data_products_path="models/marts")
    assert neighbourhood(graph, "model.jaffle_shop.stg_orders") == {
        "model.jaffle_shop.stg_orders", "source.jaffle_shop.ecom.raw_orders", "model.jaffle_shop.orders",
        "model.jaffle_shop.order_items",
    }  # fmt: skip
    assert "model.jaffle_shop.customers" in neighbourhood(graph, "stg_orders", up=0, down=None)


def test_nodes_are_found_by_name_label_or_id(jaffle: Manifest) -> None:
    graph = build_graph(jaffle, data_products_path="models/marts")
    # A model wins over the semantic model of the same name.
    assert require_node(graph, "customers") == "model.jaffle_shop.customers"
    assert require_node(graph, "ecom.raw_orders") == "source.jaffle_shop.ecom.raw_orders"
    with pytest.raises(UnknownNodeError) as caught:
        require_node(graph, "custmers")
    assert "customers" in caught.value.suggestions


# ---- impact ----


def test_impact_lists_downstream_products_and_exposures_with_paths(calitp: Lineage) -> None:
    source = "source.calitp_warehouse.hqta_external_tables.stops"
    [hit] = calitp.impact(source)  # only the exposure reads this source
    assert (hit.kind, hit.name, hit.owner, hit.path) == (
        "exposure", "hqta_map_tiles", "eric.d@jarv.us", (source, "exposure.calitp_warehouse.hqta_map_tiles")
    )  # fmt: skip

    upstream = "model.calitp_warehouse.dim_shapes_arrays"
    hits = {h.unique_id: h for h in calitp.impact(upstream)}
    tile_server = hits["exposure.calitp_warehouse.calitp_map_tile_server"]
    assert tile_server.path[0] == upstream and tile_server.path[-1] == tile_server.unique_id
    for step, following in zip(tile_server.path, tile_server.path[1:], strict=False):
        assert calitp.graph.has_edge(step, following)
    product = hits["model.calitp_warehouse.dim_shapes_arrays_latest"]
    assert product.kind == "data_product" and product.distance == 1
    assert "calitp_map_tile_server" in product.consumers  # the exposure reading it
    distances = [h.distance for h in calitp.impact(upstream)]
    assert distances == sorted(distances)


def test_impact_of_an_unknown_node_suggests_names(calitp: Lineage) -> None:
    with pytest.raises(UnknownNodeError, match="Did you mean"):
        impact(calitp.graph, "dim_shapes_arays")


def test_lineage_selects_without_tests(calitp: Lineage) -> None:
    chosen = calitp.select("+exposure:hqta_map_tiles")
    assert set(chosen) == {
        "exposure.calitp_warehouse.hqta_map_tiles",
        "source.calitp_warehouse.hqta_external_tables.areas",
        "source.calitp_warehouse.hqta_external_tables.stops",
    }
    assert set(calitp.subgraph(chosen).edges) == {
        ("source.calitp_warehouse.hqta_external_tables.areas", "exposure.calitp_warehouse.hqta_map_tiles"),
        ("source.calitp_warehouse.hqta_external_tables.stops", "exposure.calitp_warehouse.hqta_map_tiles"),
    }


def test_the_selection_path_imports_nothing_heavy() -> None:
    # The CLI answers in well under a second because selection never imports these.
    import subprocess
    import sys

    code = (
        "import sys; from portal.cli import lineage as lineage_cli; "
        "from portal.lineage import errors, graph, index, selector, selector_methods, selector_spec, selectors_yml; "
        "heavy = {'networkx', 'sqlglot', 'dbt', 'pandas', 'plotly', 'streamlit'} & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(lineage.__file__).parents[2])  # fmt: skip
    assert out.stdout.strip() == "[]"
