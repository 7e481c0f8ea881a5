"""The declarative base, one engine and session factory per app, and the request's session on g."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from quart import Quart, current_app, g
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from app.db.after_commit import AfterCommit

# Named constraints from day one: Alembic's batch mode on SQLite needs the names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow() or an aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# The execution option that makes a SQLite transaction begin IMMEDIATE (see services.transaction).
SQLITE_BEGIN_OPTION = "issues_sqlite_begin"


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 15, max_overflow: int = 5
) -> AsyncEngine:
    """An engine with the per-backend settings that keep SQLite honest."""
    if url.startswith("sqlite"):
        in_memory = url.rstrip("/").endswith(":memory:") or url in (
            "sqlite+aiosqlite://",
            "sqlite+aiosqlite:///",
        )
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if in_memory:
            # One shared connection, else every checkout would see its own empty database.
            kwargs["poolclass"] = StaticPool
        engine = create_async_engine(url, echo=echo, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    """Foreign keys on, WAL, and transactions that SQLite really begins (see decision 0002)."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # Readers begin DEFERRED and never block. A use case asks for IMMEDIATE, which takes the
        # write lock up front, so two writers queue instead of one failing when both read first
        # and then try to upgrade their locks.
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


async def begin_writing(session: AsyncSession) -> None:
    """Begin the session's transaction as a writer: on SQLite it takes the write lock now, so
    that concurrent writers queue instead of failing to upgrade a read lock later."""
    if session.bind.dialect.name == "sqlite":
        await session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})


@asynccontextmanager
async def one_snapshot(session: AsyncSession) -> AsyncIterator[None]:
    """Within the block, what the session reads sees one snapshot of the database, as a page
    whose parts must agree needs (a board's counts and its cards). On PostgreSQL, READ
    COMMITTED gives each statement its own: the read transaction in progress ends (it wrote
    nothing) and a REPEATABLE READ, READ ONLY one runs the block, ended after it. On SQLite the
    block changes nothing: its one process serves the page's few statements one after another,
    and another request's write can still land between them (tests/db/test_snapshot.py)."""
    if session.bind.dialect.name != "postgresql":
        yield
        return
    if session.in_transaction():
        await session.commit()
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    try:
        yield
    finally:
        await session.commit()  # nothing to keep: it ends the snapshot for what comes after


_MEMOS = "issues.memos"

# What a transaction still has to number at commit (services/activity.take_numbers fills and
# empties it). A commit that finds it full would store rows without their numbers.
NUMBERS_TO_TAKE = "issues.numbers_to_take"


def _refuse_unnumbered_commit(session: Session) -> None:
    if session.info.get(NUMBERS_TO_TAKE):
        raise RuntimeError(
            "This transaction wrote activity or issues whose numbers were not taken: "
            "commit it through services.transaction.use_case (it calls take_numbers)."
        )


def _forget_numbers(session: Session, previous_transaction: Any) -> None:
    # Only when the whole transaction rolled back: a savepoint's rollback leaves the rows
    # written before it (take_numbers skips those it took away).
    if not previous_transaction.nested:
        session.info.pop(NUMBERS_TO_TAKE, None)


def transaction_memo(session: AsyncSession, name: str) -> dict[Any, Any]:
    """A dict for answers worth remembering within a transaction (the viewer's roles, asked
    several times by one page): emptied when the transaction writes anything (a flush) or ends.
    Only sessions made by a Database forget; others must not use it."""
    memos: dict[str, dict[Any, Any]] = session.info.setdefault(_MEMOS, {})
    return memos.setdefault(name, {})


def _forget_memos(session: Session, *_: Any) -> None:
    session.info.pop(_MEMOS, None)


class Database:
    """The engine and session factory an app uses; made in create_app, disposed after serving.

    Its sessions run `after_commit`'s hooks once a transaction that noted work commits.
    """

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 15, max_overflow: int = 5
    ) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow)
        # The async sessions proxy sessions of this sync factory: its events are this app's.
        sync_sessions = sessionmaker()
        for moment in ("after_flush", "after_commit", "after_soft_rollback"):
            event.listen(sync_sessions, moment, _forget_memos)
        event.listen(sync_sessions, "before_commit", _refuse_unnumbered_commit)
        event.listen(sync_sessions, "after_soft_rollback", _forget_numbers)
        self.after_commit = AfterCommit()
        self.after_commit.attach(sync_sessions)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=sync_sessions
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()


def init_app(app: Quart) -> Database:
    """The app's Database, closed after serving, and the request's session closed at teardown."""
    database = Database(
        app.config["DATABASE_URL"],
        echo=app.config["DATABASE_ECHO"],
        pool_size=app.config["DATABASE_POOL_SIZE"],
        max_overflow=app.config["DATABASE_MAX_OVERFLOW"],
    )
    app.extensions["database"] = database

    @app.after_serving
    async def dispose_engine() -> None:
        await database.dispose()

    @app.teardown_appcontext
    async def close_session(exception: BaseException | None) -> None:
        session: AsyncSession | None = g.pop("db_session", None)
        if session is not None:
            await session.close()

    return database


def get_database(app: Quart | None = None) -> Database:
    return (app or current_app).extensions["database"]


def get_session() -> AsyncSession:
    """The current request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_database().sessionmaker()
    return g.db_session
