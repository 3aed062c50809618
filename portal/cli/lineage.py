"""`python -m portal lineage`: list what a dbt selector selects, like `dbt ls`, in well under a second.

Standard output carries the selected unique ids, one per line and nothing else, so it pipes like
`dbt ls --output json --output-keys unique_id`; warnings and errors go to standard error. The answer
comes from a cached selection index (see `portal.lineage.index.load_index`), so only the first call on a
new or changed manifest pays for reading it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from portal.cli.errors import OK, run_command

# Exit codes (portal.cli.errors): 0 the selection ran, even if it selected nothing (as dbt ls
# does); 2 a bad selector or no manifest.
DESCRIPTION = (
    "Print the unique id of every node a dbt selector selects, one per line, the same nodes as "
    "`dbt ls --select ...` on the same manifest. Warnings and errors go to standard error."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `lineage` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "lineage",
        help="list the nodes a dbt selector selects (same answer as dbt ls)",
        description=DESCRIPTION,
    )
    _add_arguments(parser)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest",
        type=Path,
        help="manifest.json or manifest.json.gz to read (default: the configured project's target directory)",
    )
    parser.add_argument(
        "--select", "-s", nargs="+", metavar="SELECTOR",
        help="dbt selector, e.g. '+orders+' or 'tag:nightly,config.materialized:table' (default: everything)",
    )  # fmt: skip
    parser.add_argument("--exclude", nargs="+", metavar="SELECTOR", help="dbt selector of nodes to leave out")
    parser.add_argument(
        "--with-tests",
        action="store_true",
        help="also list tests, the way dbt's default (eager) indirect selection adds them",
    )
    parser.add_argument(
        "--selector",
        metavar="NAME",
        help="a selector from the project's selectors.yml, as dbt ls --selector",
    )
    parser.add_argument("--no-cache", action="store_true", help="read the manifest without the index cache")
    parser.set_defaults(func=run)


def _default_manifest() -> Path:
    from portal.project.artifacts import ArtifactError, find_artifact
    from portal.settings import Settings

    target_dir = Settings.from_env().target_dir
    found = find_artifact(target_dir, "manifest")
    if found is None:
        raise ArtifactError(
            f"No manifest.json in {target_dir}. Pass --manifest PATH, build the project (`make demo` for the "
            "demo, or `dbt parse` in your project), or point PORTAL_DBT_TARGET_DIR at its target folder."
        )
    return found


def run(args: argparse.Namespace) -> int:
    """Print the selected unique ids; the return value is the process exit code."""
    from portal.lineage.index import load_index
    from portal.lineage.selector import select

    manifest = args.manifest or _default_manifest()
    index = load_index(manifest, use_cache=not args.no_cache)
    selection = select(
        index, args.select, args.exclude, selector_name=args.selector, with_tests=args.with_tests
    )
    for warning in selection.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if selection.selector and not args.selector:  # as dbt ls, without --select: the default selector
        print(f"note: using the project's default selector {selection.selector!r}", file=sys.stderr)
    if selection.unique_ids:
        sys.stdout.write("\n".join(selection.unique_ids) + "\n")
    sys.stdout.flush()
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.cli.lineage", description=DESCRIPTION)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
