"""A real, throwaway PostgreSQL server for the tests (Debian's `postgresql` package; CI installs it).

It runs as the `postgres` system user when the tests run as root (initdb refuses root), listens
only on a unix socket in a private directory, and is stopped and deleted afterwards. The
`server` fixture (tests/integration/conftest.py) gives each module that asks its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def _postgres_bin() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent


BIN = _postgres_bin()


class Server:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.base = Path(tempfile.mkdtemp(prefix="asgard-pg-"))
        self.data, self.socket, self.log = self.base / "data", self.base / "socket", self.base / "server.log"
        self.socket.mkdir()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")  # created by Debian's postgresql package
            for path in (self.base, self.socket):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    def run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_owner, str(self.bin / tool), *args], capture_output=True, text=True)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}{log}")

    def start(self) -> None:
        self.run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"
        )
        # No TCP at all; durability is irrelevant for a throwaway server.
        options = f"-k {self.socket} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket}"
