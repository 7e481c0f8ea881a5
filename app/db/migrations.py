"""Running the Alembic migrations from code (tests, CLI) on an async engine."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"

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


# --- Is the database's schema the one this code needs? ----------------------------------------


class SchemaBehind(RuntimeError):
    """The database lacks migrations this code needs; the message says what to run."""


@dataclass(frozen=True)
class SchemaState:
    database: tuple[str, ...]  # the revisions recorded in alembic_version (empty: none)
    code: tuple[str, ...]  # the heads of alembic/versions

    @property
    def current(self) -> bool:
        return set(self.database) == set(self.code)

    @property
    def behind(self) -> bool:
        """Older than the code. A revision the code does not know is newer (a release migrated
        ahead of this process during a rolling deploy): not behind, this code still runs."""
        if not self.database:
            return True
        known = _known_revisions()
        return not self.current and all(revision in known for revision in self.database)

    def describe(self) -> str:
        database = ", ".join(self.database) or "empty (no migrations applied)"
        return (
            f"the database schema is at {database}, the code needs {', '.join(self.code)}: "
            "run `alembic upgrade head` (or `make migrate`)"
        )


@cache
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(AlembicConfig(str(ALEMBIC_INI)))


@cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script_directory().walk_revisions())


def code_heads() -> tuple[str, ...]:
    return tuple(sorted(_script_directory().get_heads()))


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where the database stands against the code. Raises what the driver raises when the
    database cannot be reached."""
    async with engine.connect() as connection:
        database = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_heads()
        )
    return SchemaState(tuple(sorted(database)), code_heads())
