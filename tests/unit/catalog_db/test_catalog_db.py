"""The catalog database on real SQLite files: migrations, connection settings, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, select, text

from catalog_db import (
    Base,
    CatalogMigrationError,
    DataProduct,
    NodeResult,
    Run,
    alembic_config,
    make_engine,
    migrate,
    open_catalog,
)

REPO = Path(__file__).resolve().parents[3]
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
TABLES = {
    "alembic_version",
    "api_tokens",
    "audit_events",
    "data_products",
    "drift_events",
    "node_results",
    "product_profiles",
    "proposals",
    "query_history",
    "access_requests",
    "runs",
    "usage_events",
}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_there_is_one_head() -> None:
    assert HEAD == "0008"


def test_migrate_creates_everything_and_is_idempotent(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "nested" / "dir" / "catalog.db")  # the directory is created
    migrate(url)
    assert revision(url) == HEAD
    schema = sqlite_schema(url)
    assert {name for kind, name, _ in schema if kind == "table"} == TABLES

    migrate(url)
    assert revision(url) == HEAD
    assert sqlite_schema(url) == schema


def sqlite_schema(url: str) -> list[tuple[Any, ...]]:
    """Every table and index with the SQL that created it."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            query = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            return [tuple(row) for row in connection.exec_driver_sql(query)]
    finally:
        engine.dispose()


def test_migrate_accepts_an_engine_and_leaves_it_usable(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "catalog.db"))
    migrate(engine)
    migrate(engine)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
    engine.dispose()


def test_every_connection_has_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "catalog.db"))
    for _ in range(2):  # a fresh connection each time, not a pooled one
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        engine.dispose()


def test_models_match_the_migrations(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "catalog.db"))
    migrate(engine)
    with engine.connect() as connection:
        # What `alembic check` runs: autogenerate against the models finds nothing to do.
        command.check(alembic_config(connection))
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        # ... and the comparison does see drift when there is some (so the checks above mean something).
        drifted = MetaData()
        for table in Base.metadata.sorted_tables:
            table.to_metadata(drifted)
        Table("data_products", drifted, Column("extra", Integer), extend_existing=True)
        diffs = compare_metadata(MigrationContext.configure(connection), drifted)
        assert [(d[0], d[3].name) for d in diffs] == [("add_column", "extra")]
    engine.dispose()


def test_foreign_keys_cascade(tmp_path: Path) -> None:
    sessions = open_catalog(sqlite_url(tmp_path / "catalog.db"))
    now = datetime.now(UTC)
    with sessions.begin() as session:
        product = DataProduct(name="orders", status="published", origin="dbt", created_by="test")
        run = Run(command="build", status="success", triggered_by="test", started_at=now, product=product)
        run.node_results.append(
            NodeResult(
                unique_id="model.x.orders", resource_type="model", status="success", execution_time=1.0
            )
        )
        session.add(run)
    with sessions.begin() as session:
        # Deleting in SQL (not through the ORM) proves the database enforces it.
        session.execute(text("DELETE FROM data_products"))
        assert session.scalar(select(Run.product_id)) is None  # ON DELETE SET NULL
        session.execute(text("DELETE FROM runs"))
        assert session.scalars(select(NodeResult)).all() == []  # ON DELETE CASCADE
    sessions.kw["bind"].dispose()


def test_datetimes_are_utc_aware_and_naive_ones_refused(tmp_path: Path) -> None:
    sessions = open_catalog(sqlite_url(tmp_path / "catalog.db"))
    paris = datetime(2026, 1, 2, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    with sessions.begin() as session:
        session.add(Run(command="build", status="queued", triggered_by="t", started_at=paris))
    with sessions() as session:
        started = session.scalars(select(Run.started_at)).one()
        assert started == paris
        assert started.tzinfo == UTC
        assert started.hour == 12
    with sessions() as session, pytest.raises(Exception, match="naive datetime"):
        session.add(Run(command="build", status="queued", triggered_by="t", started_at=datetime(2026, 1, 2)))
        session.flush()
    sessions.kw["bind"].dispose()


def test_check_constraints_refuse_unknown_statuses(tmp_path: Path) -> None:
    sessions = open_catalog(sqlite_url(tmp_path / "catalog.db"))
    with sessions() as session, pytest.raises(Exception, match="CHECK constraint failed"):
        session.add(DataProduct(name="x", status="shipped", origin="dbt", created_by="t"))
        session.flush()
    sessions.kw["bind"].dispose()


def test_tokens_take_the_reviewer_role_after_0004_and_lose_it_going_back(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "catalog.db")
    migrate(url)
    engine = make_engine(url)
    insert = text(
        "insert into api_tokens (user, role, secret_sha256, note, created_at, created_by) "
        "values (:user, :role, :sha, '', '2026-12-03 00:00:00', 'tests')"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"user": "rita", "role": "reviewer", "sha": "a" * 64})
    with engine.begin() as connection, pytest.raises(Exception, match="CHECK constraint failed"):
        connection.execute(insert, {"user": "x", "role": "superuser", "sha": "b" * 64})
    with engine.begin() as connection:  # the reviewer's token becomes a creator's
        command.downgrade(alembic_config(connection), "0003")
    with engine.connect() as connection:
        assert connection.execute(text("select role from api_tokens")).scalars().all() == ["creator"]
    with engine.begin() as connection, pytest.raises(Exception, match="CHECK constraint failed"):
        connection.execute(insert, {"user": "y", "role": "reviewer", "sha": "c" * 64})
    engine.dispose()


def test_unknown_revision_is_reported_with_the_fix(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "catalog.db")
    migrate(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(CatalogMigrationError) as caught:
        migrate(url)
    message = str(caught.value)
    assert str(tmp_path / "catalog.db") in message
    assert "9999_from_the_future" in message
    assert "upgrade the portal" in message


def test_concurrent_migrations_from_threads(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "catalog.db")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            migrate(url)
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert revision(url) == HEAD


def test_concurrent_migrations_from_processes(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "catalog.db")
    # All start migrating at the same moment, after their (slow) imports are done.
    start = time.time() + 3
    script = (
        "import sys, time\n"
        "from catalog_db import migrate\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "migrate(sys.argv[1])\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in processes]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    assert revision(url) == HEAD


def test_alembic_cli_uses_the_package_migrations(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "catalog.db")
    cli = [
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(REPO / "catalog_db" / "alembic.ini"),
        "-x",
        f"url={url}",
    ]
    for args in (["upgrade", "head"], ["check"]):
        # From another directory: nothing depends on the working directory.
        done = subprocess.run([*cli, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert revision(url) == HEAD
