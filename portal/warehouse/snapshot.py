"""DuckDB: the copy of the warehouse that readers are served while a build writes it.

DuckDB lets a process write a file only while no other process has it open. So while `dbt build`
(or a publish) wrote the warehouse, every preview, profile and API query answered 503 for the
whole build, and a preview that happened to hold the file made the build fail to open it.

Now whoever takes the build lock (portal/project/dbt_runner.py, `project_lock`) first copies the
file to `<file>.reading` and, for as long as it holds the build lock, holds a lock on
`<file>.reading.lock`:

- a reader that finds that lock held reads the copy: the warehouse as it was when the build
  began, consistent, only not yet what the build makes; it never touches the file dbt writes;
- a reader that opened the file itself just before the copy appeared finishes within its query
  timeout, and the builder waits for that (DuckDB refuses a writer until then) before dbt starts;
- the copy goes when the hold ends. One left behind by a process that died is ignored, since its
  lock died with the process, and the next build replaces it.

Copying costs about as long as reading the file once (a reflink where the file system has them:
no time at all). Files larger than PORTAL_DUCKDB_READ_COPY_MAX_MB are not copied; previews then
wait for the build, as they did before.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from portal.settings import Settings

_FICLONE = 0x40049409  # Linux ioctl: make `dst` share `src`'s blocks (btrfs, XFS); else it fails
_WAIT_POLL_S = 0.1


def reading_copy_path(path: Path) -> Path:
    return path.with_name(path.name + ".reading")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".reading.lock")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")  # DuckDB's write-ahead log beside a database file


def reading_copy(path: Path) -> Path | None:
    """The copy readers should read instead of `path` right now (a build is writing `path`), or None."""
    copy = reading_copy_path(path)
    if not copy.exists():  # the common case costs one stat
        return None
    try:
        fd = os.open(_lock_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return copy  # a live builder holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # left by a builder that died: the file itself is the warehouse now
    finally:
        os.close(fd)


def _clone_or_copy(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError:
            pass  # no reflinks here (ext4, overlayfs, tmpfs): copy the bytes
        shutil.copyfileobj(src, dst, 4 << 20)


def _copy(path: Path, copy: Path) -> None:
    """`path` (and its write-ahead log, if a writer died before checkpointing) to `copy`, whole:
    each file is written under a temporary name first, so a reader never opens half a copy."""
    for source, target in ((_wal(path), _wal(copy)), (path, copy)):
        if not source.exists():
            with suppress(FileNotFoundError):
                target.unlink()
            continue
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        _clone_or_copy(source, partial)
        os.replace(partial, target)


def _wait_for_readers(path: Path, seconds: float) -> None:
    """Until no reader that opened `path` itself (before the copy appeared) still has it open:
    DuckDB lets a writer in only then. Gives up after `seconds`; dbt then says what it met."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            duckdb.connect(str(path), config={"enable_external_access": False}).close()
            return
        except (duckdb.IOException, duckdb.ConnectionException):
            if time.monotonic() > deadline:
                return
            time.sleep(_WAIT_POLL_S)


def copies(settings: Settings) -> bool:
    """Whether a build of this portal leaves readers a copy (DuckDB, a file not too large)."""
    path = settings.duckdb_path
    if settings.warehouse != "duckdb" or settings.duckdb_read_copy_max_mb == 0 or not path.exists():
        return False
    return path.stat().st_size <= settings.duckdb_read_copy_max_mb * 1024 * 1024


@contextmanager
def readers_served(settings: Settings) -> Iterator[None]:
    """While inside (the caller holds the build lock), readers read a copy of the warehouse."""
    if not copies(settings):
        yield
        return
    path = settings.duckdb_path
    copy = reading_copy_path(path)
    # Copy first, then take the lock: readers follow the lock, and must never find it held
    # over a copy left by a builder that died.
    _copy(path, copy)
    with _lock_path(path).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            # A session (columns, rows, count) is a few queries, each bounded by the timeout.
            _wait_for_readers(path, 3 * settings.query_timeout_s + 5)
            yield
        finally:
            for leftover in (copy, _wal(copy)):
                with suppress(FileNotFoundError):
                    leftover.unlink()
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["copies", "readers_served", "reading_copy", "reading_copy_path"]
