"""The catalog database on a real, throwaway PostgreSQL server: migrations and sync.

The server is Debian's `postgresql` package (CI installs it). It runs as the `postgres` system
user when the tests run as root (initdb refuses root), listens only on a unix socket in a
private directory, and is stopped and deleted afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text

from catalog_db import Base, DataProduct, NodeResult, Run, alembic_config, make_engine, migrate, open_catalog
from portal.project.artifacts import load_artifacts
from tests.unit.project.test_sync import FIXTURES, PRODUCTS_PATH, assert_sync_idempotent, engine_of


def _postgres_bin() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent


BIN = _postgres_bin()
pytestmark = pytest.mark.skipif(
    BIN is None,
    reason="no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); `apt-get install postgresql`",
)
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


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


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    assert BIN is not None
    server = Server(BIN)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(server: Server, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for each test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.url(name)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_migrate_twice_and_models_match_migrations(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)
    assert current_revision(database_url) == HEAD
    engine = make_engine(database_url)
    with engine.connect() as connection:
        command.check(alembic_config(connection))
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_concurrent_migrations(database_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            migrate(database_url)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(database_url) == HEAD


@pytest.mark.parametrize(
    "folder", ["jaffle_shop_duckdb", "jaffle-shop", "flipside_ethereum_models_2022-06-14"]
)
def test_sync_is_idempotent(database_url: str, folder: str) -> None:
    sessions = open_catalog(database_url)
    artifacts = load_artifacts(FIXTURES / folder)
    first = assert_sync_idempotent(sessions, artifacts, data_products_path=PRODUCTS_PATH[folder])
    assert first.products_added > 0
    assert first.node_results_added == (len(artifacts.run_results.results) if artifacts.run_results else 0)
    with sessions() as session:
        product = session.scalars(select(DataProduct).order_by(DataProduct.name)).first()
        assert product is not None
        assert product.created_at.tzinfo == UTC
        if artifacts.run_results:
            run = session.scalars(select(Run)).one()
            assert run.invocation_id == artifacts.run_results.invocation_id
            assert run.finished_at is not None and run.finished_at.tzinfo == UTC
            tests = session.scalars(select(NodeResult).where(NodeResult.resource_type == "test")).all()
            assert tests and all(t.attached_node for t in tests)
    engine_of(sessions).dispose()
