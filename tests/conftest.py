"""Fixtures: a migrated database per backend, an app on it, its client and a session.

Every test that uses a database runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set
or ISSUES_REQUIRE_POSTGRES=1 says it must (then an unreachable server fails the run).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from quart import Quart
from quart.typing import TestClientProtocol
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from app.config import normalise_database_url
from app.db import Base, create_engine, migrations
from tests.mailcatcher import MailCatcher
from tests.oidc_provider import OidcProvider, start_provider

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# The address of the apps the tests make (the OpenID provider registers its callback).
TEST_BASE_URL = "http://issues.test"


def _required(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def postgres_admin_url() -> str | None:
    """The server the PostgreSQL tests use, or None when they are not asked for."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    if _required("ISSUES_REQUIRE_POSTGRES"):
        return DEFAULT_POSTGRES_URL
    return None


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and postgres_admin_url() is None:
        pytest.skip("PostgreSQL tests run when TEST_DATABASE_URL or ISSUES_REQUIRE_POSTGRES is set")
    return request.param


async def create_scratch_postgres_database(admin_url: str) -> str:
    """Create an empty database beside the configured one and return its URL."""
    url = make_url(admin_url)
    name = f"issues_test_{uuid.uuid4().hex[:10]}"
    try:
        connection = await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
        )
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(f"PostgreSQL is required for this run but unreachable at {url.host}: {error}")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_postgres_database(admin_url: str, scratch_url: str) -> None:
    url = make_url(admin_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        name = make_url(scratch_url).database
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="session")
async def migrated_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database built by the Alembic migrations, once per backend per run."""
    if backend == "sqlite":
        template = tmp_path_factory.mktemp("sqlite") / "template.db"
        url = f"sqlite+aiosqlite:///{template}"
        engine = create_engine(url)
        await migrations.upgrade(engine)
        await engine.dispose()
        yield url
        return
    admin_url = postgres_admin_url()
    assert admin_url is not None
    url = await create_scratch_postgres_database(admin_url)
    engine = create_engine(url)
    await migrations.upgrade(engine)
    await engine.dispose()
    yield url
    await drop_scratch_postgres_database(admin_url, url)


@pytest_asyncio.fixture
async def database_url(migrated_database: str, backend: str, tmp_path: Path) -> str:
    """A clean migrated database for one test: a copy of the SQLite template, or PostgreSQL's
    tables emptied."""
    if backend == "sqlite":
        template = Path(make_url(migrated_database).database or "")
        copy = tmp_path / "issues.db"
        shutil.copyfile(template, copy)
        return f"sqlite+aiosqlite:///{copy}"
    engine = create_engine(migrated_database)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    return migrated_database


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[MailCatcher]:
    """A real SMTP server (aiosmtpd) on a free loopback port, catching every message."""
    catcher = MailCatcher()
    catcher.start()
    yield catcher
    catcher.stop()


@pytest.fixture
def mailbox(smtp_server: MailCatcher) -> MailCatcher:
    """The SMTP server, emptied and running, for one test."""
    smtp_server.start()
    smtp_server.messages.clear()
    return smtp_server


def app_settings(database_url: str, mailbox: MailCatcher, **overrides: Any) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url,
        "MAIL_HOST": "127.0.0.1",
        "MAIL_PORT": mailbox.port,
        "BASE_URL": TEST_BASE_URL,
        **overrides,
    }


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher) -> AsyncIterator[Quart]:
    app = create_app("testing", **app_settings(database_url, mailbox))
    async with app.test_app() as test_app:
        yield test_app.app


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    return app.test_client()


@pytest_asyncio.fixture
async def session(app: Quart) -> AsyncIterator[AsyncSession]:
    async with app.extensions["database"].sessionmaker() as session:
        yield session


# A line at the end of the run that says how many tests passed on each backend.
_backend_of_test: dict[str, str] = {}
_passed_by_backend: Counter[str] = Counter()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test marked `postgresql_only` (several workers sharing one server) has no SQLite run:
    # it is left out rather than skipped, so that a skip in CI always means something is missing.
    sqlite_only_copies = [
        item
        for item in items
        if item.get_closest_marker("postgresql_only")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("backend") == "sqlite"
    ]
    if sqlite_only_copies:
        config.hook.pytest_deselected(items=sqlite_only_copies)
        items[:] = [item for item in items if item not in sqlite_only_copies]
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend" in callspec.params:
            _backend_of_test[item.nodeid] = callspec.params["backend"]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and report.nodeid in _backend_of_test:
        _passed_by_backend[_backend_of_test[report.nodeid]] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _backend_of_test:
        counts = ", ".join(f"{name}: {_passed_by_backend[name]}" for name in BACKENDS)
        terminalreporter.write_line(f"tests passed per database backend: {counts}")


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OpenID provider (oidc-provider on Node) for apps at http://issues.test."""
    provider = start_provider([f"{TEST_BASE_URL}/auth/oidc/callback"])
    yield provider
    provider.stop()
