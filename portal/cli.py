"""`python -m portal ...`: the command-line face over the same services as the UI and API.

Subcommand modules are imported lazily so that quick commands (`lineage`, `settings`) do
not pay for pandas, SQLAlchemy or dbt at start-up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _settings_command(args: argparse.Namespace) -> int:
    from portal.settings import TABLE, settings_markdown

    if args.markdown:
        print(settings_markdown())
    else:
        for setting in TABLE:
            print(f"{setting.env}={setting.default}")
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from portal.demo.build import DemoBuildFailed, build_demo, demo_is_built
    from portal.settings import Settings

    overrides = {"demo_scale": args.scale} if args.scale else {}
    settings = Settings.from_env(**overrides)
    if args.if_missing and demo_is_built(settings):
        print(f"The demo warehouse is built ({settings.duckdb_path}); `make demo` rebuilds it.")
        return 0
    try:
        build_demo(settings)
    except DemoBuildFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _sync_command(args: argparse.Namespace) -> int:
    from portal.artifacts import ArtifactError
    from portal.products import PortalService
    from portal.settings import Settings

    try:
        service = PortalService(Settings.from_env())
        service.reload()
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(service.last_sync)
    return 0


def _dbt_command(args: argparse.Namespace) -> int:
    from portal.builder import run_dbt
    from portal.settings import Settings

    result = run_dbt(Settings.from_env(), args.dbt_args, on_line=print)
    return result.returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m portal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    settings = commands.add_parser("settings", help="list every setting, its variable and default")
    settings.add_argument("--markdown", action="store_true", help="print the README's settings table")
    settings.set_defaults(func=_settings_command)

    demo = commands.add_parser("demo", help="generate the demo silver data and build the dbt project")
    demo.add_argument("--scale", type=float, help="size of the demo data (1 = about 100k orders)")
    demo.add_argument("--if-missing", action="store_true", help="only build when the warehouse is missing")
    demo.set_defaults(func=_demo_command)

    sync = commands.add_parser("sync", help="read the dbt artifacts into the catalog database")
    sync.set_defaults(func=_sync_command)

    dbt = commands.add_parser(
        "dbt", help="run dbt with the portal's project, profiles, target and warehouse settings"
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="arguments for dbt, e.g. docs generate")
    dbt.set_defaults(func=_dbt_command)

    from portal import lineage_cli

    lineage_cli.add_parser(commands)

    from portal import auth_cli, cli_observability

    cli_observability.add_parsers(commands)
    auth_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
