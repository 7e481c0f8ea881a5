"""Backups as docs/deploy.md section 9 takes them: a pg_dump of a serving instance restored into a
new database that then serves the same issues, and `quart --app app backup` of an embedded one."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app import create_app
from app.db import create_engine, migrations
from app.models import Attachment, Comment, Issue
from tests.commands.test_cli import run_quart
from tests.conftest import (
    create_scratch_postgres_database,
    drop_scratch_postgres_database,
    postgres_admin_url,
)
from tests.factories import make_issue, make_project, make_user
from tests.servers import http, make_team, serve


def libpq_url(database_url: str) -> str:
    """What pg_dump and pg_restore take: the URL without SQLAlchemy's driver name."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def schema_revision(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).one()[0]
    finally:
        await engine.dispose()


@pytest.mark.postgresql_only
async def test_a_pg_dump_of_a_serving_instance_restores_into_a_database_that_serves_it(
    database_url: str, tmp_path: Path
) -> None:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.fail("the backup test needs PostgreSQL's client programs pg_dump and pg_restore")
    team = await make_team(database_url, issue_count=2)
    key = f"{team.project_key}-1"
    dump = tmp_path / "issues.dump"
    for logs in ("live", "restored"):
        (tmp_path / logs).mkdir()
    async with serve(database_url, tmp_path / "live", count=1) as [worker]:
        await team.open_board(worker)
        body = urlencode({"body": "Written just before the backup"})
        wrote = await http(worker.port, "POST", f"/{key}/comments", team.form(), body)
        assert wrote.status == 302, wrote.body[:500]
        # Taken while the worker serves, as the documented command does.
        await run("pg_dump", "-Fc", "--no-owner", "-d", libpq_url(database_url), "-f", str(dump))
    admin_url = postgres_admin_url()
    assert admin_url is not None
    restored = await create_scratch_postgres_database(admin_url)
    try:
        await run("pg_restore", "--no-owner", "-d", libpq_url(restored), str(dump))
        assert await schema_revision(restored) == await schema_revision(database_url)
        async with serve(restored, tmp_path / "restored", count=1) as [worker]:
            page = await http(worker.port, "GET", f"/{key}", team.headers())
            board = await http(worker.port, "GET", f"/p/{team.project_key}/board", team.headers())
        assert page.status == 200, page.body[:500]
        assert b"Written just before the backup" in page.body
        assert board.status == 200 and b"Card 1" in board.body
    finally:
        await drop_scratch_postgres_database(admin_url, restored)


async def test_the_backup_command_copies_an_embedded_instance_and_its_files(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'issues.db'}"
    engine = create_engine(database_url)
    await migrations.upgrade(engine)
    await engine.dispose()
    files = tmp_path / "attachments"
    app = create_app("testing", DATABASE_URL=database_url, ATTACHMENT_DIR=str(files))
    database = app.extensions["database"]
    storage = app.extensions["attachment_storage"]
    try:
        async with database.sessionmaker() as session:
            owner = await make_user(session, email="owner@example.com")
            project = await make_project(session, owner, key="BAK")
            await make_issue(session, owner, project, title="Kept in the backup")
        # A stored file, as an upload leaves it.
        (files / "1").mkdir(parents=True)
        (files / "1" / "a-file").write_bytes(b"attached bytes")
        (files / ".staging").mkdir()
        (files / ".staging" / "half-upload").write_bytes(b"not yet a file")
    finally:
        await database.dispose()
    assert storage.root == files

    status, output = await run_quart(
        database_url, "backup", str(tmp_path / "backup"), ATTACHMENT_DIR=str(files)
    )
    assert status == 0, output
    assert "1 attachment files copied" in output
    copy_url = f"sqlite+aiosqlite:///{tmp_path / 'backup' / 'issues.db'}"
    copy = create_app("testing", DATABASE_URL=copy_url)
    try:
        async with copy.extensions["database"].sessionmaker() as session:
            titles = list(await session.scalars(select(Issue.title)))
            assert await session.scalar(select(func.count()).select_from(Comment)) == 0
            assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
    finally:
        await copy.extensions["database"].dispose()
    assert titles == ["Kept in the backup"]
    assert (tmp_path / "backup" / "attachments" / "1" / "a-file").read_bytes() == b"attached bytes"
    assert not (tmp_path / "backup" / "attachments" / ".staging").exists()

    again, refusal = await run_quart(database_url, "backup", str(tmp_path / "backup"))
    assert again != 0 and "exists already" in refusal


async def test_the_backup_command_points_a_postgresql_instance_to_pg_dump(tmp_path: Path) -> None:
    status, output = await run_quart(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", "backup", str(tmp_path / "unused")
    )
    assert status != 0 and "pg_dump" in output
