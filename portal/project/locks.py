"""Locks that hold across every portal process serving one project: one dbt build at a time,
one refresh at a time.

A lock has two layers, taken in this order:

- a file lock (`flock`) under var/locks, per project directory (and, for the refresh lock, per
  catalog): the Streamlit server, API workers and cron on this host queue on it. The kernel
  drops it when its process dies, so a crash never leaves it held.
- when the catalog database is PostgreSQL, also a session-level advisory lock in that database,
  keyed by the lock's purpose and the dbt project's name: portal processes on other hosts (each
  with its own checkout, so their own lock files) that share the catalog queue on it too. It is
  held by a connection of its own, opened for the hold and closed after it, so it also goes
  with its process: PostgreSQL releases a session's advisory locks when the session ends.

A caller that will not wait, or waits for at most some seconds (a reviewer's approval: long
enough for most builds, short enough for a web request), gets `LockBusy`, whose `holder` says
who has the lock ("pid 4242 on build-2 since 12:03:04 UTC"); a caller that waits is told once,
through `on_wait`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from portal.errors import Busy
from portal.settings import ROOT, Settings

LOCKS_DIR = ROOT / "var" / "locks"
# The advisory lock's first key: every Asgard lock in a database shares it, so pg_locks shows
# which locks are the portal's (the second key is the purpose and project).
_PG_NAMESPACE = 0x41534744  # "ASGD"
# How often a bounded wait tries the lock again.
_RETRY_S = 0.2


class LockBusy(Busy):
    """The lock is held and the caller chose not to wait; `holder` says who holds it."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"The lock is held by {holder}.")
        self.holder = holder


def holder_text() -> str:
    """Who this process is, for whoever finds the lock taken."""
    return f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%H:%M:%S} UTC"


def project_name(settings: Settings) -> str:
    """The dbt project's own name, the same on every host whatever its checkout's path; the
    directory's name if dbt_project.yml cannot say."""
    try:
        document = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        document = None
    name = document.get("name") if isinstance(document, dict) else None
    return str(name) if name else settings.dbt_project_dir.resolve().name


class PortalLock:
    """One named lock of one project: `with PortalLock(settings, "dbt").hold(wait=...)`."""

    def __init__(self, settings: Settings, purpose: str, *, file_key: str) -> None:
        self.purpose = purpose
        self.path = LOCKS_DIR / f"{purpose}-{hashlib.sha1(file_key.encode()).hexdigest()[:12]}.lock"
        url = settings.resolved_catalog_db_url
        self.pg_url = url if make_url(url).get_backend_name() == "postgresql" else None
        digest = hashlib.sha1(f"{purpose}|{project_name(settings)}".encode()).digest()
        self.pg_key = int.from_bytes(digest[:4], "big") & 0x7FFFFFFF  # an int4 that is never negative

    @contextmanager
    def hold(self, *, wait: bool | float, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold both layers. `wait`: True waits as long as it takes, False not at all, a number
        of seconds at most that long; then LockBusy. `on_wait` is called at most once, with the
        holder, before waiting."""
        told = False

        def waiting(holder: str) -> None:
            nonlocal told
            if on_wait and not told:
                on_wait(holder)
            told = True

        deadline = _deadline(wait)
        with self._file(deadline, waiting):
            if self.pg_url is None:
                yield
            else:
                with self._advisory(self.pg_url, deadline, waiting):
                    yield

    @contextmanager
    def _file(self, deadline: float | None, waiting: Callable[[str], None]) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process on this host"
                if deadline is None:
                    waiting(holder)
                    fcntl.flock(handle, fcntl.LOCK_EX)
                else:
                    _retry_until(deadline, holder, waiting, lambda: _try_flock(handle))
            handle.seek(0)
            handle.truncate()
            handle.write(holder_text())
            handle.flush()
            try:
                yield
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def _advisory(self, url: str, deadline: float | None, waiting: Callable[[str], None]) -> Iterator[None]:
        # The holder's application_name is how another process learns who holds the lock.
        engine = sa.create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"application_name": f"asgard {self.purpose} lock, {holder_text()}"[:63]},
        )
        keys = {"namespace": _PG_NAMESPACE, "key": self.pg_key}
        try:
            with engine.connect() as connection:

                def take() -> bool:
                    return bool(
                        connection.scalar(sa.text("SELECT pg_try_advisory_lock(:namespace, :key)"), keys)
                    )

                if not take():
                    holder = self._pg_holder(connection)
                    if deadline is None:
                        waiting(holder)
                        connection.execute(sa.text("SELECT pg_advisory_lock(:namespace, :key)"), keys)
                    else:
                        _retry_until(deadline, holder, waiting, take)
                try:
                    yield
                finally:
                    # Closing the connection would release it too; unlocking says so explicitly.
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:namespace, :key)"), keys)
        finally:
            engine.dispose()

    def _pg_holder(self, connection: sa.Connection) -> str:
        name = connection.scalar(
            sa.text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :namespace "
                "AND l.objid = :key AND l.objsubid = 2"
            ),
            {"namespace": _PG_NAMESPACE, "key": self.pg_key},
        )
        prefix = f"asgard {self.purpose} lock, "
        if isinstance(name, str) and name.startswith(prefix):
            return name[len(prefix) :]
        return "a portal process sharing this catalog database"


def _deadline(wait: bool | float) -> float | None:
    """When a hold stops waiting (monotonic clock): None waits for ever, the past not at all."""
    if wait is True:
        return None
    if wait is False:
        return time.monotonic()
    return time.monotonic() + max(0.0, float(wait))


def _try_flock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _retry_until(
    deadline: float, holder: str, waiting: Callable[[str], None], take: Callable[[], bool]
) -> None:
    """Try `take` until it succeeds or `deadline` passes (LockBusy naming `holder`)."""
    if time.monotonic() >= deadline:
        raise LockBusy(holder)
    waiting(holder)
    while not take():
        if time.monotonic() >= deadline:
            raise LockBusy(holder)
        time.sleep(min(_RETRY_S, max(0.0, deadline - time.monotonic())))


def build_lock(settings: Settings) -> PortalLock:
    """The lock every dbt invocation and every write to the warehouse holds."""
    return PortalLock(settings, "dbt", file_key=str(settings.dbt_project_dir.resolve()))


def refresh_lock(settings: Settings) -> PortalLock:
    """The lock of a refresh of several products (per project and catalog: two portals over
    different catalogs may refresh at once; their builds still queue on the build lock)."""
    key = f"{settings.dbt_project_dir.resolve()}|{settings.resolved_catalog_db_url}"
    return PortalLock(settings, "refresh", file_key=key)


__all__ = ["LockBusy", "PortalLock", "build_lock", "holder_text", "project_name", "refresh_lock"]
