"""Engines, migrations and sessions for the catalog database (SQLite file or PostgreSQL).

Nothing is cached at module level: every call builds its own engine, so tests (and two
portals in one process) never share state.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from portal.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works: it only has to be the same in every process migrating one database.
_PG_MIGRATION_LOCK = 0x41534741  # "ASGA"


class CatalogMigrationError(Unavailable):
    """The catalog database could not be brought to the schema this code expects."""


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their directory, WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a pooled connection dropped by a server restart is replaced, not handed out.
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another process may hold. Generous,
        # because writes queue behind a migration or a sync, and on a loaded 2-core machine four
        # processes migrating in turn took longer than 5 s (the old value) in CI.
        cursor.execute("PRAGMA busy_timeout = 30000")
        # WAL lets the UI read while a sync or build writes. SQLite may answer "locked" at once,
        # without waiting out busy_timeout, when several connections switch a new file together:
        # retry for a while instead of failing a start that merely raced another.
        for attempt in range(100):
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.1)
        # SQLite ignores ON DELETE CASCADE / SET NULL unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the package's migrations; `connection` is used by env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def lock_for_migration(connection: Connection) -> None:
    """Serialise migrations: the second process waits, then finds the schema at head."""
    backend = connection.dialect.name
    if backend == "sqlite":
        # The pysqlite driver does not BEGIN before DDL on its own; an IMMEDIATE transaction
        # takes the write lock now (waiting up to busy_timeout) and makes the DDL atomic.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif backend == "postgresql":
        # Released at commit or rollback; DDL is transactional on PostgreSQL.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def migrate(engine_or_url: Engine | str) -> None:
    """Bring the catalog database to the newest schema (`alembic upgrade head`).

    Cheap when there is nothing to do, so it runs at every start; safe from several processes
    at once (they queue on a lock); all or nothing (one transaction).
    """
    owns_engine = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as connection:
            lock_for_migration(connection)
            command.upgrade(alembic_config(connection), "head")
            connection.commit()
    except CommandError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise CatalogMigrationError(
            f"Could not migrate the catalog database {where}: {exc}. If it was created by a newer "
            "portal version, upgrade the portal or point PORTAL_CATALOG_DB_URL at another database."
        ) from exc
    finally:
        if owns_engine:
            engine.dispose()


def open_catalog(url: str) -> sessionmaker[Session]:
    """Migrate the database at `url` and return a session factory bound to it."""
    engine = make_engine(url)
    migrate(engine)
    # expire_on_commit=False: pages and API responses read objects after their session committed.
    return sessionmaker(engine, expire_on_commit=False)
