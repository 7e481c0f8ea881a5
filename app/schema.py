"""Running the Alembic migrations from code (tests, CLI) on an async engine."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"

# SQLite's full-text index (an FTS5 table and its shadow tables) is made by hand in a migration
# and is not in the models: comparing the schema with the models must leave it out.
SQLITE_FTS_TABLES = ("issue_fts",)


def include_name(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    """Alembic's filter: everything but the hand-made FTS tables."""
    return not (type_ == "table" and name is not None and name.startswith(SQLITE_FTS_TABLES))


def _alembic_config(connection: Connection) -> AlembicConfig:
    alembic_config = AlembicConfig(str(ALEMBIC_INI))
    # env.py sees the connection and runs on it instead of starting its own event loop.
    alembic_config.attributes["connection"] = connection
    return alembic_config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(_alembic_config(sync), revision))
