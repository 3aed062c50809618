"""Profiling speed: the three demo products at scale 1 and 10, as a ratio to `SELECT count(*)`.

    .venv/bin/python bench/profile.py [--scales 1 10] [--repeat 5] [--keep DIR [--reuse]]

Builds each demo into a temporary directory (about a minute at scale 1, two at scale 10; `--keep
DIR` keeps them), then, per product, times `profiler.measure` (every statement of a profile: the
column listing, the aggregate over all columns, the value counts of low-cardinality columns and
the upstream sources' freshness) against one `SELECT count(*)` over the same table, through the
same warehouse interface in the same run: once with exact distinct counts (the default) and once
with approximate ones (PORTAL_PROFILE_APPROXIMATE_DISTINCT). Each statement opens its own
read-only DuckDB connection (see portal/warehouse/duckdb.py), which dominates on small tables.
Medians of a few repetitions; the machine is shared, so expect some noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.demo.build import build_demo, demo_is_built  # noqa: E402
from portal.observability.profile import Profile, primary_key, source_promise, upstream_sources  # noqa: E402
from portal.observability.profiler import measure  # noqa: E402
from portal.service import PortalService  # noqa: E402
from portal.settings import Settings  # noqa: E402

PRODUCTS = ("dp_customer_360", "dp_product_performance", "dp_revenue_analytics")


def median_time(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm: the first query of a process opens the file and loads the catalog
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_scale(scale: float, base: Path, repeat: int, reuse: bool = False) -> None:
    settings = Settings.from_env(
        {},
        duckdb_path=base / "warehouse.duckdb",
        catalog_db_url=f"sqlite:///{base / 'catalog.db'}",
        dbt_target_dir=str(base / "target"),
        demo_scale=scale,
    )
    if reuse and demo_is_built(settings):
        print(f"scale {scale:g}: reusing the demo in {base}")
    else:
        started = time.perf_counter()
        build_demo(settings, say=lambda _line: None)
        print(f"scale {scale:g}: demo built in {time.perf_counter() - started:.0f} s")
    service = PortalService(settings)
    manifest = service.artifacts().manifest
    warehouse = service.warehouse()
    print(
        f"  {'product':<24} {'rows':>9} {'cols':>5} {'count(*)':>10} {'profile':>10} {'ratio':>7} "
        f"{'approx':>10} {'ratio':>7}"
    )
    for name in PRODUCTS:
        node = service.resolve(name)
        relation = service.relation(node)
        sources = [
            (service.relation(s), promise)
            for s in upstream_sources(manifest, node)
            if (promise := source_promise(manifest, s)) is not None
        ]

        def profile(
            approximate: bool, node: Any = node, relation: Any = relation, sources: Any = sources
        ) -> Profile:
            return measure(
                warehouse,
                relation,
                product=node.name,
                primary_key=primary_key(manifest, node),
                freshness_column=settings.freshness_column,
                sources=sources,
                max_categories=settings.profile_max_categories,
                approximate_distinct=approximate,
            )

        result = profile(False)
        assert result.status == "ok", result.message
        count_s = median_time(lambda relation=relation: warehouse.count(relation), repeat)
        exact_s = median_time(lambda: profile(False), repeat)
        approx_s = median_time(lambda: profile(True), repeat)
        print(
            f"  {name:<24} {result.row_count:>9,} {len(result.columns):>5} {count_s * 1000:>8.1f}ms "
            f"{exact_s * 1000:>8.1f}ms {exact_s / count_s:>6.1f}x {approx_s * 1000:>8.1f}ms {approx_s / count_s:>6.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the demos under this directory and keep them")
    parser.add_argument("--reuse", action="store_true", help="with --keep: reuse demos already built there")
    args = parser.parse_args()
    for scale in args.scales:
        if args.keep:
            base = args.keep / f"scale-{scale:g}"
            base.mkdir(parents=True, exist_ok=True)
            bench_scale(scale, base, args.repeat, reuse=args.reuse)
        else:
            with tempfile.TemporaryDirectory(prefix=f"asgard-bench-{scale:g}-") as tmp:
                bench_scale(scale, Path(tmp), args.repeat)


if __name__ == "__main__":
    main()
