"""Runs dbt as a subprocess, one invocation at a time per project, streaming its log.

dbt is started with an argv list (never a shell string) and with the portal's settings
exported as the environment variables `dbt/profiles.yml` reads, so dbt and the portal can
never disagree about which warehouse they talk to. A file lock per project serialises
invocations across processes (the Streamlit server, the API and cron may all build), and a
caller that has to wait is told so rather than left staring at a frozen page.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from portal.errors import Busy, Unavailable
from portal.settings import ROOT, Settings

LineSink = Callable[[str], None]


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

    @property
    def ok(self) -> bool:
        return self.returncode == 0

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


def lock_path(settings: Settings) -> Path:
    digest = hashlib.sha1(str(settings.dbt_project_dir.resolve()).encode()).hexdigest()[:12]
    return ROOT / "var" / "locks" / f"dbt-{digest}.lock"


@contextmanager
def project_lock(settings: Settings, *, wait: bool = True, on_line: LineSink | None = None) -> Iterator[None]:
    """Hold this project's dbt lock; with wait=False raise DbtBusy instead of queueing."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise DbtBusy(
                    f"Another dbt run is in progress on {settings.dbt_project_dir}; try again when it finishes."
                ) from None
            if on_line:
                on_line("Another dbt run is in progress on this project; waiting for it to finish…")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def run_dbt(
    settings: Settings,
    command: Sequence[str],
    *,
    on_line: LineSink | None = None,
    wait: bool = True,
    timeout_s: float | None = None,
    target_path: Path | None = None,
    lock: bool = True,
) -> DbtResult:
    """Run `dbt <command>` for the configured project and return its full log.

    `on_line` receives every log line as it is printed (for st.status, a terminal, a run
    record). The call blocks while another invocation on the same project runs, unless
    `wait` is False. `lock=False` is for a caller that already holds `project_lock` around
    several steps (the lock is not re-entrant); `target_path`: see `dbt_argv`.
    """
    argv = dbt_argv(settings, command, target_path=target_path)
    held = project_lock(settings, wait=wait, on_line=on_line) if lock else nullcontext()
    with held:
        started = time.perf_counter()
        lines: list[str] = []
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dbt_environment(settings),
            cwd=settings.dbt_project_dir,
        )
        assert process.stdout is not None
        deadline = None if timeout_s is None else started + timeout_s
        for line in process.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if on_line:
                on_line(line)
            if deadline is not None and time.perf_counter() > deadline:
                process.kill()
                lines.append(f"dbt was stopped after {timeout_s:g} s.")
                break
        returncode = process.wait()
    return DbtResult(
        argv=argv, returncode=returncode, log="\n".join(lines), elapsed_s=time.perf_counter() - started
    )
