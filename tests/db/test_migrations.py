"""The Alembic migrations build exactly the models' schema, and come down again cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import Base, create_engine, migrations
from tests.conftest import (
    create_scratch_postgres_database,
    drop_scratch_postgres_database,
    postgres_admin_url,
)


def _differences(connection) -> list:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": migrations.include_name}
    )
    return compare_metadata(context, Base.metadata)


def _tables(connection) -> set[str]:
    names = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return {name for name in names if migrations.include_name(name, "table", {})}


async def _up_check_down(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            assert await connection.run_sync(_tables) == set(Base.metadata.tables)
        await migrations.downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def test_migrations_up_and_down(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        await _up_check_down(f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}")
        return
    admin_url = postgres_admin_url()
    assert admin_url is not None
    url = await create_scratch_postgres_database(admin_url)
    try:
        await _up_check_down(url)
    finally:
        await drop_scratch_postgres_database(admin_url, url)
