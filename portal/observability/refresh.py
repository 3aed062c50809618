"""Automated refresh.

`refresh_due` builds every data product whose promised update frequency says it is due, with
its upstream models (`dbt build --select +name`), records each build as a Run (status, log and,
through the sync of run_results.json, every node's timing), then profiles the product and
records drift. It is meant for cron or an orchestrator every few minutes:

- a lock per project and catalog makes an overlapping invocation exit at once (RefreshBusy)
  instead of queueing behind the running one; whatever is still due is picked up next time;
- a product whose build or profile fails is recorded as failed and the loop moves on;
- progress goes to a callback (a terminal progress bar, st.status in the UI).

Reading what builds left behind (run history, per-model timings, the slowest models) is
portal/runs.py's, for every kind of run alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from catalog_db.models import DataProduct, Run
from portal.auth.access import PermissionDenied, authorize, role_of
from portal.auth.identity import Identity
from portal.errors import Busy, Conflict
from portal.observability.freshness import FREQUENCY_PERIODS, describe_age, frequency_period
from portal.observability.history import profile_product
from portal.observability.profile import as_utc
from portal.project import locks
from portal.project.artifacts import (
    ArtifactError,
    Artifacts,
    RunResults,
    find_artifact,
    load_manifest,
    load_run_results,
)
from portal.project.dbt_runner import DbtResult, cancellable, run_dbt
from portal.project.statuses import BUILD_FAILED, LIVE_LIFECYCLES, UNPUBLISHED_LIFECYCLES, nodes_failed
from portal.project.sync import run_status, sync
from portal.runs import announce_end, start_run
from portal.service import PortalService, last_successes
from portal.settings import Settings

log = logging.getLogger(__name__)

# Enough of dbt's log to diagnose a failure without letting one chatty build bloat the catalog.
MAX_LOG_CHARS = 200_000
# dbt's per-node lines: "12:00:01  3 of 60 OK created sql table model gold.dp_x ... [OK in 0.2s]".
_NODE_DONE = re.compile(r"\b(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b")


class RefreshBusy(Busy):
    """Another refresh holds the lock; the message says who and what to do."""


class NotRefreshable(Conflict):
    """The product has not passed write-audit-publish; the message says what to do instead."""


# --- which products are due ----------------------------------------------------------------


@dataclass(frozen=True)
class DueCheck:
    name: str
    update_frequency: str | None
    last_success: datetime | None
    due: bool
    reason: str


def is_due(update_frequency: str | None, last_success: datetime | None, now: datetime) -> tuple[bool, str]:
    """Due once a whole period of its update frequency has passed since its last good build."""
    if update_frequency is None:
        return False, "no update frequency is promised (meta.update_frequency); refresh it by name"
    period = frequency_period(update_frequency)
    if period is None:
        known = ", ".join(FREQUENCY_PERIODS)
        return (
            False,
            f"update frequency {update_frequency!r} is not one of {known}; fix meta.update_frequency",
        )
    if last_success is None:
        return True, "never built successfully"
    age = now - last_success
    if age >= period:
        return True, f"last built {describe_age(age)} ago, {update_frequency} promised"
    return False, f"built {describe_age(age)} ago; due in {describe_age(period - age)}"


def due_checks(service: PortalService, *, now: datetime | None = None) -> list[DueCheck]:
    """Every refreshable data product with whether it is due and why."""
    now = now or datetime.now(UTC)
    # Drafts and failed creations belong to the creation flow; removed products are gone.
    entries = [e for e in service.entries() if e.lifecycle in LIVE_LIFECYCLES]
    with service.sessions() as session:
        built = last_successes(session, [e.unique_id for e in entries])
    last = {uid: as_utc(moment) for uid, moment in built.items()}
    checks = []
    for entry in entries:
        success = last.get(entry.unique_id)
        due, reason = is_due(entry.update_frequency, success, now)
        checks.append(DueCheck(entry.name, entry.update_frequency, success, due, reason))
    return checks


def due_products(service: PortalService, *, now: datetime | None = None) -> list[str]:
    return [check.name for check in due_checks(service, now=now) if check.due]


# --- the lock ------------------------------------------------------------------------------


@contextmanager
def refresh_lock(
    settings: Settings, *, wait: bool = False, on_line: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the refresh lock (portal/project/locks.py: across processes and, on a PostgreSQL
    catalog, hosts); raise RefreshBusy when another refresh holds it and `wait` is False."""

    def waiting(holder: str) -> None:
        if on_line:
            on_line(f"Another refresh is running ({holder}); waiting for it to finish …")

    try:
        with locks.refresh_lock(settings).hold(wait=wait, on_wait=waiting):
            yield
    except locks.LockBusy as busy:
        raise RefreshBusy(
            f"Another refresh is running ({busy.holder}), so this one stops here; whatever is still due "
            "is picked up by the next run."
        ) from None


# --- refreshing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    done: int  # products finished
    total: int
    product: str
    phase: str  # build, profile, done, failed
    message: str = ""
    nodes_done: int = 0  # within this product's dbt build
    nodes_total: int = 0
    position: int = 0  # 1-based place of `product` in the refresh

    @property
    def fraction(self) -> float:
        """Overall, counting the current product's built nodes."""
        if not self.total:
            return 1.0
        inner = self.nodes_done / self.nodes_total if self.nodes_total and self.phase == "build" else 0.0
        if self.phase == "profile":
            inner = 0.95
        return min(1.0, (self.done + inner) / self.total)


ProgressSink = Callable[[Progress], None]
LineSink = Callable[[str], None]


@dataclass(frozen=True)
class RefreshResult:
    product: str
    status: str  # success, partial, error (the run's status)
    run_id: int | None
    elapsed_s: float
    message: str
    profile_status: str | None = None
    drift: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass(frozen=True)
class RefreshReport:
    results: list[RefreshResult]
    checks: list[DueCheck]  # what was considered (for --due); empty for a named refresh

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def refresh_one(
    service: PortalService,
    key: str,
    *,
    triggered_by: str = "cli",
    identity: Identity | None = None,
    wait: bool = True,
    on_progress: ProgressSink | None = None,
    on_line: LineSink | None = None,
) -> RefreshResult:
    """Build one product with its upstream models, record the run, profile it and record drift.

    With `identity` (a face acting for someone), PermissionDenied unless they may refresh it (its
    owning team, or an admin); the run is then recorded as theirs. Portal products that have not
    passed their audit (failed, still building, removed) are refused: `dbt build` would put them
    in gold untested, which only write-audit-publish may do.
    """
    name = service.resolve(key).name  # an unknown name fails here, before taking any lock
    with service.sessions() as session:
        row = session.scalar(sa.select(DataProduct).where(DataProduct.name == name))
        status = row.status if row is not None else None
    if identity is not None:
        authorize(identity, "run", row)
        triggered_by = identity.user
    if status in UNPUBLISHED_LIFECYCLES and status != "building":
        raise NotRefreshable(
            f"{name} is {status}: it has not passed its audit build, and a refresh would build it into "
            f"`{service.settings.gold_schema}` untested. Fix it and resubmit it (the Create page, or "
            f"PATCH /api/v1/data-products/{name}), or discard it."
        )
    if status == "building":
        raise NotRefreshable(f"{name} is being built right now; refresh it once that build has finished.")
    with refresh_lock(service.settings, wait=wait, on_line=on_line):
        return _refresh_all(service, [name], triggered_by, on_progress, on_line)[0]


def refresh_due_refusal(identity: Identity) -> str | None:
    """Why `identity` may not refresh every due product at once (the products are anyone's), or None."""
    if role_of(identity) == "admin":
        return None
    return (
        f"{identity.user} has the {role_of(identity)} role; refreshing every due product needs admin. "
        "Refresh your team's products one by one on their Runs tab."
    )


def refresh_due(
    service: PortalService,
    *,
    now: datetime | None = None,
    triggered_by: str = "cron",
    identity: Identity | None = None,
    on_progress: ProgressSink | None = None,
    on_line: LineSink | None = None,
) -> RefreshReport:
    """Refresh every due product, one after the other. Raises RefreshBusy if a refresh is running.
    With `identity`, PermissionDenied unless they are an admin (the products are anyone's)."""
    if identity is not None:
        refusal = refresh_due_refusal(identity)
        if refusal:
            raise PermissionDenied(refusal)
        triggered_by = identity.user
    with refresh_lock(service.settings, wait=False):
        checks = due_checks(service, now=now)
        names = [c.name for c in checks if c.due]
        return RefreshReport(_refresh_all(service, names, triggered_by, on_progress, on_line), checks)


def _refresh_all(
    service: PortalService,
    names: Sequence[str],
    triggered_by: str,
    on_progress: ProgressSink | None,
    on_line: LineSink | None,
) -> list[RefreshResult]:
    results = []
    for done, name in enumerate(names):
        report = _reporter(on_progress, done, len(names), name)
        try:
            result = _refresh(service, name, triggered_by, report, on_line)
        except Exception as exc:  # one product's failure must not stop the others
            log.exception("refresh of %s failed", name)
            result = RefreshResult(name, "error", None, 0.0, f"{type(exc).__name__}: {exc}")
        report("done" if result.ok else "failed", result.message)
        results.append(result)
    if on_progress and names:
        on_progress(Progress(len(names), len(names), "", "finished"))
    return results


def _reporter(on_progress: ProgressSink | None, done: int, total: int, name: str) -> Callable[..., None]:
    """The progress callback of one product: phase, message and (nodes done, nodes total)."""

    def report(phase: str, message: str = "", nodes: tuple[int, int] = (0, 0)) -> None:
        if on_progress:
            finished = done + (phase in {"done", "failed"})
            on_progress(Progress(finished, total, name, phase, message, *nodes, position=done + 1))

    return report


def _refresh(
    service: PortalService,
    name: str,
    triggered_by: str,
    report: Callable[..., None],
    on_line: LineSink | None,
) -> RefreshResult:
    settings = service.settings
    selector = f"+{name}"
    before = _invocation_id(settings)
    with service.sessions() as session:
        product_id = session.scalar(sa.select(DataProduct.id).where(DataProduct.name == name))
    run_id = start_run(
        service,
        selector=selector,
        triggered_by=triggered_by,
        product_id=product_id,
        details={"refresh": True},
    )
    report("build", f"dbt build --select {selector}")
    nodes = [0, 0]

    def line(text: str) -> None:
        if on_line:
            on_line(text)
        match = _NODE_DONE.search(text)
        if match:
            nodes[0], nodes[1] = nodes[0] + 1, int(match[2])
            report("build", text.strip(), (nodes[0], nodes[1]))

    result: DbtResult | None = None
    try:
        with cancellable(run_id) as stop:  # a cancel of the run (portal.runs.cancel_run) stops its dbt
            result = run_dbt(
                settings,
                ["build", "--select", selector],
                on_line=line,
                timeout_s=settings.refresh_timeout_s,
                timeout_setting="refresh_timeout_s",
                stop=stop,
            )
    finally:
        # Even when dbt could not be started, the run is closed rather than left "running".
        run_id, status, message = _finish_run(service, run_id, selector, before, result)
    report("profile", "profiling")
    outcome = profile_product(service, name, run_id=run_id)
    return RefreshResult(
        product=name,
        status=status,
        run_id=run_id,
        elapsed_s=result.elapsed_s if result else 0.0,
        message=message,
        profile_status=outcome.profile.status,
        drift=len(outcome.drift),
    )


def _invocation_id(settings: Settings) -> str | None:
    path = find_artifact(settings.target_dir, "run_results")
    if path is None:
        return None
    try:
        return load_run_results(path).invocation_id
    except ArtifactError:
        return None


def _own_results(settings: Settings, selector: str, before: str | None) -> RunResults | None:
    """run_results.json of our build: new since we started, and for our selector.

    Anything else (dbt failed before writing it, or another dbt invocation overwrote it in the
    moment between our build and this read) means the node results of this run are unknown.
    """
    path = find_artifact(settings.target_dir, "run_results")
    if path is None:
        return None
    try:
        results = load_run_results(path)
    except ArtifactError:
        return None
    if results.invocation_id == before or results.selector != selector:
        return None
    return results


def _finish_run(
    service: PortalService, run_id: int, selector: str, before: str | None, result: DbtResult | None
) -> tuple[int, str, str]:
    """Close the run record, link it to dbt's invocation and sync its node results."""
    settings = service.settings
    started_as = run_id
    results = _own_results(settings, selector, before) if result is not None else None
    if result is None:
        status, message = "error", "dbt could not be started; see the portal's log."
    elif result.stopped:  # timeout or cancel: whatever it built before is no success
        status, message = "error", result.message
    elif results is None:
        status = "error"
        message = f"dbt exited with code {result.returncode} without results. The end of its log:\n{result.tail(15)}"
    else:
        status = "success" if result.ok else run_status(r.status for r in results.results)
        if status == "success" and not result.ok:
            status = "error"  # dbt failed outside any node (e.g. a timeout)
        failed = [r.unique_id for r in results.results if r.status in BUILD_FAILED]
        message = "built and tested" if status == "success" else nodes_failed(failed)
    log_text = result.log[-MAX_LOG_CHARS:] if result else None
    with service.sessions.begin() as session:
        run = session.get(Run, run_id)
        assert run is not None
        if results is not None:
            # Another process (the UI, the API) may have synced this invocation already: keep its
            # row, which holds the node results, and carry what only we know over to it.
            synced = session.scalar(sa.select(Run).where(Run.invocation_id == results.invocation_id))
            if synced is not None and synced.id != run.id:
                for column in ("command", "selector", "target", "triggered_by", "product_id", "started_at"):
                    setattr(synced, column, getattr(run, column))
                session.delete(run)
                run = synced
            else:
                run.invocation_id = results.invocation_id
            # The node results land in the transaction that marks the run finished: whoever
            # sees it finished (an API client polling it) sees what it built.
            manifest_path = find_artifact(settings.target_dir, "manifest")
            try:
                manifest = load_manifest(manifest_path) if manifest_path is not None else None
            except ArtifactError:
                manifest = None  # the reload below reports it; the run is closed all the same
            if manifest is not None:
                sync(
                    session,
                    Artifacts(manifest, results, None),
                    data_products_path=settings.data_products_path,
                )
        run.status = status
        run.finished_at = datetime.now(UTC)
        run.elapsed_s = result.elapsed_s if result else 0.0
        run.log = log_text
        run.details = {
            "refresh": True,
            "returncode": result.returncode if result else None,
            "log_truncated": bool(result and len(result.log) > MAX_LOG_CHARS),
            **({"stopped": result.stopped} if result and result.stopped else {}),
            **({"cancelled_by": result.stopped_by} if result and result.stopped_by else {}),
        }
        session.flush()
        run_id = run.id
    if results is not None:
        service.reload()  # the new manifest and results for everyone reading the service
    announce_end(service, run_id, started_as=started_as)  # lineage backends hear how it ended
    return run_id, status, message


def describe_progress(progress: Progress) -> str:
    """One line for a progress bar or st.status."""
    if progress.phase == "finished":
        return f"Refreshed {progress.total} product{'s' * (progress.total != 1)}."
    where = f"{progress.position}/{progress.total} {progress.product}"
    if progress.phase == "build" and progress.nodes_total:
        return f"{where}: building, node {progress.nodes_done} of {progress.nodes_total}"
    return f"{where}: {progress.phase}" + (
        f" ({progress.message.splitlines()[0]})" if progress.message else ""
    )
