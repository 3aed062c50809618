"""Long work behind a quick answer: creations, edits and refreshes in background threads.

A build takes from seconds to minutes, and an API call (or a page) should not hang on it. A
`Submission` runs the service call (`creation.create`, `creation.edit`, `refresh.refresh_one`)
in its own thread and lets the caller wait only until there is something to answer with:

- the call finished at once: it was refused (nothing written) or done;
- its run exists in the catalog database: the caller can hand out the run id to follow;
- it is queued behind another build on the project (a creation's queued run can be followed
  already; a refresh has no run until it starts).

The service functions create their run rows themselves, so the run is found in the catalog
database the moment they report progress (a stage line, a progress callback); a run of this
product newer than the submission is this submission's own, because the name is claimed by the
creation and refreshes are serialised by the refresh lock.

This module imports no web framework (DESIGN principle 1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from catalog_db.models import DataProduct, Run
from portal.auth.identity import Identity
from portal.creation import flow as creation
from portal.creation.recovery import recover_interrupted
from portal.creation.spec import ProductSpec
from portal.observability import refresh
from portal.service import PortalService

log = logging.getLogger(__name__)


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

    def recover(self) -> list[str]:
        """End the runs of processes that died, putting their products back (creation/recovery.py).
        Failing to recover must not stop a submission or the API's start: it is logged."""
        try:
            return recover_interrupted(self.service)
        except Exception:
            log.exception("recovering interrupted runs failed")
            return []

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
                self.service, name, identity=identity, on_progress=progressed, on_line=said
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
        self.recover()  # a product left `building` by a dead process would refuse this submission
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
            self._look_for_run(submission, answer=False)  # a creation's queued run, to follow
            submission.waiting()
        elif line.startswith(creation.STAGE) and submission.run_id is None:
            self._look_for_run(submission)

    def _look_for_run(self, submission: Submission, *, answer: bool = True) -> None:
        """The submission's run, once it exists; `answer`: the caller may be answered with it."""
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
            if answer:
                submission.started(found)
            else:
                submission.run_id = found
