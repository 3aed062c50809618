"""Long work behind a quick answer: creations, edits and refreshes in background threads.

A build takes from seconds to minutes, and an API call (or a page) should not hang on it. A
`Submission` runs the service call (`creation.create`, `creation.edit`, `refresh.refresh_one`)
in its own thread and lets the caller wait only until there is something to answer with:

- the call finished at once: it was refused (nothing written) or done;
- its run exists in the catalog database: the caller can hand out the run id to follow;
- it is queued behind another build on the project (nothing to follow yet).

The service functions create their run rows themselves, so the run is found in the catalog
database the moment they report progress (a stage line, a progress callback); a run of this
product newer than the submission is this submission's own, because the name is claimed by the
creation and refreshes are serialised by the refresh lock.

Also here: what the API shows of runs and registrations, which the service has no call for.
This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from catalog_db.models import DataProduct, Run
from portal.auth.identity import Identity
from portal.creation import flow as creation
from portal.creation.publish.base import PublishRecord
from portal.creation.spec import ProductSpec
from portal.observability import refresh
from portal.service import NotFound, PortalService

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 60


@dataclass
class Submission:
    """One piece of background work and what is known about it so far."""

    kind: str  # create, edit, refresh
    name: str
    identity: Identity
    run_mark: int  # the highest run id before the submission: our run is newer
    run_id: int | None = None
    queued: bool = False
    result: Any = None  # creation.CreationResult or refresh.RefreshResult, once done
    error: BaseException | None = None
    _answerable: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None) -> Submission:
        """Until the run exists, the work is queued or done, or `timeout` (None: until done)."""
        if timeout is None:
            self._done.wait()
        else:
            self._answerable.wait(timeout)
        return self

    def started(self, run_id: int) -> None:
        self.run_id = run_id
        self._answerable.set()

    def waiting(self) -> None:
        """Queued behind another build: nothing to follow yet, but worth answering."""
        self.queued = True
        self._answerable.set()

    def finished(self) -> None:
        self._done.set()
        self._answerable.set()


class Jobs:
    """The background work of one service; `join` waits for it (at shutdown, in tests)."""

    def __init__(self, service: PortalService) -> None:
        self.service = service
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def create(self, spec: ProductSpec, identity: Identity) -> Submission:
        submission = self._submission("create", spec.name, identity)

        def work() -> Any:
            return creation.create(
                self.service, spec, identity, on_line=lambda line: self._said(submission, line)
            )

        return self._launch(submission, work)

    def edit(self, name: str, spec: ProductSpec, identity: Identity) -> Submission:
        submission = self._submission("edit", name, identity)

        def work() -> Any:
            return creation.edit(
                self.service, name, spec, identity, on_line=lambda line: self._said(submission, line)
            )

        return self._launch(submission, work)

    def refresh(self, name: str, identity: Identity) -> Submission:
        submission = self._submission("refresh", name, identity)

        def progressed(progress: refresh.Progress) -> None:
            if progress.phase == "build":
                self._look_for_run(submission)

        def said(_line: str) -> None:
            # Before the run exists, the only line is the refresh lock's "waiting for another refresh".
            if submission.run_id is None:
                submission.waiting()

        def work() -> Any:
            return refresh.refresh_one(
                self.service, name, triggered_by=identity.user, on_progress=progressed, on_line=said
            )

        return self._launch(submission, work)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every running submission; False if some were still running at `timeout`."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in threads)

    # -- internals ---------------------------------------------------------------------------
    def _submission(self, kind: str, name: str, identity: Identity) -> Submission:
        with self.service.sessions() as session:
            mark = session.scalar(sa.select(sa.func.max(Run.id))) or 0
        return Submission(kind, name, identity, mark)

    def _launch(self, submission: Submission, work: Callable[[], Any]) -> Submission:
        def run() -> None:
            try:
                submission.result = work()
                submission.run_id = getattr(submission.result, "run_id", None) or submission.run_id
            except BaseException as exc:  # reported through the submission, and logged
                log.exception("%s of %s failed", submission.kind, submission.name)
                submission.error = exc
            finally:
                submission.finished()
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"{submission.kind}-{submission.name}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return submission

    def _said(self, submission: Submission, line: str) -> None:
        """A creation's progress: its own stage lines tell when to look for the run."""
        if line == creation.WAITING:
            submission.waiting()
        elif line.startswith(creation.STAGE) and submission.run_id is None:
            self._look_for_run(submission)

    def _look_for_run(self, submission: Submission) -> None:
        query = sa.select(sa.func.max(Run.id)).where(Run.id > submission.run_mark)
        if submission.kind == "refresh":
            query = query.where(
                Run.selector == f"+{submission.name}", Run.triggered_by == submission.identity.user
            )
        else:
            product = sa.select(DataProduct.id).where(DataProduct.name == submission.name).scalar_subquery()
            query = query.where(Run.product_id == product, Run.selector == submission.name)
        with self.service.sessions() as session:
            found = session.scalar(query)
        if found is not None:
            submission.started(found)


# --- what the API shows of registrations and runs ------------------------------------------


def registration(service: PortalService, key: str) -> DataProduct | None:
    """The catalog database's row of a data product, by name or dbt unique id (None if unregistered)."""
    with service.sessions() as session:
        return session.scalar(
            sa.select(DataProduct).where(
                sa.or_(DataProduct.name == key, DataProduct.unique_id == key), DataProduct.status != "removed"
            )
        )


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
    nodes: list[refresh.NodeTiming]
    log_tail: str
    publish: PublishRecord | None = None

    @property
    def finished(self) -> bool:
        return self.status not in {"queued", "running"}


def run_detail(service: PortalService, run_id: int, *, tail_lines: int = LOG_TAIL_LINES) -> RunDetail:
    """A run with every node's timing (slowest first) and the end of its log; NotFound if unknown."""
    with service.sessions() as session:
        row = session.get(Run, run_id)
        if row is None:
            newest = session.scalar(sa.select(sa.func.max(Run.id)))
            raise NotFound(f"There is no run {run_id}; the newest run is {newest or 'none yet'}.")
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
        nodes=refresh.run_timings(service, run_id),
        log_tail="\n".join((row.log or "").splitlines()[-tail_lines:]),
        publish=PublishRecord.from_details(row.details, status=row.status),
    )


def product_runs(service: PortalService, key: str, *, limit: int = 50) -> list[refresh.RunSummary]:
    """A product's runs, newest first, also while it is being created (not yet in the manifest)."""
    try:
        return refresh.run_history(service, key, limit=limit)
    except NotFound:
        row = registration(service, key)
        if row is None:
            raise
    with service.sessions() as session:
        runs = session.scalars(
            sa.select(Run).where(Run.product_id == row.id).order_by(Run.id.desc()).limit(limit)
        ).all()
    return [
        refresh.RunSummary(
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
