"""Automated refresh over the real demo and real dbt: which products are due, a failing build that
does not stop the others, the lock, the run records and the command line."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from catalog_db.models import NodeResult, Run
from portal.auth.access import PermissionDenied
from portal.auth.identity import Principal
from portal.cli import observability as cli_observability
from portal.cli.errors import run_command
from portal.observability import refresh
from portal.runs import run_history, run_timings, slowest_models
from portal.service import PortalService
from portal.settings import ROOT, Settings
from tests.conftest import copy_demo

DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
DAILY = ["dp_customer_360", "dp_product_performance"]  # dp_revenue_analytics is monthly


def broken_project(dest: Path, model: str) -> Path:
    """A copy of the demo dbt project whose `model` fails when it runs (not when dbt parses it)."""
    shutil.copytree(ROOT / "dbt", dest, ignore=shutil.ignore_patterns("target", "logs"))
    (dest / "models" / "data_products" / f"{model}.sql").write_text(
        "select * from {{ ref('stg_customers') }} where no_such_column = 1\n"
    )
    return dest


@pytest.fixture
def environ(demo_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return copy_demo(demo_env, tmp_path / "demo")


@pytest.fixture
def service(environ: dict[str, str]) -> Iterator[PortalService]:
    yield PortalService(Settings.from_env(environ))


def last_build(service: PortalService) -> datetime:
    checks = refresh.due_checks(service)
    assert all(c.last_success for c in checks)
    return max(c.last_success for c in checks if c.last_success)


# --- which products are due ----------------------------------------------------------------

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("frequency", "last_success", "due"),
    [
        ("daily", NOW - DAY, True),  # exactly one period: due
        ("daily", NOW - DAY + timedelta(seconds=1), False),
        ("hourly", NOW - HOUR - MINUTE, True),
        ("weekly", NOW - 6 * DAY, False),
        ("monthly", NOW - 31 * DAY, True),
        ("daily", None, True),  # never built
        (None, None, False),  # no promise: refreshed by name only
        ("fortnightly", None, False),  # a promise nobody can check
    ],
)
def test_is_due(frequency: str | None, last_success: datetime | None, due: bool) -> None:
    assert refresh.is_due(frequency, last_success, NOW)[0] is due


def test_due_products_follow_the_run_history(service: PortalService) -> None:
    assert refresh.due_products(service) == []  # just built
    later = last_build(service) + DAY + MINUTE
    assert refresh.due_products(service, now=later) == DAILY
    with service.sessions.begin() as session:
        # A newer good build of one product (as the sync of anyone's run_results.json records it)
        # makes it not due; a newer failed build of the other does not.
        for status, product in (("success", "dp_product_performance"), ("error", "dp_customer_360")):
            run = Run(command="build", status=status, triggered_by="test", started_at=later - HOUR)
            run.node_results.append(
                NodeResult(
                    unique_id=f"model.asgard.{product}",
                    resource_type="model",
                    status=status,
                    execution_time=1.0,
                    completed_at=later - HOUR,
                )
            )
            session.add(run)
    assert refresh.due_products(service, now=later) == ["dp_customer_360"]
    checks = {c.name: c for c in refresh.due_checks(service, now=later)}
    assert checks["dp_product_performance"].reason.startswith("built 1.0 h ago; due in 23.0 h")
    assert refresh.due_products(service, now=later + 31 * DAY) == [*DAILY, "dp_revenue_analytics"]


# --- refreshing with real dbt --------------------------------------------------------------


def test_a_failing_build_does_not_stop_the_others(environ: dict[str, str], tmp_path: Path) -> None:
    project = broken_project(tmp_path / "dbt", "dp_customer_360")
    service = PortalService(Settings.from_env({**environ, "PORTAL_DBT_PROJECT_DIR": str(project)}))
    # Another portal process (the UI, say) syncing the artifacts while the builds run: refresh
    # must adopt the run it records rather than record the same invocation twice.
    bystander = PortalService(Settings.from_env({**environ, "PORTAL_DBT_PROJECT_DIR": str(project)}))
    synced: list[int] = []

    def on_line(line: str) -> None:
        if "Done. PASS=" in line:
            bystander.reload()
            assert bystander.last_sync is not None
            synced.append(bystander.last_sync.runs_added)

    events: list[refresh.Progress] = []
    now = last_build(service) + DAY + MINUTE
    report = refresh.refresh_due(service, now=now, on_progress=events.append, on_line=on_line)

    assert [r.product for r in report.results] == DAILY
    broken, fine = report.results
    assert not broken.ok and broken.status in {"partial", "error"}
    assert "model.asgard.dp_customer_360" in broken.message
    assert broken.profile_status == "ok"  # the previous build's table is still there, and measured
    assert fine.ok and fine.profile_status == "ok" and fine.drift == 0
    assert not report.ok

    with service.sessions() as session:
        runs = {r.id: r for r in session.scalars(select(Run).where(Run.id.in_([broken.run_id, fine.run_id])))}
        assert (
            len(session.scalars(select(Run).where(Run.triggered_by == "dbt-sync")).all()) == 1
        )  # the demo's
    assert synced == [1, 1], "the bystander should have synced each build first"
    assert runs[broken.run_id].status == broken.status
    assert runs[broken.run_id].selector == "+dp_customer_360"
    assert runs[broken.run_id].triggered_by == "cron"
    assert runs[broken.run_id].product_id is not None
    assert "no_such_column" in (runs[broken.run_id].log or "")
    assert runs[fine.run_id].status == "success" and (runs[fine.run_id].elapsed_s or 0) > 0

    timings = {t.name: t for t in run_timings(service, broken.run_id)}
    assert timings["dp_customer_360"].status == "error"
    assert timings["stg_customers"].status == "success"
    fine_timings = run_timings(service, fine.run_id)
    assert "dp_product_performance" in {t.name for t in fine_timings}
    assert [t.execution_time for t in fine_timings] == sorted(
        (t.execution_time for t in fine_timings), reverse=True
    )
    history = run_history(service, "dp_product_performance")
    assert history[0].id == fine.run_id and history[0].models > 0 and history[0].tests > 0
    assert slowest_models(service)

    phases = [(e.product, e.phase) for e in events]
    assert ("dp_customer_360", "failed") in phases
    assert ("dp_product_performance", "done") in phases
    assert phases[-1] == ("", "finished")
    building = [e for e in events if e.phase == "build" and e.nodes_total]
    assert building and all(0 <= e.fraction <= 1 for e in events)

    # The failed product is still due; the rebuilt one is not. Asked exactly a day after the
    # demo's build: the failed product's last good build is then a day old, the rebuilt one's
    # younger by the seconds between the demo build and the refresh (however few they are).
    assert refresh.due_products(service, now=now - MINUTE) == ["dp_customer_360"]
    with refresh.refresh_lock(service.settings):
        pass  # released


def test_an_overlapping_refresh_exits_cleanly(
    service: PortalService, environ: dict[str, str], use_env: Callable[[dict[str, str]], None], capsys
) -> None:
    use_env(environ)
    with refresh.refresh_lock(service.settings):
        with pytest.raises(refresh.RefreshBusy, match=r"Another refresh is running \(pid \d+"):
            refresh.refresh_due(service)
        assert cli(["refresh", "--due"]) == 0  # cron must not report the overlap as a failure
    assert "Another refresh is running" in capsys.readouterr().out


def test_who_may_refresh_is_decided_in_the_core(service: PortalService) -> None:
    """Teams own products: a signed-in viewer, or a creator of another team, is refused before any
    build; only an admin refreshes every due product at once."""
    viewer = Principal("vera@example.com", kind="oidc", groups=("customer-analytics-team",), role="viewer")
    stranger = Principal("maria@example.com", kind="oidc", groups=("team-marketing",), role="creator")
    for who in (viewer, stranger):
        with pytest.raises(PermissionDenied):
            refresh.refresh_one(service, "dp_customer_360", identity=who)
    with pytest.raises(PermissionDenied, match="needs admin"):
        refresh.refresh_due(service, identity=stranger)
    with service.sessions() as session:  # refused before a run was started
        assert (
            session.scalar(
                sa.select(sa.func.count()).select_from(Run).where(Run.triggered_by.like("%@example.com"))
            )
            == 0
        )


# --- command line --------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal")
    cli_observability.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_command(args.func, args)  # as `python -m portal` runs it


def test_cli_dry_run_and_profile(
    environ: dict[str, str], use_env: Callable[[dict[str, str]], None], capsys
) -> None:
    use_env(environ)
    assert cli(["refresh", "--due", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "wait  dp_customer_360: built" in out and "due in" in out

    assert cli(["profile", "dp_revenue_analytics"]) == 0
    out = capsys.readouterr().out
    assert "primary key (revenue_month, channel): 0 duplicates" in out
    assert "net_revenue_mom_growth" in out

    assert cli(["profile", "dp_revenue_analytics", "--json", "--no-store"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["row_count"] > 0 and data["drift"] == []

    assert cli(["profile", "dp_nope"]) == 2
    assert "There is no data product or model called 'dp_nope'" in capsys.readouterr().err
    assert cli(["refresh", "dp_nope"]) == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_in_cron() -> None:
    steps = [
        refresh.Progress(0, 2, "dp_a", "build", "dbt build", 0, 0, position=1),
        refresh.Progress(0, 2, "dp_a", "build", "", 30, 60, position=1),
        refresh.Progress(1, 2, "dp_a", "done", "built and tested", position=1),
        refresh.Progress(2, 2, "", "finished"),
    ]
    terminal = Terminal()
    bar = cli_observability.ProgressBar(terminal)
    for step in steps:
        bar(step)
    drawn = terminal.getvalue()
    assert "\r[######" in drawn and "25% 1/2 dp_a: building, node 30 of 60" in drawn
    assert "Refreshed 2 products." in drawn

    log = io.StringIO()
    plain = cli_observability.ProgressBar(log)
    for step in steps:
        plain(step)
    assert log.getvalue().splitlines() == [
        "1/2 dp_a: build (dbt build)",
        "1/2 dp_a: done (built and tested)",
        "Refreshed 2 products.",
    ]
