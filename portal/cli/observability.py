"""`python -m portal refresh --due | refresh NAME`, `python -m portal profile NAME` and
`python -m portal health [NAME ...]`.

`refresh --due` is the command for cron or an orchestrator: it exits 0 when everything due was
refreshed, when nothing was due, and when another refresh is still running (that one carries
on; whatever is left is picked up next time); 1 when a product failed; 2 on bad input. On a
terminal it draws a progress bar; otherwise (cron) it prints one line per step.

`health` prints every product's health, worst first, judged by the rule the catalog, the
Health page and the API use (`project/statuses.py`); with `--fail-on LEVEL` it exits 1 when a
product is at that level or worse, for a monitoring check.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # imported lazily at run time: `python -m portal --help` stays quick
    from portal.observability.drift import Drift
    from portal.observability.health import ProductHealth
    from portal.observability.profile import Profile
    from portal.observability.refresh import Progress
    from portal.service import PortalService

from portal.cli.errors import FAILED, OK
from portal.project.statuses import HEALTH_LEVELS, plural


def add_parsers(subparsers: Any) -> None:
    """Add `refresh` and `profile` to an argparse subparsers object."""
    refresh = subparsers.add_parser(
        "refresh",
        help="build due data products (or one) with their upstream models, then profile them",
        description=(
            "Build data products with `dbt build --select +NAME`, record the runs, profile the products "
            "and record drift. --due picks the products whose update frequency says they are due."
        ),
    )
    which = refresh.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="the data product (or model) to refresh")
    which.add_argument("--due", action="store_true", help="refresh every product that is due (for cron)")
    refresh.add_argument("--dry-run", action="store_true", help="with --due: list what is due, build nothing")
    refresh.add_argument("--verbose", "-v", action="store_true", help="print dbt's log lines")
    refresh.set_defaults(func=_refresh_command)

    profile = subparsers.add_parser(
        "profile",
        help="measure a data product in the warehouse (nulls, distinct values, ranges, keys) and record drift",
    )
    profile.add_argument("name", help="the data product (or model) to profile")
    profile.add_argument("--json", action="store_true", help="print the profile as JSON")
    profile.add_argument("--no-store", action="store_true", help="measure only; record nothing")
    profile.set_defaults(func=_profile_command)

    health = subparsers.add_parser(
        "health",
        help="every data product's health, worst first (as the catalog and the Health page show it)",
    )
    health.add_argument("names", nargs="*", metavar="NAME", help="only these products (default: all)")
    health.add_argument("--json", action="store_true", help="print the health as JSON")
    health.add_argument(
        "--fail-on",
        choices=HEALTH_LEVELS,
        help="exit 1 when a product is at this level or worse (for a monitoring check)",
    )
    health.set_defaults(func=_health_command)


class ProgressBar:
    """A one-line progress bar on a terminal; plain lines, one per step, anywhere else."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = ""

    def __call__(self, progress: Progress) -> None:
        from portal.observability.refresh import describe_progress

        text = describe_progress(progress)
        if not self.tty:
            # One line per product phase, not per dbt node: cron mails stay short.
            if progress.phase != "build" or not progress.nodes_total:
                print(text, file=self.stream, flush=True)
            return
        width = shutil.get_terminal_size((80, 20)).columns
        bar_width = 24
        filled = round(progress.fraction * bar_width)
        line = f"[{'#' * filled}{'.' * (bar_width - filled)}] {progress.fraction:4.0%} {text}"
        line = line[: width - 1].ljust(len(self._last))
        self._last = line
        end = "\n" if progress.phase in {"done", "failed", "finished"} else ""
        print(f"\r{line}", end=end, file=self.stream, flush=True)
        if end:
            self._last = ""


def _service() -> PortalService:
    from portal.service import PortalService
    from portal.settings import Settings

    return PortalService(Settings.from_env())


def _refresh_command(args: argparse.Namespace) -> int:
    from portal.catalog.access_requests import sync_rules
    from portal.creation.recovery import recover_interrupted
    from portal.observability.refresh import RefreshBusy, due_checks, refresh_due, refresh_one

    try:
        service = _service()
        if not args.dry_run:
            for line in recover_interrupted(service):  # cron is the periodic caller
                print(f"recovered {line}")
            # and so it closes the Trino tables of access grants that ended since the last write
            sync_rules(service)
        if args.due and args.dry_run:
            for check in due_checks(service):
                print(f"{'due ' if check.due else 'wait'}  {check.name}: {check.reason}")
            return OK
        bar = ProgressBar(sys.stderr)
        on_line = print if args.verbose else None
        if args.due:
            report = refresh_due(service, triggered_by="cli --due", on_progress=bar, on_line=on_line)
            results = report.results
            if not results:
                waiting = "; ".join(f"{c.name} ({c.reason})" for c in report.checks) or "no data products"
                print(f"Nothing is due: {waiting}.")
                return OK
        else:
            results = [refresh_one(service, args.name, triggered_by="cli", on_progress=bar, on_line=on_line)]
    except RefreshBusy as exc:  # cron's next run picks up what is left: not a failure (see above)
        print(str(exc))
        return OK
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        extra = f", {plural(result.drift, 'drift event')}" if result.drift else ""
        print(
            f"{mark}  {result.product}: {result.status} in {result.elapsed_s:.1f} s (run {result.run_id}), "
            f"profile {result.profile_status or 'not taken'}{extra}. {result.message.splitlines()[0]}"
        )
    return OK if all(r.ok for r in results) else FAILED


def _profile_command(args: argparse.Namespace) -> int:
    from portal.observability import history

    service = _service()
    if args.no_store:
        outcome = history.ProfileOutcome(history.measure_product(service, args.name), (), None)
    else:
        outcome = history.profile_product(service, args.name)
    profile, drift = outcome.profile, outcome.drift
    if args.json:
        print(json.dumps(_profile_json(profile, drift), indent=2, default=str))
    else:
        _print_profile(profile, drift)
    return OK if profile.measured else FAILED


def _profile_json(profile: Profile, drift: Sequence[Drift]) -> dict[str, Any]:
    return {
        "product": profile.product,
        "status": profile.status,
        "message": profile.message,
        "measured_at": profile.measured_at.isoformat(),
        "row_count": profile.row_count,
        "primary_key": list(profile.primary_key),
        "duplicate_keys": profile.duplicate_keys,
        "newest_update": profile.newest_update.isoformat() if profile.newest_update else None,
        "columns": [c.to_json() for c in profile.columns],
        "sources": [s.to_json() for s in profile.sources],
        "drift": [{"kind": d.kind, "change": d.change, "column": d.column, **d.detail} for d in drift],
        "elapsed_s": profile.elapsed_s,
    }


def _print_profile(profile: Profile, drift: Sequence[Drift]) -> None:
    print(f"{profile.product}: {profile.summary} ({profile.elapsed_s or 0:.2f} s)")
    if profile.primary_key:
        dups = profile.duplicate_keys
        counted = "duplicates not measured" if dups is None else plural(dups, "duplicate")
        print(f"primary key ({', '.join(profile.primary_key)}): {counted}")
    if profile.newest_update:
        print(f"newest update: {profile.newest_update:%Y-%m-%d %H:%M:%S} UTC")
    if profile.columns:
        header = f"{'column':<28} {'type':<16} {'nulls':>8} {'null %':>7} {'distinct':>9}  range / mean"
        print(header)
        print("-" * len(header))
        for column in profile.columns:
            rate = "" if column.null_rate is None else f"{column.null_rate:.1%}"
            distinct = "" if column.distinct is None else f"{column.distinct:,}"
            span = ""
            if column.minimum is not None:
                span = f"{column.minimum} .. {column.maximum}"
            if column.mean is not None:
                span += f"  mean {column.mean:.4g}"
            if column.kind == "other":
                span = "(type not profiled beyond nulls)"
            print(
                f"{column.name:<28} {column.type[:16]:<16} {column.nulls or 0:>8,} {rate:>7} {distinct:>9}  {span}"
            )
    for item in drift:
        print(f"drift: {item.description}")


def _health_command(args: argparse.Namespace) -> int:
    from portal.observability.health import health_of, health_overview

    service = _service()
    if args.names:
        entries = [service.entry(name) for name in args.names]  # NotFound names the close ones
        overview = sorted(health_of(service, entries).values(), key=lambda h: h.rank)
    else:
        overview = health_overview(service)
    if args.json:
        print(json.dumps([_health_json(h) for h in overview], indent=2, default=str))
    else:
        for h in overview:
            problems = "; ".join(h.problems) or h.freshness.reason
            print(f"{h.level:<8} {h.name} ({h.entry.lifecycle}): {problems}")
    if args.fail_on is not None:
        worst = HEALTH_LEVELS.index(args.fail_on)
        if any(HEALTH_LEVELS.index(h.level) <= worst for h in overview):
            return FAILED
    return OK


def _health_json(judged: ProductHealth) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "name": judged.name,
        "lifecycle": judged.entry.lifecycle,
        "level": judged.level,
        "problems": judged.problems,
        **asdict(judged.health),
        "freshness_reason": judged.freshness.reason,
        "last_refreshed": judged.last_refreshed,
        "row_count": judged.entry.row_count,
    }
