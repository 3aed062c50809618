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
  paths the manifest lists.
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

from portal.lineage.index import ManifestIndex
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
        from dbt_common.events.contextvars import task_contextvars

        spec = parse_difference(select.split() if select else None, exclude.split() if exclude else None)
        with task_contextvars(project_root=str(self.project_root)):
            return sorted(self.selector.get_selected(spec))


def _materialise_files(raw: dict[str, Any], root: Path) -> None:
    for section in (
        "nodes",
        "sources",
        "exposures",
        "metrics",
        "semantic_models",
        "saved_queries",
        "unit_tests",
    ):
        for node in (raw.get(section) or {}).values():
            patch = node.get("patch_path") or ""
            for path in (node.get("original_file_path"), patch.partition("://")[2]):
                if path and ".." not in Path(path).parts:  # files outside the project cannot be globbed
                    (root / path).parent.mkdir(parents=True, exist_ok=True)
                    (root / path).touch()


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


MANIFESTS: dict[str, Callable[[], dict[str, Any]]] = {
    "jaffle-shop": lambda: _read(FIXTURES / "jaffle-shop" / "manifest.json.gz"),
    "jaffle_shop_duckdb": lambda: _read(FIXTURES / "jaffle_shop_duckdb" / "manifest.json.gz"),
    "governed": _governed_jaffle_shop,
    "calitp_warehouse": lambda: _read(FIXTURES / "calitp_warehouse" / "manifest.json.gz"),
    "starburst_dbt_demo": lambda: _read(FIXTURES / "starburst_dbt_demo" / "manifest.json.gz"),
    "dbt_dms_example": lambda: _read(FIXTURES / "dbt_dms_example" / "manifest.json.gz"),
    "spellbook_dex": lambda: _read(FIXTURES / "spellbook_dex" / "manifest.json.gz"),
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
