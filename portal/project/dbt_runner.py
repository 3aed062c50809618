"""Runs dbt as a subprocess, one invocation at a time per project, streaming its log.

dbt is started with an argv list (never a shell string) and with the portal's settings
exported as the environment variables `dbt/profiles.yml` reads, so dbt and the portal can
never disagree about which warehouse they talk to. A lock per project (portal/project/locks.py)
serialises invocations across processes and hosts (the Streamlit server, API workers and cron
may all build), and a caller that has to wait is told so rather than left staring at a frozen page.

Every invocation ends, and ends whole (issue 12: a silent `unique` test held the warehouse and
the lock for minutes):

- a timeout holds whether or not dbt prints anything: a reader thread passes dbt's lines on
  while the calling thread watches the clock (and the caller's `on_line` still runs in the
  calling thread, which a Streamlit page needs);
- dbt runs in a process group of its own, and a stop signals the group (dbt starts helpers,
  e.g. multiprocessing's resource tracker, which hold its output pipe open): SIGINT first, on
  which dbt cancels the warehouse queries it has open (Trino would otherwise run them on), then
  SIGTERM, then SIGKILL, `STOP_GRACE_S` apart;
- a run can be cancelled from another thread by its run id (`cancellable`, `cancel`): the
  registry is this process's, so a run is cancelled in the process that started it;
- dbt dies with the portal (see `_launch`), so a portal killed outright leaves no build behind
  holding the warehouse.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from portal.errors import Busy, Unavailable
from portal.project.compiled import carry_compiled, compiled_of
from portal.project.locks import LockBusy, build_lock
from portal.settings import ROOT, Settings, env_of
from portal.warehouse.snapshot import readers_served

LineSink = Callable[[str], None]

# How long dbt is given after each of SIGINT and SIGTERM before the next, harder signal, and how
# long its helpers are given to leave after dbt itself has exited.
STOP_GRACE_S = 3.0
# How often the calling thread looks at the clock and for a cancel while dbt is silent.
_POLL_S = 0.1
TIMEOUT = "timeout"
# dbt commands that write the target's manifest.json (each compiles only what it selects, if any).
REWRITES_MANIFEST = frozenset({"parse", "build", "run", "test", "compile", "seed", "snapshot", "docs"})
CANCELLED = "cancelled"


class DbtNotInstalled(Unavailable):
    """dbt is not installed next to the portal; the message says how to install it."""


class DbtBusy(Busy):
    """Another dbt invocation holds this project's lock and the caller chose not to wait."""


@dataclass(frozen=True)
class DbtResult:
    argv: list[str]
    returncode: int
    log: str
    elapsed_s: float
    stopped: str | None = None  # TIMEOUT or CANCELLED: the portal stopped dbt (see `message`)
    message: str = ""  # why dbt was stopped, for people (also the log's last line); "" if it was not
    stopped_by: str | None = None  # who cancelled it
    pid: int | None = None  # dbt's process id, also its process group's; None if it never started

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.stopped is None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.splitlines()[-lines:])


def dbt_executable() -> str:
    """The dbt next to the running interpreter (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise DbtNotInstalled(
            "dbt is not installed. Run `make run` or `make test`, which install requirements.txt."
        )
    return found


@contextmanager
def project_lock(
    settings: Settings, *, wait: bool | float = True, on_line: LineSink | None = None
) -> Iterator[None]:
    """Hold this project's build lock (portal/project/locks.py: across processes and, on a
    PostgreSQL catalog, hosts); with wait=False (or after waiting `wait` seconds) raise DbtBusy
    instead of queueing.

    On DuckDB the hold also keeps readers served: the warehouse as it was when the hold began is
    what previews read until it ends (portal/warehouse/snapshot.py), while dbt writes the file.
    """

    def waiting(holder: str) -> None:
        if on_line:
            on_line(f"Another dbt run is in progress on this project ({holder}); waiting for it to finish…")

    try:
        with build_lock(settings).hold(wait=wait, on_wait=waiting), readers_served(settings):
            yield
    except LockBusy as busy:
        waited = f", still after {wait:g} s" if not isinstance(wait, bool) and wait > 0 else ""
        raise DbtBusy(
            f"Another dbt run is in progress on {settings.dbt_project_dir} ({busy.holder}{waited}); "
            "try again when it finishes."
        ) from None


def dbt_argv(
    settings: Settings,
    command: Sequence[str],
    *,
    target_path: Path | None = None,
) -> list[str]:
    """`target_path` replaces the configured target directory (an audit build writes its artifacts
    elsewhere, leaving the portal's untouched)."""
    # The schema vars come from the portal's settings so the portal previews where dbt built;
    # projects that do not declare them ignore them.
    schema_vars = json.dumps({"silver_schema": settings.silver_schema, "gold_schema": settings.gold_schema})
    return [
        dbt_executable(),
        "--no-use-colors",
        *command,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.profiles_dir),
        "--target",
        settings.dbt_target,
        "--target-path",
        str(target_path or settings.target_dir),
        "--vars",
        schema_vars,
    ]


def dbt_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.dbt_env())
    # No network here or in most warehouses' build hosts: dbt must not phone home.
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_VERSION_CHECK"] = "false"
    env.setdefault("DBT_LOG_PATH", str(ROOT / "var" / "dbt-logs"))
    return env


# --- cancelling a run's dbt from another thread --------------------------------------------


class StopRequest:
    """A cancel of one run's dbt invocations, asked from another thread (an API call, a button)."""

    def __init__(self) -> None:
        self._asked = threading.Event()
        self._lock = threading.Lock()
        self.by: str | None = None

    def ask(self, by: str) -> None:
        with self._lock:
            if not self._asked.is_set():  # the first cancel is the one that counts
                self.by = by
                self._asked.set()

    @property
    def requested(self) -> bool:
        return self._asked.is_set()


# Run id -> the stop request of the run's dbt, for the runs this process is building.
_CANCELLABLE: dict[int, StopRequest] = {}
_CANCELLABLE_LOCK = threading.Lock()


@contextmanager
def cancellable(run_id: int) -> Iterator[StopRequest]:
    """While inside, `cancel(run_id, ...)` stops the dbt invocations given the yielded request."""
    request = StopRequest()
    with _CANCELLABLE_LOCK:
        _CANCELLABLE[run_id] = request
    try:
        yield request
    finally:
        with _CANCELLABLE_LOCK:
            if _CANCELLABLE.get(run_id) is request:
                del _CANCELLABLE[run_id]


def cancel(run_id: int, by: str) -> bool:
    """Ask run `run_id`'s dbt to stop, on behalf of the user `by`; False if this process builds
    no such run (it finished, is past its build, or runs in another process)."""
    with _CANCELLABLE_LOCK:
        request = _CANCELLABLE.get(run_id)
    if request is None:
        return False
    request.ask(by)
    return True


def is_cancellable(run_id: int) -> bool:
    """Whether `cancel(run_id, ...)` would reach a build in this process (for a Cancel button)."""
    with _CANCELLABLE_LOCK:
        return run_id in _CANCELLABLE


# --- running dbt -----------------------------------------------------------------------------


def run_dbt(
    settings: Settings,
    command: Sequence[str],
    *,
    on_line: LineSink | None = None,
    wait: bool = True,
    timeout_s: float | None = None,
    timeout_setting: str | None = None,
    stop: StopRequest | None = None,
    target_path: Path | None = None,
    lock: bool = True,
) -> DbtResult:
    """Run `dbt <command>` for the configured project and return its full log.

    `on_line` receives every log line as it is printed (for st.status, a terminal, a run
    record), in the calling thread. The call blocks while another invocation on the same project
    runs, unless `wait` is False. `lock=False` is for a caller that already holds `project_lock`
    around several steps (the lock is not re-entrant); `target_path`: see `dbt_argv`.

    dbt is stopped (the result is not ok, its `stopped` and `message` say why) after `timeout_s`
    seconds, printing or not, or once `stop` is requested (see `cancellable`). `timeout_setting`
    is the Settings field `timeout_s` comes from (e.g. `build_timeout_s`): the message names its
    variable, so people know what to raise. A caller interrupted while dbt runs (Ctrl-C, an
    `on_line` that raises) stops dbt before the exception goes on.
    """
    argv = dbt_argv(settings, command, target_path=target_path)
    setting = env_of(timeout_setting) if timeout_setting else None
    # A parse or a selective build rewrites the portal's manifest without the compiled SQL of the
    # models it did not compile: keep theirs (see project/compiled.py).
    manifest = Path(settings.target_dir) / "manifest.json"
    keeps = target_path is None and bool(command) and command[0] in REWRITES_MANIFEST
    held = project_lock(settings, wait=wait, on_line=on_line) if lock else nullcontext()
    with held:
        started = time.perf_counter()
        lines: list[str] = []

        def say(line: str) -> None:
            lines.append(line)
            if on_line:
                on_line(line)

        def result(returncode: int, stopped: str | None, pid: int | None) -> DbtResult:
            message = ""
            if stopped == TIMEOUT:
                assert timeout_s is not None
                where = f" ({setting}); make the query cheaper or raise the setting." if setting else "."
                message = f"dbt was stopped after {timeout_s:,g} s{where}"
            elif stopped == CANCELLED:
                message = f"dbt was stopped: cancelled by {stop.by if stop else 'someone'}."
            if message:
                say(message)
            return DbtResult(
                argv=argv,
                returncode=returncode,
                log="\n".join(lines),
                elapsed_s=time.perf_counter() - started,
                stopped=stopped,
                message=message,
                stopped_by=stop.by if stopped == CANCELLED and stop else None,
                pid=pid,
            )

        if stop is not None and stop.requested:  # cancelled before it started (e.g. while queued)
            return result(-1, CANCELLED, None)
        kept = compiled_of(manifest) if keeps else {}
        process = subprocess.Popen(
            _launch(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=dbt_environment(settings),
            cwd=settings.dbt_project_dir,
            start_new_session=True,  # its own process group (and session), stopped as a whole
        )
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        stopped = _follow(process, say, deadline, stop)
        assert process.returncode is not None  # _follow returns once dbt has been reaped
        carry_compiled(manifest, kept)
    return result(process.returncode, stopped, process.pid)


# The child's first moments on Linux: ask the kernel to SIGKILL it when its parent dies
# (prctl(PR_SET_PDEATHSIG), which survives the exec), leave if the parent already died (then it
# was re-parented before the request), and become dbt.
_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def _launch(argv: list[str]) -> list[str]:
    """What to start for `argv`: on Linux, dbt behind `_DIE_WITH_PARENT`.

    Why a fresh interpreter that execs dbt rather than `preexec_fn`: the portal is multi-threaded
    (Streamlit, uvicorn, the background jobs, the parse that runs beside an audit build), and
    Python code between fork and exec may deadlock on a lock another thread held at the fork
    (CPython documents preexec_fn as unsafe with threads). Here nothing runs between fork and
    exec, and the cost is one small interpreter start (tens of ms) before dbt's own.
    Why not a watchdog thread: it dies with the portal too, which is exactly when it is needed.
    The death signal is the forking *thread's*: a run's thread waits for dbt, so it outlives it.
    Elsewhere (macOS) a portal killed outright leaves dbt to finish on its own.
    """
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


_EOF = None


def _read(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """The reader thread: every line of dbt's output, then _EOF when the pipe closes."""
    try:
        for line in stream:
            lines.put(line.rstrip("\n"))
    finally:
        lines.put(_EOF)


def _follow(
    process: subprocess.Popen[str], say: LineSink, deadline: float | None, stop: StopRequest | None
) -> str | None:
    """Pass dbt's lines to `say` until it exits, or stop its group at `deadline` or on `stop`;
    returns TIMEOUT, CANCELLED or None. Returns (or raises) only once dbt has been reaped and no
    process of its group is left: on an exception (from `say`, or Ctrl-C) it stops them first."""
    assert process.stdout is not None
    pending: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(
        target=_read, args=(process.stdout, pending), name=f"dbt-{process.pid}-log", daemon=True
    )
    reader.start()
    stopped: str | None = None
    try:
        eof = False
        while process.poll() is None or not eof:
            if stop is not None and stop.requested:
                stopped = CANCELLED
            elif deadline is not None and time.monotonic() >= deadline:
                stopped = TIMEOUT
            if stopped:
                _stop_group(process)
                break
            if eof:  # the pipe closed before dbt exited: wait for the exit alone
                with suppress(subprocess.TimeoutExpired):
                    process.wait(_POLL_S)
                continue
            try:
                line = pending.get(timeout=_POLL_S)
            except queue.Empty:
                if process.poll() is not None:
                    break  # dbt exited and a helper still holds the pipe: _clear_group sees to it
                continue
            if line is _EOF:
                eof = True
            else:
                say(line)
    except BaseException:
        _stop_group(process)
        raise
    finally:
        if process.poll() is None:  # _stop_group itself was interrupted: never leave dbt running
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        _clear_group(process.pid)
        reader.join(STOP_GRACE_S)
        if not reader.is_alive():
            process.stdout.close()
    while True:  # what dbt printed while it was being stopped
        try:
            line = pending.get_nowait()
        except queue.Empty:
            break
        if line is not _EOF:
            say(line)
    return stopped


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):  # nothing of the group is left
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    # Where the portal is the container's init (PID 1) or a subreaper, dbt's orphaned helpers are
    # re-parented to it, and their zombies would count as alive until reaped: reap them.
    with suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # not ours: then none of our group is left under that id
        return False
    return True


def _stop_group(process: subprocess.Popen[str]) -> None:
    """Stop dbt's process group, harder each time dbt stays; returns once dbt is reaped."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        _signal_group(process.pid, signum)
        try:
            process.wait(STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _clear_group(pgid: int) -> None:
    """After dbt has exited: give the rest of its group (its helpers) STOP_GRACE_S to leave, then
    SIGKILL what is left and wait (briefly) until it is gone.

    Signalling the group after dbt was reaped is safe: the kernel does not hand out a process id
    that is still some group's id, so while any member is left the id is still theirs.
    """
    deadline = time.monotonic() + STOP_GRACE_S
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_GRACE_S
    while _group_alive(pgid) and time.monotonic() < deadline:  # until their parent reaps them
        time.sleep(0.05)
