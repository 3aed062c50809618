"""`python -m portal demo` builds the embedded demo; `python -m portal load-trino` loads its silver
tables into Iceberg tables on Trino (the Trino tier's data, PORTAL_TRINO_* settings)."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from portal.cli.errors import OK


def add_parsers(subparsers: Any) -> None:
    """Add `demo` and `load-trino` to an argparse subparsers object."""
    demo = subparsers.add_parser("demo", help="generate the demo silver data and build the dbt project")
    demo.add_argument("--scale", type=float, help="size of the demo data (1 = about 100k orders)")
    demo.add_argument(
        "--if-missing",
        action="store_true",
        help="only build when the warehouse is missing, or dbt/ changed since the project's copy took it",
    )
    demo.set_defaults(func=_demo_command)

    load = subparsers.add_parser(
        "load-trino", help="load the demo silver tables into Iceberg tables on Trino (PORTAL_TRINO_*)"
    )
    load.add_argument("--scale", type=float, default=None, help="demo scale (default PORTAL_DEMO_SCALE)")
    load.add_argument("--seed", type=int, default=None, help="generator seed (default PORTAL_DEMO_SEED)")
    load.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default today)")
    load.add_argument("--catalog", default=None, help="Trino catalog (default PORTAL_TRINO_CATALOG)")
    load.set_defaults(func=_load_trino_command)


def _demo_command(args: argparse.Namespace) -> int:
    from portal.demo.build import build_demo, demo_is_built
    from portal.demo.template import pending
    from portal.settings import Settings

    overrides = {"demo_scale": args.scale} if args.scale else {}
    settings = Settings.from_env(**overrides)
    if args.if_missing and demo_is_built(settings):
        newer = pending(settings)
        if newer is None or not newer.changes:
            print(f"The demo warehouse is built ({settings.duckdb_path}); `make demo` rebuilds it.")
            return OK
        print(
            f"The demo project in dbt/ changed since {settings.dbt_project_dir} took it "
            f"({', '.join(sorted(newer.changes))}): taking the change and rebuilding the demo …"
        )
    build_demo(settings)
    return OK


def _load_trino_command(args: argparse.Namespace) -> int:
    from portal.demo.trino_loader import load_silver
    from portal.settings import Settings

    started = time.perf_counter()
    counts = load_silver(
        Settings.from_env(),
        scale=args.scale,
        seed=args.seed,
        as_of=args.as_of,
        catalog=args.catalog,
        say=print,
    )
    elapsed = time.perf_counter() - started
    print(f"loaded {sum(counts.values()):,} rows into {len(counts)} tables in {elapsed:.1f} s")
    return OK
