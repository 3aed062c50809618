"""`python -m portal ...`: the command-line face over the same services as the UI and API.

Subcommand modules are imported lazily so that quick commands (`lineage`, `settings`) do
not pay for pandas, SQLAlchemy or dbt at start-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from portal.cli.errors import OK, run_command


def _settings_command(args: argparse.Namespace) -> int:
    from portal.settings import TABLE, settings_markdown

    if args.markdown:
        print(settings_markdown())
    else:
        for setting in TABLE:
            print(f"{setting.env}={setting.default}")
    return OK


def _sync_command(args: argparse.Namespace) -> int:
    from portal.service import PortalService
    from portal.settings import Settings

    service = PortalService(Settings.from_env())
    service.reload()
    print(service.last_sync)
    return OK


def _dbt_command(args: argparse.Namespace) -> int:
    from portal.project.dbt_runner import run_dbt
    from portal.settings import Settings

    result = run_dbt(Settings.from_env(), args.dbt_args, on_line=print)
    return result.returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m portal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    settings = commands.add_parser("settings", help="list every setting, its variable and default")
    settings.add_argument("--markdown", action="store_true", help="print the README's settings table")
    settings.set_defaults(func=_settings_command)

    from portal.cli import demo as demo_cli

    demo_cli.add_parsers(commands)

    sync = commands.add_parser("sync", help="read the dbt artifacts into the catalog database")
    sync.set_defaults(func=_sync_command)

    dbt = commands.add_parser(
        "dbt", help="run dbt with the portal's project, profiles, target and warehouse settings"
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="arguments for dbt, e.g. docs generate")
    dbt.set_defaults(func=_dbt_command)

    from portal.cli import lineage as lineage_cli

    lineage_cli.add_parser(commands)

    from portal.cli import observability as cli_observability
    from portal.cli import tokens as auth_cli
    from portal.cli import ui as ui_cli

    cli_observability.add_parsers(commands)
    auth_cli.add_parser(commands)
    ui_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)
