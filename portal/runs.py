"""The run trail: every dbt run the catalog database records, and how it is read back.

Three kinds of run become rows of `runs` (with their `node_results`): the portal's refreshes
(portal/observability/refresh.py), its creation runs with their write-audit-publish
(portal/creation/flow.py), and dbt's own runs, synced from run_results.json
(portal/project/sync.py). They share one table, so they share one module:

- `start_run` is the only place that records a run as running, so every kind of run starts out
  with the same columns set;
- the history, the logs, the node timings, the slowest models and the API's run detail read all
  three kinds alike;
- `PublishRecord` is a creation run's `details["wap"]` as the run view and the API show it;
- `registration` is a product's own row, by which its runs are found before the manifest knows
  it (while it is being created);
- `cancel_run` stops a running creation's or refresh's dbt on behalf of the product's owner or an
  admin, whichever portal process builds it: the process that builds a run stops its dbt
  (portal/project/dbt_runner.py keeps the registry), directly or when its heartbeat thread finds
  the request; the run then ends `error`, its details saying `stopped: cancelled` and who.

Closing a run stays with whoever started it: a refresh and a creation finish theirs differently
(what they sync, what their details keep), and each then calls `announce_end`.

This is also the one place that tells lineage backends about runs (OpenLineage,
portal/integrations/openlineage.py): `start_run` and `begin_queued` announce a START, `announce_end`
(and `end_interrupted`) the COMPLETE, FAIL or ABORT, from the run's own row. A queued run that never
started is no run to them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog_db.models import AuditEvent, DataProduct, NodeResult, Run
from portal.audit import Change, product_history, record_event
from portal.auth.access import PermissionDenied, may, role_of
from portal.auth.identity import Identity
from portal.errors import Conflict
from portal.integrations import openlineage
from portal.project import dbt_runner
from portal.project.artifacts import ArtifactError
from portal.project.statuses import BUILD_FAILED, nodes_failed
from portal.service import NotFound, PortalService

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 60
# Every DuckDB record names its audit schema; one that does not was audited where DuckDB always
# has been (creation's AUDIT_SCHEMA), and this module may not import creation to say so.
_DEFAULT_AUDIT_SCHEMA = "audit"


# --- starting a run ------------------------------------------------------------------------


def start_run(
    service: PortalService,
    *,
    selector: str,
    triggered_by: str,
    product_id: int | None,
    details: dict[str, Any] | Callable[[int], dict[str, Any]] | None = None,
    command: str = "build",
    queued: bool = False,
) -> int:
    """Record a run as running (or `queued`: waiting for the build lock), started (or requested)
    now on the configured target; returns its id. Either way it holds a lease from now on.

    `details` may be a function of the new run's id, for details that name the run (a creation's
    Nessie branch): they are written in the same transaction, so no reader sees the run without them.
    """
    with service.sessions.begin() as session:
        run = Run(
            command=command,
            selector=selector,
            target=service.settings.dbt_target,
            status="queued" if queued else "running",
            triggered_by=triggered_by,
            product_id=product_id,
            started_at=datetime.now(UTC),
        )
        session.add(run)
        session.flush()
        given = details(run.id) if callable(details) else (details or {})
        run.details = {**given, LEASE: _lease()}
        run_id = run.id
    _heartbeats.beat_for(service, run_id)
    if not queued:
        _announce(service, run_id, started=True)
    return run_id


def begin_queued(
    service: PortalService, run_id: int, details: dict[str, Any] | Callable[[int], dict[str, Any]]
) -> None:
    """A queued run starts: running from now, with `details` (its lease stays)."""
    with service.sessions.begin() as session:
        run = session.get_one(Run, run_id)
        given = details(run_id) if callable(details) else details
        run.status, run.started_at = "running", datetime.now(UTC)
        run.details = {**given, LEASE: (run.details or {}).get(LEASE) or _lease()}
    _announce(service, run_id, started=True)


def forget_queued(service: PortalService, run_id: int) -> None:
    """Delete a queued run that never started because its submission was refused at once (the
    caller heard why; a run record would only be noise)."""
    with service.sessions.begin() as session:
        run = session.get(Run, run_id)
        if run is not None and run.status == "queued":
            session.delete(run)


# --- leases: a running run belongs to a live process ----------------------------------------
#
# A run is `running` while the process that started it builds it. If that process dies (kill -9,
# a crash, the machine going away) nothing would ever end the run, and its product would stay
# `building`, refusing every change. So each running run holds a lease in its details: the
# host, the process (pid and its start time, so a reused pid is not mistaken for it) and a
# heartbeat. A lease has expired when, on this host, that process no longer runs, or, from
# another host, its heartbeat is older than LEASE_S; `creation/recovery.py` then ends the run
# as interrupted and puts its product back.

LEASE = "lease"
HEARTBEAT_S = 15.0
LEASE_S = 90.0  # six missed heartbeats: the process is gone, or so stuck that it may as well be
# How soon a cancel asked through another portal process reaches the one building the run.
CANCEL_POLL_S = 1.0
CANCEL_REQUESTED = "run.cancel_requested"


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), None if there is none (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22: the fields after the command's `)`


def _lease() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "process_start": process_start(pid),
        "heartbeat": datetime.now(UTC).isoformat(),
    }


def lease_expired(lease: Any, now: datetime | None = None) -> bool:
    """Whether the process holding `lease` is gone (a run without a lease has nobody building it)."""
    if not isinstance(lease, dict):
        return True
    if lease.get("host") == socket.gethostname():
        pid = lease.get("pid")
        return not isinstance(pid, int) or process_start(pid) != lease.get("process_start")
    try:
        beat = datetime.fromisoformat(str(lease.get("heartbeat")))
    except ValueError:
        return True
    return ((now or datetime.now(UTC)) - beat).total_seconds() > LEASE_S


class _Heartbeats:
    """One daemon thread per process that tends the runs this process builds: it renews their
    leases, and passes on cancels asked through another process (see `cancel_run`)."""

    def __init__(self) -> None:
        self._runs: dict[int, sessionmaker[Session]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def beat_for(self, service: PortalService, run_id: int) -> None:
        with self._lock:
            self._runs[run_id] = service.sessions
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="run-heartbeats", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while True:
            time.sleep(CANCEL_POLL_S)
            beat = time.monotonic() - last_beat >= HEARTBEAT_S
            if beat:
                last_beat = time.monotonic()
            with self._lock:
                runs = dict(self._runs)
            for run_id, sessions in runs.items():
                try:
                    _pass_on_cancels(sessions, run_id)
                    still_running = _renew(sessions, run_id) if beat else True
                except SQLAlchemyError:
                    log.warning("could not tend run %s", run_id, exc_info=True)
                    continue
                if not still_running:
                    with self._lock:
                        self._runs.pop(run_id, None)


def _pass_on_cancels(sessions: sessionmaker[Session], run_id: int) -> None:
    """Cancel run `run_id`'s dbt here if someone asked another process to (its audit event is
    the request). Asking again is harmless: the first cancel is the one that counts."""
    if not dbt_runner.is_cancellable(run_id):
        return  # not building right now (still queued, or past its build): nothing to stop yet
    with sessions() as session:
        asked_by = session.scalar(
            sa.select(AuditEvent.actor)
            .where(
                AuditEvent.object_type == "run",
                AuditEvent.object_id == str(run_id),
                AuditEvent.action == CANCEL_REQUESTED,
            )
            .order_by(AuditEvent.id)
            .limit(1)
        )
    if asked_by is not None:
        dbt_runner.cancel(run_id, asked_by)


ACTIVE = ("queued", "running")  # the runs whose lease is renewed


def _renew(sessions: sessionmaker[Session], run_id: int) -> bool:
    """Renew the run's lease while it is queued or running. The write is conditional on that in
    the UPDATE itself: the run may end between the read and the write (its build records its
    details at that moment), and an unconditional write would put the pending details back."""
    with sessions.begin() as session:
        run = session.get(Run, run_id)
        if run is None or run.status not in ACTIVE:
            return False
        details = dict(run.details or {})
        details[LEASE] = {**(details.get(LEASE) or _lease()), "heartbeat": datetime.now(UTC).isoformat()}
        renewed = session.execute(
            sa.update(Run)
            .where(Run.id == run_id, Run.status.in_(ACTIVE))
            .values(details=details)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(renewed, "rowcount", 0))


_heartbeats = _Heartbeats()


@dataclass(frozen=True)
class OrphanRun:
    """A run still marked running whose process is gone."""

    id: int
    product: str | None
    details: dict[str, Any]


def orphan_runs(service: PortalService) -> list[OrphanRun]:
    """Running runs whose lease has expired, oldest first."""
    with service.sessions() as session:
        rows = session.execute(
            sa.select(Run.id, DataProduct.name, Run.details)
            .outerjoin(DataProduct, Run.product_id == DataProduct.id)
            .where(Run.status.in_(("queued", "running")))
            .order_by(Run.id)
        ).tuples()
        found = [
            (run_id, name, details if isinstance(details, dict) else {}) for run_id, name, details in rows
        ]
    return [
        OrphanRun(run_id, name, details)
        for run_id, name, details in found
        if lease_expired(details.get(LEASE))
    ]


def end_interrupted(service: PortalService, run_id: int, message: str) -> bool:
    """End an orphan run as interrupted; False if it ended meanwhile (someone else recovered it)."""
    with service.sessions.begin() as session:
        run = session.get(Run, run_id)
        if run is None or run.status not in ("queued", "running"):
            return False
        was_running = run.status == "running"
        now = datetime.now(UTC)
        run.status, run.finished_at = "error", now
        started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
        run.elapsed_s = (now - started).total_seconds()
        run.log = "\n".join(line for line in ((run.log or ""), message) if line)
        run.details = {**(run.details or {}), "interrupted": message}
    if was_running:
        announce_end(service, run_id)
    return True


# --- telling lineage backends ---------------------------------------------------------------


def announce_end(service: PortalService, run_id: int, *, started_as: int | None = None) -> None:
    """Run `run_id` has ended (its closing transaction committed): its OpenLineage event is queued.
    `started_as` is the id it started under, when its row was merged into dbt's own (a refresh).
    Never raises and never waits: a lineage backend cannot fail or slow a build."""
    _announce(service, run_id, started=False, started_as=started_as)


def _announce(service: PortalService, run_id: int, *, started: bool, started_as: int | None = None) -> None:
    if not openlineage.enabled(service.settings):
        return
    try:
        facts = _lineage_facts(service, run_id, started_as or run_id)
    except SQLAlchemyError:
        log.warning("OpenLineage: could not read run %s", run_id, exc_info=True)
        return
    if facts is None:
        return

    def note(line: str) -> None:
        _append_log(service, run_id, line)

    if started:
        openlineage.run_started(service, facts, note)
    else:
        openlineage.run_ended(service, facts, note)


def _lineage_facts(service: PortalService, run_id: int, started_as: int) -> openlineage.RunFacts | None:
    """What the run's OpenLineage event says, from its row and its node results."""
    with service.sessions() as session:
        run = session.get(Run, run_id)
        if run is None:
            return None
        details = run.details if isinstance(run.details, dict) else {}
        product = run.product
        results = session.execute(
            sa.select(NodeResult.unique_id, NodeResult.status, NodeResult.resource_type).where(
                NodeResult.run_id == run_id
            )
        ).all()
        started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
        measured = product.row_count_measured_at if product is not None else None
        if measured is not None and measured.tzinfo is None:
            measured = measured.replace(tzinfo=UTC)
        row_count = product.row_count if product is not None and measured and measured >= started else None
        name = product.name if product is not None else (run.selector or "").lstrip("+") or None
        status, selector, triggered_by = run.status, run.selector, run.triggered_by
    wap_details = details.get("wap")
    wap: dict[str, Any] = wap_details if isinstance(wap_details, dict) else {}
    publish = PublishRecord.from_details(details, status=status)
    nessie = None
    if publish is not None and publish.engine == "nessie":
        nessie = openlineage.NessieCommits(
            branch=publish.branch,
            catalog=str(wap["catalog"]) if wap.get("catalog") else None,
            outcome=publish.outcome,
            main_hash_before=publish.main_hash_before,
            branch_hash=publish.branch_hash,
            main_hash_after=publish.main_hash_after,
        )
    failed = [uid for uid, node_status, _ in results if node_status in BUILD_FAILED]
    message = details.get("interrupted") or details.get("publish_error")
    if not message and failed:
        message = nodes_failed(failed)
    if not message and details.get("stopped"):
        message = f"dbt was stopped ({details['stopped']})"
    return openlineage.RunFacts(
        run_id=run_id,
        started_as=started_as,
        started_at=started,
        kind="refresh" if details.get("refresh") else "creation",
        product=name,
        selector=selector,
        triggered_by=triggered_by,
        status=status,
        stopped=details.get("stopped"),
        interrupted=details.get("interrupted"),
        message=str(message) if message else None,
        nessie=nessie,
        tests=tuple((uid, s) for uid, s, kind in results if kind in ("test", "unit_test")),
        row_count=row_count,
    )


def _append_log(service: PortalService, run_id: int, line: str) -> None:
    """Add a line to an ended run's log (its closer wrote the rest)."""
    with service.sessions.begin() as session:
        run = session.get(Run, run_id)
        if run is not None:
            run.log = "\n".join(part for part in (run.log or "", line) if part)


# --- what a creation run's write-audit-publish did -----------------------------------------


@dataclass(frozen=True)
class PublishRecord:
    """Where a creation run was audited and whether it was published, read back from a run's
    details["wap"] for the run view and the API. Nessie runs also have their branch and hashes."""

    engine: str  # duckdb or nessie
    published: bool
    outcome: str  # running, in_review, published, failed, conflict or error
    audit_schema: str | None = None
    branch: str | None = None
    main_hash_before: str | None = None
    branch_hash: str | None = None
    main_hash_after: str | None = None
    branch_deleted: bool | None = None
    message: str | None = None

    @classmethod
    def from_details(cls, details: Any, *, status: str | None = None) -> PublishRecord | None:
        """The record of a run's details (None for runs that publish nothing, e.g. refreshes).
        `status` is the run's own, for records that do not carry an outcome (DuckDB's)."""
        wap_details = details.get("wap") if isinstance(details, dict) else None
        if not isinstance(wap_details, dict):
            return None
        published = bool(wap_details.get("published"))

        def text(key: str) -> str | None:
            value = wap_details.get(key)
            return str(value) if value is not None else None

        outcome = text("outcome") or (
            "published" if published else ("running" if status in ("queued", "running") else "failed")
        )
        deleted = wap_details.get("branch_deleted")
        return cls(
            engine=text("engine") or "duckdb",  # records written before Nessie runs existed
            published=published,
            outcome=outcome,
            audit_schema=text("audit_schema"),
            branch=text("branch"),
            main_hash_before=text("main_hash_before"),
            branch_hash=text("branch_hash"),
            main_hash_after=text("main_hash_after"),
            branch_deleted=None if deleted is None else bool(deleted),
            message=text("message"),
        )

    def summary(self) -> str:
        """One line: where it was audited and what became of it."""
        # The record's own engine, not the configured one: a run may predate a change of engine.
        if self.engine == "nessie":
            where = f"Nessie branch `{self.branch}`"
        else:
            where = f"audit schema `{self.audit_schema or _DEFAULT_AUDIT_SCHEMA}`"
        if self.outcome == "running":
            return f"{where}: building"
        if self.engine != "nessie":
            return f"{where}: " + ("copied to gold" if self.published else f"{self.outcome}, gold untouched")
        if self.published:
            return f"{where}: merged into main ({_short(self.main_hash_before)} → {_short(self.main_hash_after)})"
        kept = "deleted" if self.branch_deleted else "left in place"
        return f"{where}: {self.outcome}, branch {kept}, main untouched at {_short(self.main_hash_after)}"


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "?"


# --- run history ---------------------------------------------------------------------------


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
            sa.func.sum(sa.case((NodeResult.status.in_(tuple(BUILD_FAILED)), 1), else_=0)).label("failed"),
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


def registration(service: PortalService, key: str) -> DataProduct | None:
    """The catalog database's row of a data product, by name or dbt unique id (None if unregistered)."""
    with service.sessions() as session:
        return session.scalar(
            sa.select(DataProduct).where(
                sa.or_(DataProduct.name == key, DataProduct.unique_id == key), DataProduct.status != "removed"
            )
        )


def product_changes(service: PortalService, key: str, *, limit: int = 200) -> list[Change]:
    """A product's recorded changes, newest first, by name or dbt unique id; also while it is being
    created, and after it was discarded (its history is all that is left of it)."""
    try:
        name = service.resolve(key).name
    except NotFound:
        row = registration(service, key)
        if row is not None:
            name = row.name
        elif product_history(service, key, limit=1):
            name = key
        else:
            raise
    return product_history(service, name, limit=limit)


def product_runs(service: PortalService, key: str, *, limit: int = 50) -> list[RunSummary]:
    """A product's runs, newest first, also while it is being created (not yet in the manifest)."""
    try:
        return run_history(service, key, limit=limit)
    except NotFound:
        row = registration(service, key)
        if row is None:
            raise
    with service.sessions() as session:
        runs = session.scalars(
            sa.select(Run).where(Run.product_id == row.id).order_by(Run.id.desc()).limit(limit)
        ).all()
    return [
        RunSummary(
            r.id,
            r.started_at,
            r.finished_at,
            r.elapsed_s,
            r.status,
            r.command,
            r.selector,
            r.triggered_by,
            0,
            0,
            0,
            PublishRecord.from_details(r.details, status=r.status),
        )
        for r in runs
    ]


def run_log(service: PortalService, run_id: int) -> str | None:
    """dbt's log of a run the portal started (runs only synced from artifacts have none)."""
    with service.sessions() as session:
        return session.scalar(sa.select(Run.log).where(Run.id == run_id))


# --- node timings --------------------------------------------------------------------------


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


# --- one run in full -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunDetail:
    id: int
    status: str
    command: str
    selector: str | None
    target: str | None
    triggered_by: str
    product: str | None
    started_at: datetime
    finished_at: datetime | None
    elapsed_s: float | None
    invocation_id: str | None
    nodes: list[NodeTiming]
    log_tail: str
    publish: PublishRecord | None = None

    @property
    def finished(self) -> bool:
        return self.status not in {"queued", "running"}


def _run_row(session: Session, run_id: int) -> Run:
    row = session.get(Run, run_id)
    if row is None:
        newest = session.scalar(sa.select(sa.func.max(Run.id)))
        raise NotFound(f"There is no run {run_id}; the newest run is {newest or 'none yet'}.")
    return row


def run_detail(service: PortalService, run_id: int, *, tail_lines: int = LOG_TAIL_LINES) -> RunDetail:
    """A run with every node's timing (slowest first) and the end of its log; NotFound if unknown."""
    with service.sessions() as session:
        row = _run_row(session, run_id)
        product = row.product.name if row.product is not None else None
    return RunDetail(
        id=row.id,
        status=row.status,
        command=row.command,
        selector=row.selector,
        target=row.target,
        triggered_by=row.triggered_by,
        product=product,
        started_at=row.started_at,
        finished_at=row.finished_at,
        elapsed_s=row.elapsed_s,
        invocation_id=row.invocation_id,
        nodes=run_timings(service, run_id),
        log_tail="\n".join((row.log or "").splitlines()[-tail_lines:]),
        publish=PublishRecord.from_details(row.details, status=row.status),
    )


# --- cancelling a run -----------------------------------------------------------------------


class NotCancellable(Conflict):
    """The run has finished, or its build is not running in this process; the message says which."""


def may_cancel(identity: Identity, product: DataProduct | None) -> bool:
    """Who may cancel a run: whoever may start a build of its product (its creator or owner with
    the creator role, or an admin; runs of no registered product only an admin)."""
    return may(identity, "run", product)


def cancel_obstacle(service: PortalService, run_id: int) -> str | None:
    """Why a cancel of run `run_id` would stop no build, in words; None when it would."""
    with service.sessions() as session:
        row = _run_row(session, run_id)
        status, lease = row.status, (row.details or {}).get(LEASE)
    return _obstacle(run_id, status, lease)


def _obstacle(run_id: int, status: str, lease: Any) -> str | None:
    if status not in ("queued", "running"):
        return f"Run {run_id} has already finished ({status}); there is nothing to cancel."
    if dbt_runner.is_cancellable(run_id):
        return None
    if lease_expired(lease):
        return (
            f"Run {run_id} was left `running` by a portal process that is gone, so there is no build "
            "to stop; the portal ends it as interrupted at its next start or submission, after which "
            "its product can be discarded or resubmitted."
        )
    # A live portal process (this one or another) has it, queued or about to build or building:
    # its heartbeat thread passes the request on as soon as its dbt runs (`_pass_on_cancels`).
    return None


def cancel_run(service: PortalService, run_id: int, identity: Identity) -> RunDetail:
    """Stop run `run_id`'s dbt build; returns the run, still running, which ends `error` shortly.

    The build may run in this process or in another portal process (an API worker, the UI, cron,
    on this host or another), and may still be queued: the request is audited
    (`run.cancel_requested`), and that audit event is what the process holding the run looks for
    (its heartbeat thread, every CANCEL_POLL_S), stopping its dbt as soon as it runs.

    NotFound for no such run, PermissionDenied unless `may_cancel`, NotCancellable when it has
    finished or the process that held it is gone. The run's own record says it was cancelled and
    by whom once it has stopped. A cancel that meets the build as it ends comes too late: the run
    then finishes as it would have.
    """
    with service.sessions() as session:
        row = _run_row(session, run_id)
        product, status, selector = row.product, row.status, row.selector
        lease = (row.details or {}).get(LEASE)
    if not may_cancel(identity, product):
        role = role_of(identity)
        if role not in ("creator", "admin"):
            why = (
                f"{identity.user} has the {role} role; cancelling needs the creator role (for runs of "
                "one's own products) or admin"
            )
        elif product is None:
            why = "it builds no registered data product, so only an admin may"
        else:
            why = (
                f"its product {product.name} was created by {product.created_by} and is owned by "
                f"{product.owner or 'nobody'}; ask one of them or an admin"
            )
        raise PermissionDenied(f"{identity.user} may not cancel run {run_id}: {why}.")
    obstacle = _obstacle(run_id, status, lease)
    if obstacle is not None:
        raise NotCancellable(obstacle)
    # Building here: stopped now. Otherwise the audit event below is the request.
    dbt_runner.cancel(run_id, identity.user)
    record_event(
        service,
        identity,
        CANCEL_REQUESTED,
        "run",
        str(run_id),
        {"product": product.name if product is not None else None, "selector": selector},
    )
    return run_detail(service, run_id)


__all__ = [
    "LOG_TAIL_LINES",
    "ModelSpeed",
    "NodeTiming",
    "NotCancellable",
    "PublishRecord",
    "RunDetail",
    "RunSummary",
    "announce_end",
    "begin_queued",
    "cancel_obstacle",
    "cancel_run",
    "forget_queued",
    "may_cancel",
    "product_runs",
    "registration",
    "run_detail",
    "run_history",
    "run_log",
    "run_timings",
    "slowest_models",
    "start_run",
]
