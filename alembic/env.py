"""Alembic's environment: async engines, the app's configuration, batch mode on SQLite."""

import asyncio
from logging.config import fileConfig

from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from app.db import Base
from app.db.migrations import include_name
from app.models import Activity  # noqa: F401  (registers every table)

config = context.config
# Without a URL given, the app is made to read its configuration, and sets up its own logging
# (JSON in production): alembic.ini's as well would print every line twice.
_url_given = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
if config.config_file_name is not None and not config.attributes.get("connection") and _url_given:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    """-x url=... wins, then a URL handed in by code, then the app's own configuration."""
    url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    if url:
        from app.config import normalise_database_url

        return normalise_database_url(url)
    from app import create_app

    return create_app().config["DATABASE_URL"]


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def run_migrations_online() -> None:
    # Code that already runs an event loop (the tests) hands over a connection instead.
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
