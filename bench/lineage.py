"""Lineage speed on spellbook_dex and on a synthetic 5,000-model project, as ratios measured in this run.

    .venv/bin/python bench/lineage.py [--skip-dbt]

Prints, per manifest: cold load (manifest read + graph build) against a bare `json.load` of the
same file; warm `+dex_trades+` selection; the `python -m portal lineage` command end to end; dbt's
own selection (its library, as `dbt ls` runs it, in a separate process) and how many times slower it
is; layout time for the default view and a 1,000-node selection, with the Lineage page's plotly figure; and
the process RSS. Medians of a few repetitions; the machine is shared, so expect some noise.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.lineage.graph import Lineage, build_graph, neighbourhood  # noqa: E402
from portal.lineage.index import ManifestIndex, load_index, read_manifest_json  # noqa: E402
from portal.lineage.layout import layered_layout  # noqa: E402
from portal.lineage.selector import select  # noqa: E402
from portal.project.artifacts import load_manifest  # noqa: E402

SPELLBOOK = ROOT.parent / "shared" / "fixtures" / "spellbook_dex" / "manifest.json.gz"


def median_time(run: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rss_mb() -> tuple[float, float]:
    """Current and peak resident memory of this process, in MB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_json_load(path: Path) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        json.load(handle)


def lineage_read(path: Path) -> None:
    """What the lineage needs from a file: read, index, graph."""
    raw = read_manifest_json(path)
    build_graph(raw, ManifestIndex.from_raw(raw), data_products_path="models/data_products")


def portal_read(path: Path) -> None:
    """What the portal does: the typed manifest, then its lineage graph."""
    Lineage(load_manifest(path), data_products_path="models/data_products").graph  # noqa: B018


def cli_seconds(path: Path, selector: str, cache: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "portal", "lineage", "--manifest", str(path), "--select", selector],
        check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env={"XDG_CACHE_HOME": str(cache), "PATH": ""},
    )  # fmt: skip
    return time.perf_counter() - start


DBT_SELECT = """
import gzip, json, sys, time
start = time.perf_counter()
from argparse import Namespace
from dbt.flags import set_from_args
set_from_args(Namespace(), None)
from dbt.artifacts.schemas.manifest import WritableManifest
from dbt.compilation import Linker
from dbt.contracts.graph.manifest import Manifest
from dbt.graph import Graph, ResourceTypeSelector
from dbt.graph.cli import parse_difference
from dbt.task.list import ListTask
raw = json.loads(gzip.decompress(open(sys.argv[1], "rb").read()))
manifest = Manifest.from_writable_manifest(WritableManifest.upgrade_schema_version(raw))
linker = Linker()
linker.link_graph(manifest)
selector = ResourceTypeSelector(Graph(linker.graph), manifest, None, list(ListTask.DEFAULT_RESOURCE_VALUES), True)
chosen = selector.get_selected(parse_difference([sys.argv[2]], None))
print(time.perf_counter() - start, len(chosen))
"""


def dbt_seconds(path: Path, selector: str) -> float:
    """dbt's library selecting as `dbt ls` does (import, manifest, graph, selection), minus project parsing."""
    done = subprocess.run([sys.executable, "-c", DBT_SELECT, str(path), selector],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return float(done.stdout.split()[-2])


def plotly_figure(graph: Any, layout: Any) -> Any:
    """The figure the Lineage page draws (portal.ui.components.lineage_figure), so the bench times the real one."""
    from portal.ui.components.lineage_figure import lineage_figure

    return lineage_figure(graph, layout)


def upstream_sample(graph: Any, start: str, size: int) -> list[str]:
    """`size` nodes around `start`, nearest first: a connected selection of a given size."""
    seen, frontier = [start], [start]
    while frontier and len(seen) < size:
        following = []
        for node in frontier:
            for other in [*graph.predecessors(node), *graph.successors(node)]:
                if other not in seen and len(seen) < size:
                    seen.append(other)
                    following.append(other)
        frontier = following
    return seen


def synthetic_manifest(directory: Path, models: int = 5000, sources: int = 500, seed: int = 7) -> Path:
    """A layered project: sources, then models in 10 layers reading 1-4 earlier nodes, 2 tests each."""
    rng = random.Random(seed)
    raw: dict[str, Any] = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                     "dbt_version": "1.11.16", "project_name": "synthetic", "adapter_type": "duckdb"},
        "nodes": {}, "sources": {}, "exposures": {}, "metrics": {}, "groups": {}, "semantic_models": {},
        "saved_queries": {}, "unit_tests": {}, "functions": {},
    }  # fmt: skip
    earlier: list[str] = []
    for i in range(sources):
        uid = f"source.synthetic.raw_{i % 20}.table_{i}"
        raw["sources"][uid] = {
            "unique_id": uid, "resource_type": "source", "name": f"table_{i}", "source_name": f"raw_{i % 20}",
            "package_name": "synthetic", "fqn": ["synthetic", "staging", f"raw_{i % 20}", f"table_{i}"],
            "original_file_path": "models/staging/_sources.yml", "config": {"enabled": True}, "tags": [],
            "description": "", "columns": {}, "relation_name": f'"raw"."table_{i}"',
        }  # fmt: skip
        earlier.append(uid)
    layers = ["staging", "intermediate", "marts", "data_products"]
    for i in range(models):
        layer = layers[min(i * len(layers) // models, len(layers) - 1)]
        name = "dex_trades" if i == models // 2 else f"model_{i}"
        uid = f"model.synthetic.{name}"
        parents = rng.sample(earlier[-800:], rng.randint(1, 4))
        folder = f"{layer}/domain_{i % 25}"
        raw["nodes"][uid] = {
            "unique_id": uid, "resource_type": "model", "name": name, "package_name": "synthetic",
            "fqn": ["synthetic", *folder.split("/"), name], "original_file_path": f"models/{folder}/{name}.sql",
            "patch_path": None, "depends_on": {"nodes": parents, "macros": []}, "tags": [layer],
            "config": {"enabled": True, "materialized": "table", "tags": [layer], "meta": {}},
            "description": f"Model {i}", "columns": {}, "access": "protected", "version": None,
            "relation_name": f'"main"."{name}"',
        }  # fmt: skip
        for test in ("unique", "not_null"):
            tid = f"test.synthetic.{test}_{name}_id.{i:010x}"
            raw["nodes"][tid] = {
                "unique_id": tid, "resource_type": "test", "name": f"{test}_{name}_id", "package_name": "synthetic",
                "fqn": ["synthetic", *folder.split("/"), f"{test}_{name}_id"], "attached_node": uid,
                "original_file_path": f"models/{folder}/schema.yml", "depends_on": {"nodes": [uid], "macros": []},
                "config": {"enabled": True, "materialized": "test", "severity": "ERROR"}, "tags": [],
                "test_metadata": {"name": test, "kwargs": {"column_name": "id"}}, "column_name": "id",
            }  # fmt: skip
        earlier.append(uid)
    path = directory / "manifest.json"
    path.write_text(json.dumps(raw))
    return path


def bench(label: str, path: Path, focus: str, cache: Path, with_dbt: bool) -> None:
    print(f"\n== {label}: {path.name}, {path.stat().st_size / 1e6:.1f} MB on disk")
    baseline = median_time(lambda: bare_json_load(path))
    gc.disable()
    baseline_no_gc = median_time(lambda: bare_json_load(path))
    gc.enable()
    print(
        f"bare json.load                           {baseline:7.3f} s   (with gc paused: {baseline_no_gc:.3f} s)"
    )
    lineage_cold = median_time(lambda: lineage_read(path))
    print(
        f"cold load: read + index + graph          {lineage_cold:7.3f} s   {lineage_cold / baseline:5.2f}x json.load"
    )
    portal_cold = median_time(lambda: portal_read(path), repeat=2)
    print(
        f"cold load: load_manifest + Lineage graph {portal_cold:7.3f} s   {portal_cold / baseline:5.2f}x json.load"
    )

    manifest = load_manifest(path)
    lineage = Lineage(manifest, data_products_path="models/data_products")
    graph = lineage.graph
    current, peak = rss_mb()
    print(f"RSS with the manifest and graph loaded   {current:7.0f} MB  (peak {peak:.0f} MB)")

    selector = f"+{focus}+"
    chosen = select(lineage.index, selector)
    warm = median_time(lambda: select(lineage.index, selector), repeat=5)
    print(f"warm selection {selector:<25} {warm * 1000:7.1f} ms  ({len(chosen)} nodes without tests)")

    cache_build = median_time(lambda: load_index(path, use_cache=False), repeat=1)
    cli_first = cli_seconds(path, selector, cache / label)
    cli_warm = statistics.median(cli_seconds(path, selector, cache / label) for _ in range(3))
    print(
        f"python -m portal lineage, cache build    {cli_first:7.3f} s   (index from the file alone: {cache_build:.3f} s)"
    )
    print(
        f"python -m portal lineage, cached         {cli_warm:7.3f} s   end to end, interpreter start included"
    )
    if with_dbt:
        dbt = dbt_seconds(path, selector)
        print(f"dbt's selector (library, as dbt ls)      {dbt:7.3f} s   {dbt / cli_warm:5.0f}x the cached CLI, "
              f"{dbt / cli_first:4.0f}x its first call, {dbt / (lineage_cold + warm):4.0f}x cold load + select")  # fmt: skip

    focus_id = lineage.graph.has_node(f"model.{lineage.index.project_name}.{focus}") and (
        f"model.{lineage.index.project_name}.{focus}"
    )
    assert focus_id, f"{focus} is not a model of {path}"
    default_view = neighbourhood(graph, focus_id)
    big = upstream_sample(graph, focus_id, 1000)
    for name, nodes, budget in (
        ("default view (1 hop)", default_view, 150),
        ("1,000-node selection", big, 1000),
    ):
        layout_time = median_time(lambda nodes=nodes, budget=budget: layered_layout(graph, nodes, max_nodes=budget, keep=[focus_id]))  # type: ignore[misc]  # fmt: skip
        layout = layered_layout(graph, nodes, max_nodes=budget, keep=[focus_id])
        try:
            figure_time = median_time(lambda layout=layout: plotly_figure(graph, layout))  # type: ignore[misc]
            figure = f", + the page's plotly figure {figure_time * 1000:.0f} ms"
        except ImportError:
            figure = ", plotly not installed"
        print(f"layout {name:<33} {layout_time * 1000:7.0f} ms  ({len(nodes)} nodes, {layout.crossings} crossings "
              f"from {layout.initial_crossings}{figure})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-dbt", action="store_true", help="do not time dbt's own selector (about 25 s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        bench("spellbook_dex", SPELLBOOK, "dex_trades", cache, with_dbt=not args.skip_dbt)
        synthetic = synthetic_manifest(Path(tmp))
        bench("synthetic 5,000 models", synthetic, "dex_trades", cache, with_dbt=False)
        print(
            "\n(dbt's selector is not timed on the synthetic project: its nodes carry only the fields the portal reads.)"
        )


if __name__ == "__main__":
    main()
