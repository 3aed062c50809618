"""The catalog database on a real, throwaway PostgreSQL server (tests/postgres_server.py):
migrations and sync."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text

from catalog_db import Base, DataProduct, NodeResult, Run, alembic_config, make_engine, migrate, open_catalog
from portal.project.artifacts import load_artifacts
from tests.postgres_server import BIN, Server
from tests.unit.project.test_sync import FIXTURES, PRODUCTS_PATH, assert_sync_idempotent, engine_of

pytestmark = pytest.mark.skipif(
    BIN is None,
    reason="no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); `apt-get install postgresql`",
)
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


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
