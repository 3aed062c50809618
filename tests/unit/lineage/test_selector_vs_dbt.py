"""Selection gives the same answer as dbt's own selector on the same manifest.

dbt-core is the oracle. `dbt ls` needs a whole project, which the fixtures do not have, so these
tests run dbt's library the way `dbt ls` does: the manifest read into dbt's `Manifest`, dbt's graph
linked by its `Linker`, and dbt's `ResourceTypeSelector`, limited to the resource types `dbt ls`
lists by default, asked for the spec `dbt.graph.cli.parse_difference` builds from --select and
--exclude.

Two repairs make the library see the manifest as `dbt ls` sees its project:
- Reading a manifest back, dbt turns generic tests into singular ones (the union type picks
  `SingularTest` and drops `test_metadata`), which breaks `test_name:` and `test_type:`. Those nodes
  are re-read as `GenericTestNode`, as dbt's parser makes them.
- `path:` globs files on disk under the project root, so the root is a tree of empty files at the
  paths the manifest lists for the root project, with each package's under dbt_packages/<package>/,
  as in a checkout (see `_materialise_files`).
Macros, docs and column lists are dropped before dbt reads the manifest, and dbt's cycle check is
skipped: selection uses neither, and together they are most of dbt's 25 s on spellbook_dex.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from portal.errors import Kind
from portal.lineage.errors import MalformedSelectorError
from portal.lineage.index import SECTIONS, ManifestIndex
from portal.lineage.selector import select

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures"
ROOT = Path(__file__).resolve().parents[3]

pytest.importorskip("dbt.graph")


class DbtOracle:
    """dbt's own answer to --select/--exclude on one manifest."""

    def __init__(self, raw: dict[str, Any], project_root: Path) -> None:
        from dbt.artifacts.schemas.manifest import WritableManifest
        from dbt.compilation import Linker
        from dbt.contracts.graph.manifest import Manifest
        from dbt.contracts.graph.nodes import GenericTestNode
        from dbt.flags import set_from_args
        from dbt.graph import Graph, ResourceTypeSelector
        from dbt.task.list import ListTask

        set_from_args(Namespace(), None)  # dbt reads its global flags (indirect selection) while parsing
        _materialise_files(raw, project_root)
        self.project_root = project_root
        slim = {**raw, "macros": {}, "docs": {}}
        for section in ("nodes", "sources"):
            slim[section] = {uid: {**node, "columns": {}} for uid, node in raw[section].items()}
        manifest = Manifest.from_writable_manifest(WritableManifest.upgrade_schema_version(slim))
        for uid, node in slim["nodes"].items():
            if node["resource_type"] == "test" and node.get("test_metadata"):
                manifest.nodes[uid] = GenericTestNode.from_dict(node)
        linker = Linker()
        # dbt parse already refused cycles in these projects; dbt's re-check (networkx find_cycle
        # over the whole graph) adds 10 s on spellbook_dex and no answer, so this linker skips it.
        linker.find_cycles = lambda: None  # type: ignore[method-assign]
        linker.link_graph(manifest)
        self.selector = ResourceTypeSelector(
            graph=Graph(linker.graph),
            manifest=manifest,
            previous_state=None,
            resource_types=list(ListTask.DEFAULT_RESOURCE_VALUES),
            include_empty_nodes=True,  # as dbt ls does
        )

    def select(self, select: str | None, exclude: str | None = None) -> list[str]:
        from dbt.graph.cli import parse_difference

        # As dbt's --select: click's MultiOption splits the value on single spaces.
        spec = parse_difference([select] if select else None, [exclude] if exclude else None)
        return self.selected(spec)

    def selected(self, spec: Any) -> list[str]:
        from dbt_common.events.contextvars import task_contextvars

        with task_contextvars(project_root=str(self.project_root)):
            return sorted(self.selector.get_selected(spec))

    def named(self, selectors: list[dict[str, Any]], name: str | None = None) -> list[str]:
        """What `dbt ls --selector NAME` lists, with `selectors` as the selectors.yml list; no name
        means the default selector, as `dbt ls` with neither --select nor --exclude."""
        from dbt.config.selectors import SelectorConfig

        config = SelectorConfig.selectors_from_dict({"selectors": copy.deepcopy(selectors)})
        name = name or next(n for n, entry in config.items() if entry["default"] is True)
        return self.selected(config[name]["definition"])


def _materialise_files(raw: dict[str, Any], root: Path) -> None:
    """Empty files where a checkout of the project has them: the root project's at their paths, an
    installed package's under dbt_packages/<package>/, where dbt's `path:` glob finds but never matches
    them (a package's paths are relative to the package). Old manifests name no project: every file is
    then the root's."""
    project = (raw.get("metadata") or {}).get("project_name")
    entries = [
        e for section in (*SECTIONS, "macros", "docs", "groups") for e in (raw.get(section) or {}).values()
    ]
    entries += [e for versions in (raw.get("disabled") or {}).values() for e in versions]
    (root / "dbt_project.yml").touch()
    for node in entries:
        package = node.get("package_name")
        base = root if not project or package == project else root / "dbt_packages" / package
        patch = node.get("patch_path") or ""
        for path in (node.get("original_file_path"), patch.partition("://")[2]):
            if path and ".." not in Path(path).parts:  # files outside the project cannot be globbed
                (base / path).parent.mkdir(parents=True, exist_ok=True)
                (base / path).touch()


def _read(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(gzip.decompress(path.read_bytes()))
    return parsed


def _governed_jaffle_shop() -> dict[str, Any]:
    """jaffle-shop with what the public fixtures lack: groups, access levels, versions, tags, an exposure."""
    raw = _read(FIXTURES / "jaffle-shop" / "manifest.json.gz")
    nodes = raw["nodes"]
    for name, owner in (("finance", "Finance"), ("marketing", "Marketing")):
        definition: dict[str, Any] = {
            "name": name, "resource_type": "group", "package_name": "jaffle_shop", "path": "groups.yml",
            "original_file_path": "models/groups.yml", "unique_id": f"group.jaffle_shop.{name}",
            "owner": {"name": owner, "email": f"{name}@example.com"}, "config": {"meta": {}}, "description": None,
        }  # fmt: skip
        raw["groups"][definition["unique_id"]] = definition
    for uid, group, access, tags in (
        ("model.jaffle_shop.orders", "finance", "public", ["nightly", "finance"]),
        ("model.jaffle_shop.order_items", "finance", "private", ["nightly"]),
        ("model.jaffle_shop.customers", "marketing", "public", ["weekly"]),
    ):
        nodes[uid].update(group=group, access=access, tags=tags)
        nodes[uid]["config"].update(group=group, access=access, tags=tags)
    raw["metrics"]["metric.jaffle_shop.revenue"]["config"]["group"] = "finance"
    raw["sources"]["source.jaffle_shop.ecom.raw_orders"]["tags"] = ["nightly"]
    base = nodes["model.jaffle_shop.customers"]
    for version in (1, 2):
        uid = f"model.jaffle_shop.dim_customers.v{version}"
        nodes[uid] = {
            **copy.deepcopy(base), "unique_id": uid, "name": "dim_customers", "alias": f"dim_customers_v{version}",
            "fqn": ["jaffle_shop", "marts", "dim_customers", f"v{version}"], "version": version, "latest_version": 2,
            "original_file_path": f"models/marts/dim_customers_v{version}.sql", "path": f"marts/dim_customers_v{version}.sql",
            "depends_on": {"macros": [], "nodes": ["model.jaffle_shop.customers"]}, "access": "public",
        }  # fmt: skip
    raw["exposures"]["exposure.jaffle_shop.weekly_report"] = {
        "name": "weekly_report", "resource_type": "exposure", "package_name": "jaffle_shop", "path": "exposures.yml",
        "original_file_path": "models/exposures.yml", "unique_id": "exposure.jaffle_shop.weekly_report",
        "fqn": ["jaffle_shop", "weekly_report"], "type": "dashboard", "owner": {"email": "bi@example.com", "name": "BI"},
        "description": "", "label": None, "maturity": None, "meta": {}, "tags": ["weekly"],
        "config": {"enabled": True, "tags": ["weekly"], "meta": {}}, "unrendered_config": {}, "url": None,
        "depends_on": {"macros": [], "nodes": ["model.jaffle_shop.dim_customers.v2", "metric.jaffle_shop.revenue"]},
        "refs": [], "sources": [], "metrics": [], "created_at": 0.0,
    }  # fmt: skip
    return raw


def _text_versions() -> dict[str, Any]:
    """dbt_project_evaluator_it with int_model_5's versions 1, 2 and "10b", the latest "10b": dbt orders
    versions as numbers only when both parse as numbers, so 2 comes after "10b" (as text) and is a
    prerelease, while 1 is old."""
    raw = _read(FIXTURES / "dbt_project_evaluator_it" / "manifest.json.gz")
    for version in (1, 2, 3):
        node = raw["nodes"][f"model.dbt_project_evaluator_integration_tests.int_model_5.v{version}"]
        node.update(version="10b" if version == 3 else version, latest_version="10b")
    return raw


MANIFESTS: dict[str, Callable[[], dict[str, Any]]] = {
    "jaffle-shop": lambda: _read(FIXTURES / "jaffle-shop" / "manifest.json.gz"),
    "jaffle_shop_duckdb": lambda: _read(FIXTURES / "jaffle_shop_duckdb" / "manifest.json.gz"),
    "governed": _governed_jaffle_shop,
    "calitp_warehouse": lambda: _read(FIXTURES / "calitp_warehouse" / "manifest.json.gz"),
    "starburst_dbt_demo": lambda: _read(FIXTURES / "starburst_dbt_demo" / "manifest.json.gz"),
    "dbt_dms_example": lambda: _read(FIXTURES / "dbt_dms_example" / "manifest.json.gz"),
    "spellbook_dex": lambda: _read(FIXTURES / "spellbook_dex" / "manifest.json.gz"),
    "dbt_project_evaluator_it": lambda: _read(FIXTURES / "dbt_project_evaluator_it" / "manifest.json.gz"),
    "tuva_it": lambda: _read(FIXTURES / "tuva_it" / "manifest.json.gz"),
    "mattermost_analytics": lambda: _read(FIXTURES / "mattermost_analytics" / "manifest.json.gz"),
    "text_versions": _text_versions,
}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[ManifestIndex, DbtOracle]]:
    """The portal's index and dbt's selector for a manifest, each built once per test module."""
    loaded: dict[str, tuple[ManifestIndex, DbtOracle]] = {}

    def get(name: str) -> tuple[ManifestIndex, DbtOracle]:
        if name not in loaded:
            index = ManifestIndex.from_raw(MANIFESTS[name]())
            loaded[name] = (index, DbtOracle(MANIFESTS[name](), tmp_path_factory.mktemp(name)))
        return loaded[name]

    return get


CASES = [
    # jaffle-shop: graph operators, methods, unions, intersections, exclusion
    ("jaffle-shop", "+customers", None),
    ("jaffle-shop", "customers+", None),
    ("jaffle-shop", "@orders", None),  # reaches the other parents of tests on orders' children
    ("jaffle-shop", "2+orders+1", None),
    ("jaffle-shop", "stg_* marts.customers", None),
    ("jaffle-shop", "staging", None),  # an fqn prefix: a folder
    ("jaffle-shop", "+customers,stg_*", None),
    ("jaffle-shop", "+customers", "staging"),
    ("jaffle-shop", "@stg_orders", "orders+"),
    ("jaffle-shop", None, "stg_orders"),  # dbt's default selection
    ("jaffle-shop", "path:models/staging path:models/marts/orders.yml", None),
    ("jaffle-shop", "path:models/**/stg_*.sql", None),
    ("jaffle-shop", "models/marts", None),  # a path by default
    ("jaffle-shop", "source:ecom.raw_orders+", None),
    ("jaffle-shop", "resource_type:semantic_model+", None),
    ("jaffle-shop", "+metric:revenue", None),
    ("jaffle-shop", "saved_query:*", None),
    ("jaffle-shop", "config.materialized:view,+customers", None),
    ("jaffle-shop", "file:stg_* orders.sql", None),
    ("jaffle-shop", "package:this", "resource_type:model"),
    ("jaffle-shop", "test_type:generic test_name:relationships", None),
    ("jaffle-shop", "unit_test:*", None),
    ("jaffle-shop", "+orders+,resource_type:seed", None),  # empty intersection
    ("jaffle_shop_duckdb", "+customers+", None),
    ("jaffle_shop_duckdb", "@stg_payments", "resource_type:seed"),
    # governance, which the public fixtures lack
    ("governed", "group:finance", None),
    ("governed", "+group:fin*", None),
    ("governed", "access:public", None),
    ("governed", "access:private+ access:protected,staging", None),
    ("governed", "dim_customers", None),
    ("governed", "dim_customers.v1 dim_customers_v2", None),
    ("governed", "version:latest version:old", None),
    ("governed", "tag:nightly", None),
    ("governed", "tag:nightly,access:public", None),
    ("governed", "+exposure:weekly_report", None),
    ("governed", "exposure:*", "group:marketing"),
    # the large and the odd
    ("calitp_warehouse", "+exposure:*", None),
    ("calitp_warehouse", "@dim_schedule_feeds", None),
    ("calitp_warehouse", "path:models/mart/gtfs", "config.materialized:view"),
    ("calitp_warehouse", "config.materialized:ephemeral+", None),
    ("calitp_warehouse", "tag:tides_product+", None),
    ("starburst_dbt_demo", "source:*+", None),
    ("dbt_dms_example", "config.on_schema_change:sync_all_columns", None),
    ("spellbook_dex", "+dex_trades+", None),
    ("spellbook_dex", "tag:uniswap,tag:ethereum tag:base", None),
    ("spellbook_dex", "1+dex_trades+2", "tag:sandwiches"),
    ("spellbook_dex", "path:models/trades", None),
    ("spellbook_dex", "*.uniswap.*", None),
    # path: resolves against the root project; a package's paths are relative to the package
    ("dbt_project_evaluator_it", "path:models/marts", None),  # the root's folder: the package's too
    ("dbt_project_evaluator_it", "path:models/marts/dag", None),  # only the package has it: nothing
    ("dbt_project_evaluator_it", "path:models/staging/graph path:models/**/dag", None),
    ("dbt_project_evaluator_it", "path:* path:models/marts/", "package:this"),
    ("dbt_project_evaluator_it", "path:dbt_packages/dbt_project_evaluator/models/marts/dag", None),
    ("dbt_project_evaluator_it", "path:**/*.yml,package:dbt_project_evaluator", None),
    ("tuva_it", "path:models/data_quality path:models/*", None),
    ("tuva_it", "path:models,package:the_tuva_project", "the_tuva_project.data_quality"),
    ("tuva_it", "path:seeds/value_sets", None),
    # versioned models: the name, name.vN, name_vN, version:
    ("dbt_project_evaluator_it", "int_model_5", None),
    ("dbt_project_evaluator_it", "int_model_5.v2 int_model_5_v3", None),
    ("dbt_project_evaluator_it", "marts.int_model_5.v1 +int_model_5.v2", None),
    ("dbt_project_evaluator_it", "version:latest version:prerelease", None),
    ("dbt_project_evaluator_it", "version:old+", "version:none"),
    ("dbt_project_evaluator_it", "*.v1 int_model_5* int_model_5.v* int_model_5_v?", None),
    ("dbt_project_evaluator_it", "fqn:int_model_5,access:public @int_model_5.v3", None),
    ("dbt_project_evaluator_it", "file:int_model_5_v1 int_model_5_v2.sql", None),
    ("dbt_project_evaluator_it", "dbt_project_evaluator_integration_tests.marts.int_model_5.v1", None),
    ("text_versions", "version:old", None),
    ("text_versions", "version:prerelease version:latest", None),
]


def _id(case: tuple[str, str | None, str | None]) -> str:
    name, chosen, excluded = case
    return f"{name}:{chosen or '(default)'}" + (f" --exclude {excluded}" if excluded else "")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_selection_matches_dbt(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]], case: tuple[str, str | None, str | None]
) -> None:
    name, chosen, excluded = case
    index, dbt = both(name)
    expected = dbt.select(chosen, excluded)
    assert list(select(index, chosen, excluded, with_tests=True).unique_ids) == expected
    without_tests = [uid for uid in expected if not uid.startswith(("test.", "unit_test."))]
    assert list(select(index, chosen, excluded).unique_ids) == without_tests


def test_the_governed_manifest_exercises_what_it_should(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> None:
    # Guard against the oracle cases above passing vacuously.
    _, dbt = both("governed")

    def resources(selector: str) -> list[str]:
        return [uid for uid in dbt.select(selector) if not uid.startswith(("test.", "unit_test."))]

    assert resources("group:finance") == [
        "metric.jaffle_shop.revenue", "model.jaffle_shop.order_items", "model.jaffle_shop.orders"
    ]  # fmt: skip
    assert resources("version:old") == ["model.jaffle_shop.dim_customers.v1"]
    assert "exposure.jaffle_shop.weekly_report" in dbt.select("+exposure:weekly_report")


def test_the_package_and_version_cases_exercise_what_they_should(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> None:
    # Guard against the path: and version: cases above passing vacuously.
    _, evaluator = both("dbt_project_evaluator_it")
    marts = evaluator.select("path:models/marts")
    assert any(uid.startswith("model.dbt_project_evaluator.") for uid in marts)  # the package's, too
    assert evaluator.select("path:models/marts/dag") == []
    assert evaluator.select("dbt_project_evaluator.marts.dag")  # which is where the package has it
    assert evaluator.select("path:models/staging/graph") == []
    assert evaluator.select("version:prerelease") == [
        "model.dbt_project_evaluator_integration_tests.int_model_5.v3"
    ]
    _, tuva = both("tuva_it")
    assert tuva.select("path:models/data_quality") == [] and tuva.select("the_tuva_project.data_quality")
    _, text_versions = both("text_versions")
    v = "model.dbt_project_evaluator_integration_tests.int_model_5.v"
    assert (text_versions.select("version:old"), text_versions.select("version:prerelease")) == (
        [v + "1"],
        [v + "2"],
    )


def test_a_path_only_a_package_holds_warns_how_to_select_it(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> None:
    index, _ = both("tuva_it")
    selection = select(index, "path:models/data_quality")
    assert selection.unique_ids == ()
    [warning] = selection.warnings
    assert "'models/data_quality' lies in package the_tuva_project only" in warning
    assert "against the root project (integration_tests)" in warning
    assert "e.g. 'the_tuva_project.data_quality'" in warning
    assert select(index, "the_tuva_project.data_quality").unique_ids  # the suggestion selects


# Parts dbt reads as names that match nothing (with a warning), which the portal refuses: the
# selector, the part refused first and the character it starts at.
MALFORMED = [
    ("customers &&& ((", "&&&", 11),
    ("customers,&", "&", 11),
    ("+customers (", "(", 12),
    ("a)b", "a)b", 1),
    ("orders++", "orders++", 1),
    ("+@orders", "+@orders", 1),
    ("1+@orders customers", "1+@orders", 1),
    ("orders+1+", "orders+1+", 1),
    (":orders", ":orders", 1),
    ("orders\tcustomers", "orders\tcustomers", 1),
    ("stg_orders|customers", "stg_orders|customers", 1),
    ("(tag:nightly tag:weekly)", "(tag:nightly", 1),
    ("fqn:cust;omers", "fqn:cust;omers", 1),
]


@pytest.mark.parametrize(("selector", "token", "position"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_parts_are_refused_where_dbt_could_select_nothing_with_them(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]], selector: str, token: str, position: int
) -> None:
    index, dbt = both("jaffle-shop")
    assert dbt.select(token) == [], "the portal refuses only parts that select nothing in dbt"
    with pytest.raises(MalformedSelectorError) as caught:
        select(index, selector)
    assert caught.value.kind == Kind.INVALID
    shown = token.encode("unicode_escape").decode("ascii")  # a tab is shown as \t
    assert f"malformed at character {position}: `{shown}`" in str(caught.value)
    assert (caught.value.problems[0].token, caught.value.problems[0].position) == (token, position)
    with pytest.raises(MalformedSelectorError):
        select(index, "customers", exclude=selector)


def test_punctuation_that_a_name_holds_is_a_name(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> None:
    # jaffle-shop's seeds live in `jaffle-data`, so `-` can select something there, and is kept.
    index, dbt = both("jaffle-shop")
    assert list(select(index, "jaffle-data").unique_ids) == dbt.select("jaffle-data") != []
    assert select(index, "stg-orders").warnings  # a near miss warns, as in dbt


def test_a_line_break_is_refused_as_dbt_refuses_it(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]],
) -> None:
    from dbt_common.exceptions import DbtRuntimeError

    index, dbt = both("jaffle-shop")
    with pytest.raises(DbtRuntimeError, match="Invalid selector spec"):
        dbt.select("customers\norders")
    with pytest.raises(MalformedSelectorError, match=r"character 1: `customers\\norders` holds a line break"):
        select(index, "customers\norders")


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "portal.cli.lineage", *args], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("with_tests", [False, True])
def test_the_cli_prints_exactly_the_selected_unique_ids(
    both: Callable[[str], tuple[ManifestIndex, DbtOracle]], tmp_path: Path, with_tests: bool
) -> None:
    _, dbt = both("jaffle-shop")
    manifest = FIXTURES / "jaffle-shop" / "manifest.json.gz"
    args = ["--manifest", str(manifest), "--select", "+customers", "source:ecom+", "--exclude", "stg_orders"]
    expected = dbt.select("+customers source:ecom+", "stg_orders")
    if not with_tests:
        expected = [uid for uid in expected if not uid.startswith(("test.", "unit_test."))]
    for _ in ("builds the cache", "reads the cache"):
        done = _cli(*args, *(["--with-tests"] if with_tests else []), cache=tmp_path)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == "".join(f"{uid}\n" for uid in expected)


def test_cli_errors_go_to_stderr_with_the_fix(tmp_path: Path) -> None:
    manifest = str(FIXTURES / "jaffle-shop" / "manifest.json.gz")
    bad = _cli("--manifest", manifest, "--select", "tga:nightly", cache=tmp_path)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "'tga:' in 'tga:nightly' is not a selector method. Did you mean 'tag:'?" in bad.stderr

    missing = _cli("--manifest", str(tmp_path / "nope.json"), "--select", "orders", cache=tmp_path)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "does not exist" in missing.stderr

    unmatched = _cli("--manifest", manifest, "--select", "custmers", cache=tmp_path)
    assert (unmatched.returncode, unmatched.stdout) == (0, "")  # as dbt ls: a warning, not an error
    assert "Did you mean customers" in unmatched.stderr


def test_cli_reads_the_configured_project_without_manifest(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_bytes(
        gzip.decompress((FIXTURES / "jaffle-shop" / "manifest.json.gz").read_bytes())
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PORTAL_DBT_TARGET_DIR": str(target)}
    done = subprocess.run([sys.executable, "-m", "portal.cli.lineage", "--select", "stg_orders"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "model.jaffle_shop.stg_orders\n")

    env["PORTAL_DBT_TARGET_DIR"] = str(tmp_path / "empty")
    done = subprocess.run([sys.executable, "-m", "portal.cli.lineage", "--select", "stg_orders"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Pass --manifest PATH" in done.stderr


DEMO_CASES = [
    ("+dp_customer_360", None),
    ("group:* access:public", None),
    ("path:models/data_products+", "tag:metrics"),
    ("@stg_orders", None),
]


@pytest.mark.slow
def test_selection_matches_real_dbt_ls_on_the_demo_project(tmp_path: Path) -> None:
    """The real `dbt ls` on the portal's own dbt project (copied, so nothing is written into it)."""
    import shutil

    from portal.lineage.index import load_index

    project = tmp_path / "project"
    shutil.copytree(ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    target = tmp_path / "target"
    env = {**os.environ, "PORTAL_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip
    dbt = str(Path(sys.executable).with_name("dbt"))

    def dbt_ls(chosen: str, excluded: str | None) -> list[str]:
        args = [dbt, "ls", "--project-dir", str(project), "--profiles-dir", str(project), "--target-path",
                str(target), "--log-path", str(tmp_path / "logs"), "--quiet", "--output", "json",
                "--output-keys", "unique_id", "--select", *chosen.split()]  # fmt: skip
        args += ["--exclude", *excluded.split()] if excluded else []
        done = subprocess.run(args, capture_output=True, text=True, cwd=project, env=env, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"the demo dbt project does not parse: {(done.stdout + done.stderr)[-500:]}")
        return sorted(
            json.loads(line)["unique_id"] for line in done.stdout.splitlines() if line.startswith("{")
        )

    for chosen, excluded in DEMO_CASES:
        expected = dbt_ls(chosen, excluded)
        index = load_index(target / "manifest.json", use_cache=False)
        assert expected, f"dbt ls selected nothing for {chosen!r}: the case proves nothing"
        assert list(select(index, chosen, excluded, with_tests=True).unique_ids) == expected, chosen
