"""Preview latency on the embedded DuckDB warehouse while a real `dbt build` writes it, next to
the same previews with no build running.

    .venv/bin/python bench/preview_during_build.py [--product dp_customer_360] [--build +dp_customer_360]

Works on a private copy of the configured portal's warehouse and SQLite catalog (`make demo`
builds the default one); the build's artifacts go to a temporary target directory. In one
process it measures, for the same 100-row preview (the warehouse layer's columns, rows and count):

1. the baseline: previews for `--seconds` with no build;
2. previews during `dbt build --select <build>` as the portal runs it (the build lock, with the
   copy readers are served from: portal/warehouse/snapshot.py), and what taking that copy cost;
3. the same build with the copy turned off (PORTAL_DUCKDB_READ_COPY_MAX_MB=0), as every build
   was before: how many previews found the warehouse busy.

Latencies are printed as multiples of the baseline's median. The machine is shared: expect noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api_query import private_copy  # noqa: E402

from portal.project.dbt_runner import run_dbt  # noqa: E402
from portal.service import PortalService  # noqa: E402
from portal.settings import Settings  # noqa: E402
from portal.warehouse import WarehouseUnavailable  # noqa: E402
from portal.warehouse.snapshot import readers_served  # noqa: E402


@dataclass
class Previews:
    latencies: list[float] = field(default_factory=list)
    busy: int = 0

    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    def p95_ms(self) -> float:
        if len(self.latencies) < 2:
            return self.median_ms()
        return statistics.quantiles(self.latencies, n=20)[-1] * 1000


def preview_until(service: PortalService, product: str, done: threading.Event | float) -> Previews:
    """Previews of `product`, one after another, until `done` is set (or for that many seconds)."""
    node = service.resolve(product)
    relation = service.relation(node)
    warehouse = service.warehouse()
    stop_at = time.monotonic() + done if isinstance(done, float) else None
    found = Previews()
    while not (done.is_set() if isinstance(done, threading.Event) else time.monotonic() > (stop_at or 0)):
        started = time.perf_counter()
        try:
            warehouse.preview(relation, limit=100)
        except WarehouseUnavailable:
            found.busy += 1
            time.sleep(0.01)
            continue
        found.latencies.append(time.perf_counter() - started)
    return found


def during_build(settings: Settings, product: str, build: str, target: Path) -> tuple[Previews, float, str]:
    """Previews while dbt builds `build`; the build's duration and outcome."""
    service = PortalService(settings)
    finished = threading.Event()
    took: list[float] = []
    outcome: list[str] = []

    def builder() -> None:
        try:
            result = run_dbt(settings, ["build", "--select", build], target_path=target)
            took.append(result.elapsed_s)
            lock_error = "Could not set lock" in result.log
            outcome.append(
                "ok" if result.ok else ("FAILED: a preview held the file" if lock_error else "FAILED")
            )
        finally:
            finished.set()

    thread = threading.Thread(target=builder)
    thread.start()
    previews = preview_until(service, product, finished)
    thread.join()
    return previews, took[0] if took else float("nan"), outcome[0] if outcome else "not run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", default="dp_customer_360", help="the product previewed")
    parser.add_argument("--build", default="+dp_customer_360", help="the dbt selector built meanwhile")
    parser.add_argument("--seconds", type=float, default=5.0, help="baseline: seconds of previews")
    args = parser.parse_args()

    configured = Settings.from_env()
    if not configured.duckdb_path.exists():
        raise SystemExit(f"No warehouse at {configured.duckdb_path}: run `make demo` first.")
    with tempfile.TemporaryDirectory(prefix="bench-preview-build-") as directory:
        environ = private_copy(configured, Path(directory))
        settings = Settings.from_env({**os.environ, **environ})
        target = Path(directory) / "target"
        size_mb = settings.duckdb_path.stat().st_size / 1e6

        baseline = preview_until(PortalService(settings), args.product, args.seconds)
        started = time.perf_counter()
        with readers_served(settings):
            copy_s = time.perf_counter() - started
        with_copy, build_s, built = during_build(settings, args.product, args.build, target)
        without = Settings.from_env({**os.environ, **environ, "PORTAL_DUCKDB_READ_COPY_MAX_MB": "0"})
        no_copy, no_copy_build_s, no_copy_built = during_build(without, args.product, args.build, target)

    base = baseline.median_ms()
    print(f"{args.product}, 100-row previews; warehouse {size_mb:.1f} MB; dbt build --select {args.build}")
    print(
        f"  no build:               {len(baseline.latencies):5d} previews, median {base:6.2f} ms, p95 {baseline.p95_ms():6.2f} ms"
    )
    print(
        f"  build ({build_s:5.1f} s), copy:  {len(with_copy.latencies):5d} previews, median {with_copy.median_ms():6.2f} ms "
        f"(x{with_copy.median_ms() / base:.2f}), p95 {with_copy.p95_ms():6.2f} ms, busy {with_copy.busy}; "
        f"taking the copy {copy_s * 1000:.0f} ms; build {built}"
    )
    print(
        f"  build ({no_copy_build_s:5.1f} s), no copy: {len(no_copy.latencies):5d} previews, busy {no_copy.busy} "
        f"(the warehouse refused them); build {no_copy_built}"
    )


if __name__ == "__main__":
    main()
