"""Alembic environment for the catalog database.

Two callers: `catalog_db.session.migrate()` hands over an open connection (already holding the
migration lock and a transaction) in `config.attributes["connection"]`; the CLI
(`alembic -c catalog_db/alembic.ini upgrade head`) takes its URL from `-x url=...`, else from
the portal's settings (PORTAL_CATALOG_DB_URL), and uses the same lock.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from catalog_db.models import Base
from catalog_db.session import lock_for_migration, make_engine

config = context.config
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # CLI output


def _cli_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from portal.settings import Settings  # only the CLI needs the portal's settings

    return Settings.from_env().resolved_catalog_db_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    # The connection is already in a transaction, so Alembic opens none of its own.
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_cli_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_cli_url())
    try:
        with engine.connect() as connection:
            lock_for_migration(connection)
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
