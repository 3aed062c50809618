"""Time from submit to published for a small product, against a bare `dbt build --select` of it.

    .venv/bin/python bench/create.py [--repeat 3] [--scale 0.02] [--keep DIR]

Builds the demo at a small scale in a temporary directory (with its own copy of the dbt project,
so the repo's dbt/ is never touched), then, per repetition, creates a new product through
`portal.creation.flow.create` (check, claim, files, audit build, publish, dbt parse, sync) and right
after runs a bare `dbt build --select <that model>` on the portal's main target: the same model,
the same machine, the same minute. Prints the medians, the ratio (target: at most 1.3x), and
where the creation's time went. The machine may be shared: expect noise, and read the ratio
with the spread next to it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.auth.identity import Identity  # noqa: E402
from portal.creation import flow as creation  # noqa: E402
from portal.creation.spec import ProductSpec  # noqa: E402
from portal.demo.build import build_demo  # noqa: E402
from portal.project.dbt_runner import run_dbt  # noqa: E402
from portal.service import PortalService  # noqa: E402
from portal.settings import Settings  # noqa: E402

SQL = """
select customer_id, count(*) as order_count, cast(sum(net_revenue) as decimal(18, 2)) as net_revenue
from int_orders
where not is_cancelled
group by customer_id
"""


def environ_for(base: Path, scale: float) -> dict[str, str]:
    return {
        "PORTAL_DBT_PROJECT_DIR": str(base / "dbt"),
        "PORTAL_DUCKDB_PATH": str(base / "warehouse.duckdb"),
        "PORTAL_CATALOG_DB_URL": f"sqlite:///{base / 'catalog.db'}",
        "PORTAL_DBT_TARGET_DIR": str(base / "target"),
        "PORTAL_DEMO_SCALE": str(scale),
    }


def spec(name: str) -> ProductSpec:
    return ProductSpec(
        name=name,
        description="Orders and net revenue per customer (benchmark).",
        data_product_type="CUSTOMER_360",
        owner="bench",
        primary_key=("customer_id",),
        sql=SQL,
    )


class Stages:
    """Seconds from submit to each stage line the creation reports."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        if line.startswith(creation.STAGE):
            self.marks.append((time.perf_counter() - self.started, line.removeprefix(creation.STAGE)))

    def durations(self) -> dict[str, float]:
        """Time spent in each stage (until the next one started)."""
        spans: dict[str, float] = {}
        for (start, text), (end, _) in zip(self.marks, self.marks[1:], strict=False):
            key = re.sub(r"dp_\w+", "<name>", text)[:70]  # the same label in every repetition
            spans[key] = spans.get(key, 0.0) + end - start
        return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir, removed)")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="asgard-bench-create-"))
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        ROOT / "dbt", base / "dbt", ignore=shutil.ignore_patterns("target", "logs"), dirs_exist_ok=True
    )
    settings = Settings.from_env(environ_for(base, args.scale))
    print(f"Building the demo at scale {args.scale:g} in {base} …", flush=True)
    build_demo(settings, say=lambda _line: None)
    service = PortalService(settings)
    me = Identity("bench")

    created: list[float] = []
    bare: list[float] = []
    stage_totals: dict[str, list[float]] = {}
    for index in range(args.repeat):
        name = f"dp_bench_customers_{index}"
        stages = Stages()
        started = time.perf_counter()
        result = creation.create(service, spec(name), me, on_line=stages)
        created.append(time.perf_counter() - started)
        if not result.ok:
            raise SystemExit(
                f"{name} was not published ({result.status}):\n{result.problems}\n{result.log[-3000:]}"
            )
        for stage, seconds in stages.durations().items():
            stage_totals.setdefault(stage, []).append(seconds)
        started = time.perf_counter()
        baseline = run_dbt(settings, ["build", "--select", name])
        bare.append(time.perf_counter() - started)
        if not baseline.ok:
            raise SystemExit(f"the bare build of {name} failed:\n{baseline.tail()}")
        print(
            f"  {name}: submit -> published {created[-1]:5.1f} s · bare dbt build {bare[-1]:5.1f} s",
            flush=True,
        )

    create_s, bare_s = statistics.median(created), statistics.median(bare)
    print()
    print(
        f"submit -> published (median of {args.repeat}): {create_s:6.1f} s  (min {min(created):.1f}, max {max(created):.1f})"
    )
    print(
        f"bare dbt build --select   (median of {args.repeat}): {bare_s:6.1f} s  (min {min(bare):.1f}, max {max(bare):.1f})"
    )
    print(f"ratio: {create_s / bare_s:.2f}x (target at most 1.3x)")
    print("where the creation's time went (median s):")
    for stage, values in stage_totals.items():
        print(f"  {statistics.median(values):5.1f}  {stage}")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
