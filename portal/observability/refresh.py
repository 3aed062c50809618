"""Automated refresh and run performance.

`refresh_due` builds every data product whose promised update frequency says it is due, with
its upstream models (`dbt build --select +name`), records each build as a Run (status, log and,
through the sync of run_results.json, every node's timing), then profiles the product and
records drift. It is meant for cron or an orchestrator every few minutes:

- a lock per project and catalog makes an overlapping invocation exit at once (RefreshBusy)
  instead of queueing behind the running one; whatever is still due is picked up next time;
- a product whose build or profile fails is recorded as failed and the loop moves on;
- progress goes to a callback (a terminal progress bar, st.status in the UI).

The run history functions at the end read what builds (ours, or anyone's dbt synced into the
catalog) left behind: run durations, per-model timings, the slowest models.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog_db.models import DataProduct, NodeResult, Run
from portal.creation.publish.base import PublishRecord
from portal.errors import Busy, Conflict
from portal.observability.freshness import FREQUENCY_PERIODS, describe_age, frequency_period
from portal.observability.history import profile_product
from portal.observability.profile import as_utc
from portal.project.artifacts import (
    ArtifactError,
    Artifacts,
    RunResults,
    find_artifact,
    load_manifest,
    load_run_results,
)
from portal.project.dbt_runner import DbtResult, lock_path, run_dbt
from portal.project.sync import run_status, sync
from portal.service import PortalService, last_successes
from portal.settings import Settings

log = logging.getLogger(__name__)

# Statuses of products that refresh keeps up to date; drafts and failed creations belong to the
# creation flow, removed products are gone from the manifest.
REFRESHED_STATUSES = ("published", "deprecated")
# Portal products that have not passed write-audit-publish: never refreshed into gold.
UNPUBLISHED_STATUSES = ("failed", "building", "draft", "removed")
# Enough of dbt's log to diagnose a failure without letting one chatty build bloat the catalog.
MAX_LOG_CHARS = 200_000
_FAILED = frozenset({"error", "fail", "runtime error"})
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
    entries = [e for e in service.catalog() if e.status in REFRESHED_STATUSES]
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


def refresh_lock_path(settings: Settings) -> Path:
    # Per project and catalog: two portals over different catalogs may refresh at the same time
    # (their dbt invocations still queue on the builder's per-project lock).
    key = f"{settings.dbt_project_dir.resolve()}|{settings.resolved_catalog_db_url}"
    return lock_path(settings).parent / f"refresh-{hashlib.sha1(key.encode()).hexdigest()[:12]}.lock"


@contextmanager
def refresh_lock(
    settings: Settings, *, wait: bool = False, on_line: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the refresh lock; raise RefreshBusy when another refresh holds it and `wait` is False."""
    path = refresh_lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                raise RefreshBusy(
                    f"Another refresh is running ({holder}), so this one stops here; whatever is still due "
                    "is picked up by the next run."
                ) from None
            if on_line:
                on_line(f"Another refresh is running ({holder}); waiting for it to finish …")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    wait: bool = True,
    on_progress: ProgressSink | None = None,
    on_line: LineSink | None = None,
) -> RefreshResult:
    """Build one product with its upstream models, record the run, profile it and record drift.

    Portal products that have not passed their audit (failed, still building, removed) are
    refused: `dbt build` would put them in gold untested, which only write-audit-publish may do.
    """
    name = service.resolve(key).name  # an unknown name fails here, before taking any lock
    with service.sessions() as session:
        status = session.scalar(sa.select(DataProduct.status).where(DataProduct.name == name))
    if status in UNPUBLISHED_STATUSES and status != "building":
        raise NotRefreshable(
            f"{name} is {status}: it has not passed its audit build, and a refresh would build it into "
            f"`{service.settings.gold_schema}` untested. Fix it and resubmit it (the Create page, or "
            f"PATCH /api/v1/data-products/{name}), or discard it."
        )
    if status == "building":
        raise NotRefreshable(f"{name} is being built right now; refresh it once that build has finished.")
    with refresh_lock(service.settings, wait=wait, on_line=on_line):
        return _refresh_all(service, [name], triggered_by, on_progress, on_line)[0]


def refresh_due(
    service: PortalService,
    *,
    now: datetime | None = None,
    triggered_by: str = "cron",
    on_progress: ProgressSink | None = None,
    on_line: LineSink | None = None,
) -> RefreshReport:
    """Refresh every due product, one after the other. Raises RefreshBusy if a refresh is running."""
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
    run_id = _start_run(service, name, selector, triggered_by)
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
        result = run_dbt(
            settings, ["build", "--select", selector], on_line=line, timeout_s=settings.refresh_timeout_s
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


def _start_run(service: PortalService, name: str, selector: str, triggered_by: str) -> int:
    with service.sessions.begin() as session:
        product_id = session.scalar(sa.select(DataProduct.id).where(DataProduct.name == name))
        run = Run(
            command="build",
            selector=selector,
            target=service.settings.dbt_target,
            status="running",
            triggered_by=triggered_by,
            product_id=product_id,
            started_at=datetime.now(UTC),
            details={"refresh": True},
        )
        session.add(run)
        session.flush()
        return run.id


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
    results = _own_results(settings, selector, before) if result is not None else None
    if result is None:
        status, message = "error", "dbt could not be started; see the portal's log."
    elif results is None:
        status = "error"
        message = f"dbt exited with code {result.returncode} without results. The end of its log:\n{result.tail(15)}"
    else:
        status = "success" if result.ok else run_status(r.status for r in results.results)
        if status == "success" and not result.ok:
            status = "error"  # dbt failed outside any node (e.g. a timeout)
        failed = [r.unique_id for r in results.results if r.status in _FAILED]
        message = (
            "built and tested"
            if status == "success"
            else f"{len(failed)} node(s) failed: {', '.join(failed[:5])}"
        )
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
        }
        session.flush()
        run_id = run.id
    if results is not None:
        service.reload()  # the new manifest and results for everyone reading the service
    return run_id, status, message


# --- run performance -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    id: int
    started_at: datetime
    finished_at: datetime | None
    elapsed_s: float | None
    status: str
    command: str
    selector: str | None
    triggered_by: str
    models: int
    tests: int
    failed: int
    publish: PublishRecord | None = None  # creation runs: audit schema or Nessie branch, and outcome


def run_history(service: PortalService, key: str | None = None, *, limit: int = 50) -> list[RunSummary]:
    """Runs, newest first; of one product when `key` is given (runs started for it or that built it)."""
    counts = (
        sa.select(
            NodeResult.run_id,
            sa.func.sum(sa.case((NodeResult.resource_type == "model", 1), else_=0)).label("models"),
            sa.func.sum(sa.case((NodeResult.resource_type.in_(("test", "unit_test")), 1), else_=0)).label(
                "tests"
            ),
            sa.func.sum(sa.case((NodeResult.status.in_(tuple(_FAILED)), 1), else_=0)).label("failed"),
        )
        .group_by(NodeResult.run_id)
        .subquery()
    )
    query = (
        sa.select(Run, counts.c.models, counts.c.tests, counts.c.failed)
        .outerjoin(counts, counts.c.run_id == Run.id)
        .order_by(Run.started_at.desc(), Run.id.desc())
        .limit(limit)
    )
    if key is not None:
        node = service.resolve(key)
        built = sa.select(NodeResult.run_id).where(NodeResult.unique_id == node.unique_id)
        started_for = sa.select(DataProduct.id).where(DataProduct.name == node.name)
        query = query.where(sa.or_(Run.id.in_(built), Run.product_id.in_(started_for)))
    with service.sessions() as session:
        rows: Sequence[Any] = session.execute(query).all()  # aggregate columns are untyped
    return [
        RunSummary(
            id=run.id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            elapsed_s=run.elapsed_s,
            status=run.status,
            command=run.command,
            selector=run.selector,
            triggered_by=run.triggered_by,
            models=int(models or 0),
            tests=int(tests or 0),
            failed=int(failed or 0),
            publish=PublishRecord.from_details(run.details, status=run.status),
        )
        for run, models, tests, failed in rows
    ]


def run_log(service: PortalService, run_id: int) -> str | None:
    """dbt's log of a run the portal started (runs only synced from artifacts have none)."""
    with service.sessions() as session:
        return session.scalar(sa.select(Run.log).where(Run.id == run_id))


@dataclass(frozen=True)
class NodeTiming:
    unique_id: str
    name: str
    resource_type: str
    status: str
    execution_time: float
    message: str | None


def _node_name(service: PortalService, unique_id: str) -> str:
    try:
        node = service.artifacts().manifest.get(unique_id)
    except ArtifactError:
        node = None
    return node.name if node else unique_id.split(".")[-1]


def run_timings(
    service: PortalService, run_id: int, *, kinds: Iterable[str] | None = None
) -> list[NodeTiming]:
    """Every node's execution time in a run, slowest first."""
    query = (
        sa.select(NodeResult).where(NodeResult.run_id == run_id).order_by(NodeResult.execution_time.desc())
    )
    if kinds is not None:
        query = query.where(NodeResult.resource_type.in_(tuple(kinds)))
    with service.sessions() as session:
        rows = session.scalars(query).all()
    return [
        NodeTiming(
            r.unique_id,
            _node_name(service, r.unique_id),
            r.resource_type,
            r.status,
            r.execution_time,
            r.message,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ModelSpeed:
    unique_id: str
    name: str
    runs: int
    mean_s: float
    max_s: float


def slowest_models(service: PortalService, *, runs: int = 20, limit: int = 10) -> list[ModelSpeed]:
    """Models by mean execution time over the last `runs` runs that built them."""
    recent = sa.select(Run.id).order_by(Run.started_at.desc()).limit(runs).scalar_subquery()
    mean = sa.func.avg(NodeResult.execution_time).label("mean")
    query = (
        sa.select(NodeResult.unique_id, sa.func.count(), mean, sa.func.max(NodeResult.execution_time))
        .where(
            NodeResult.run_id.in_(recent), NodeResult.resource_type == "model", NodeResult.status == "success"
        )
        .group_by(NodeResult.unique_id)
        .order_by(mean.desc())
        .limit(limit)
    )
    with service.sessions() as session:
        rows: Sequence[Any] = session.execute(query).all()  # aggregate columns are untyped
    return [
        ModelSpeed(uid, _node_name(service, uid), int(count), float(avg), float(top))
        for uid, count, avg, top in rows
    ]


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
