"""The archive on the pages: downloaded from the settings (owners and admins only), restored
from the projects list as a background job with its progress and summary."""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest_asyncio
from quart import Quart
from quart.datastructures import FileStorage
from sqlalchemy import func, select

from app.models import ImportJob, Issue, Project, Role, User
from app.services import api_tokens
from app.services.importing import ImportRunner, archive
from tests.api.conftest import bearer
from tests.attachment_fixtures import attachments_app, stored_files
from tests.factories import add_member, make_attachment, make_issue, make_project
from tests.importing.test_pages_and_runner import people
from tests.mailcatcher import MailCatcher
from tests.pages import csrf_token, log_in, text_of


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher, tmp_path: Path) -> AsyncIterator[Quart]:
    async with attachments_app(database_url, mailbox, tmp_path) as made:
        yield made


def runner_of(app: Quart) -> ImportRunner:
    return app.extensions["import_runner"]


async def restore_upload(client: Any, data: bytes, key: str = "") -> Any:
    return await client.post(
        "/projects/restores",
        form={"key": key},
        files={
            "file": FileStorage(BytesIO(data), filename="web.zip", content_type="application/zip")
        },
        headers={"X-CSRF-Token": await csrf_token(client)},
    )


async def web_project(app: Quart) -> None:
    owner, member, _ = await people(
        app, "owner@example.com", "member@example.com", "stranger@example.com"
    )
    async with app.extensions["database"].sessionmaker() as session:
        project = await make_project(session, owner, key="WEB")
        await add_member(session, project, member, Role.MEMBER)
        issue = await make_issue(session, owner, project, title="Rocket")
        await make_issue(session, member, project, title="Fuel")
        await make_attachment(session, app.extensions["attachment_storage"], owner, issue)


async def test_an_owner_downloads_the_archive_and_restores_it_from_the_page(
    app: Quart, client: Any
) -> None:
    await web_project(app)
    await log_in(client, "owner@example.com")
    assert 'href="/p/WEB/export"' in await text_of(await client.get("/p/WEB/settings"))
    response = await client.get("/p/WEB/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="web-archive.zip"'
    data = await response.get_data()
    assert data[:2] == b"PK"

    assert "Restore a project from an archive" in await text_of(await client.get("/projects"))
    # The key is taken here: the job fails with that message, and nothing is made.
    response = await restore_upload(client, data)
    assert response.status_code == 302
    job_url = response.headers["Location"]
    page = await text_of(await client.get(job_url))
    assert "queued" in page and 'hx-trigger="every 1s"' in page
    files = stored_files(app)
    assert await runner_of(app).deliver_pending() == 1
    part = await text_of(await client.get(job_url + "/progress"))
    assert 'data-status="failed"' in part and "The key WEB is taken" in part
    assert stored_files(app) == files

    job_url = (await restore_upload(client, data, key="copy")).headers["Location"]
    assert await runner_of(app).deliver_pending() == 1
    part = await text_of(await client.get(job_url + "/progress"))
    assert 'data-status="done"' in part and "Restored COPY: " in part, part
    assert 'href="/p/COPY/board"' in part
    board = await text_of(await client.get("/p/COPY/board"))
    assert "Rocket" in board and "Fuel" in board
    async with app.extensions["database"].sessionmaker() as session:
        copy = await session.scalar(select(Project).where(Project.key == "COPY"))
        assert copy is not None
        numbers = await session.scalars(
            select(Issue.number).where(Issue.project_id == copy.id).order_by(Issue.number)
        )
        assert list(numbers) == [1, 2]
        job = await session.get(ImportJob, int(job_url.rsplit("/", 1)[1]))
        assert job is not None and job.project_id == copy.id
    assert len(stored_files(app)) == len(files) + 2  # the file and its thumbnail again


async def test_export_is_for_owners_and_admins_and_restore_jobs_for_their_owner(
    app: Quart, client: Any
) -> None:
    await web_project(app)
    for email, status in (("member@example.com", 403), ("stranger@example.com", 404)):
        other = app.test_client()
        await log_in(other, email)
        assert (await other.get("/p/WEB/export")).status_code == status
    assert (await app.test_client().get("/p/WEB/export")).status_code in (302, 401)
    await log_in(client, "owner@example.com")
    data = await (await client.get("/p/WEB/export")).get_data()
    job_url = (await restore_upload(client, data, key="COPY")).headers["Location"]
    other = app.test_client()
    await log_in(other, "member@example.com")
    assert (await other.get(job_url)).status_code == 404
    assert (await other.get(job_url + "/progress")).status_code == 404


async def test_a_bad_archive_fails_its_job_naming_the_fault_and_an_empty_file_is_refused(
    app: Quart, client: Any
) -> None:
    await web_project(app)
    await log_in(client, "owner@example.com")
    response = await restore_upload(client, b"")
    assert response.status_code == 400 and "That file is empty." in await text_of(response)
    job_url = (await restore_upload(client, b"not a zip")).headers["Location"]
    assert await runner_of(app).deliver_pending() == 1
    part = await text_of(await client.get(job_url + "/progress"))
    assert "This is not a project archive (.zip)" in part
    async with app.extensions["database"].sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Project)) == 1


async def test_the_api_exports_for_managers_and_the_document_lists_it(
    app: Quart, client: Any
) -> None:
    await web_project(app)
    async with app.extensions["database"].sessionmaker() as session:
        owner = await session.scalar(select(User).where(User.email == "owner@example.com"))
        member = await session.scalar(select(User).where(User.email == "member@example.com"))
        owner_token = (await api_tokens.create_token(session, owner, name="t", scope="read")).secret
        member_token = (
            await api_tokens.create_token(session, member, name="t", scope="read")
        ).secret
    response = await client.get("/api/v1/projects/WEB/export", headers=bearer(owner_token))
    assert response.status_code == 200 and response.content_type == "application/zip"
    saved = Path(app.instance_path) / "api.zip"
    saved.write_bytes(await response.get_data())
    lines = list(archive.iter_lines(saved))
    assert [line["title"] for line in lines if line["type"] == "issue"] == ["Rocket", "Fuel"]
    response = await client.get("/api/v1/projects/WEB/export", headers=bearer(member_token))
    assert response.status_code == 403
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    assert "get" in spec["paths"]["/api/v1/projects/{key}/export"]


async def test_a_restore_job_failing_in_the_database_leaves_no_project_rows_or_files(
    app: Quart, client: Any, tmp_path: Path
) -> None:
    await web_project(app)
    await log_in(client, "owner@example.com")
    data = await (await client.get("/p/WEB/export")).get_data()
    source, broken = tmp_path / "web.zip", tmp_path / "broken.zip"
    source.write_bytes(data)
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(broken, "w") as out:
        for name in original.namelist():
            content = original.read(name)
            if name == archive.RECORDS:
                lines = [json.loads(line) for line in content.splitlines()]
                events = [line for line in lines if line["type"] == "activity"]
                events[-1]["seq"] = events[0]["seq"]  # passes the check; the database refuses it
                content = "\n".join(json.dumps(line) for line in lines).encode()
            out.writestr(name, content)
    files = stored_files(app)
    async with app.extensions["database"].sessionmaker() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(model))
            for model in (Project, Issue, User)
        ]
    job_url = (await restore_upload(client, broken.read_bytes(), key="COPY")).headers["Location"]
    assert await runner_of(app).deliver_pending() == 1
    part = await text_of(await client.get(job_url + "/progress"))
    assert 'data-status="failed"' in part and "nothing was restored" in part
    assert stored_files(app) == files  # the attachment and thumbnail it stored are gone again
    async with app.extensions["database"].sessionmaker() as session:
        assert [
            await session.scalar(select(func.count()).select_from(model))
            for model in (Project, Issue, User)
        ] == counts
