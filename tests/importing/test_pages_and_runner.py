"""The import form on the settings page, the job page, the background runner and the CLI."""

from __future__ import annotations

import asyncio
from io import BytesIO
from pathlib import Path
from typing import Any

from quart import Quart
from quart.datastructures import FileStorage
from sqlalchemy import func, select, update

from app.db import utcnow
from app.models import ImportJob, ImportStatus, Issue, Role, User
from app.services.importing import ImportRunner
from tests.commands.test_cli import run_quart
from tests.factories import add_member, make_project, make_user
from tests.importing.exports import github_issue, jira_csv, jira_row, write_github, zip_folder
from tests.pages import PASSWORD, csrf_token, log_in, text_of

CSV = jira_csv(
    [
        jira_row("ABC-1", "Login fails", status="In Progress"),
        jira_row("ABC-2", "Odd status", status="Waiting for QA"),
    ]
)


async def people(app: Quart, *emails: str) -> list[User]:
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        return [
            await make_user(session, email=email, password_hash=await hasher.hash(PASSWORD))
            for email in emails
        ]


async def upload(client: Any, key: str, data: bytes, name: str, kind: str) -> Any:
    return await client.post(
        f"/p/{key}/imports",
        form={"kind": kind},
        files={"file": FileStorage(BytesIO(data), filename=name, content_type="text/csv")},
        headers={"X-CSRF-Token": await csrf_token(client)},
    )


def runner_of(app: Quart) -> ImportRunner:
    return app.extensions["import_runner"]


async def test_an_owner_uploads_a_jira_csv_and_the_job_page_shows_the_summary(
    app: Quart, client: Any
) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    settings = await text_of(await client.get("/p/WEB/settings"))
    assert 'action="/p/WEB/imports"' in settings and 'enctype="multipart/form-data"' in settings

    response = await upload(client, "WEB", CSV.encode(), "export.csv", "jira")
    assert response.status_code == 302
    job_url = response.headers["Location"]
    page = await text_of(await client.get(job_url))
    assert "queued" in page and "<progress" in page
    # The page moves with the project's stream, not by polling.
    assert 'id="live"' in page and "js/import_progress.js" in page and "hx-trigger" not in page

    assert await runner_of(app).deliver_pending() == 1
    part = await text_of(await client.get(job_url + "/progress"))
    assert 'data-status="done"' in part and "hx-trigger" not in part
    assert "Imported 2 issues (WEB-1 to WEB-2)" in part
    assert "Waiting for QA (todo)" in part
    assert "export.csv" in await text_of(await client.get("/p/WEB/settings"))
    async with app.extensions["database"].sessionmaker() as session:
        job = await session.scalar(select(ImportJob))
        source = Path(job.source_path)
    assert not await asyncio.to_thread(source.exists)  # the upload is gone once imported


async def test_a_broken_file_fails_the_job_with_its_message_and_imports_nothing(
    app: Quart, client: Any
) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    bad = jira_csv([jira_row("ABC-1", "x"), jira_row("ABC-2", "y", created="31/Feb/26 1:00 AM")])
    job_url = (await upload(client, "WEB", bad.encode(), "bad.csv", "jira")).headers["Location"]
    await runner_of(app).deliver_pending()
    part = await text_of(await client.get(job_url + "/progress"))
    assert 'data-status="failed"' in part
    assert "line 3 (ABC-2): unknown date &#34;31/Feb/26 1:00 AM&#34;" in part
    async with app.extensions["database"].sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Issue)) == 0


async def test_a_github_zip_is_imported_through_the_page(
    app: Quart, client: Any, tmp_path: Path
) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    folder = write_github(
        tmp_path / "gh", [github_issue(1, "One"), github_issue(2, "Two", body="See #1")]
    )
    data = zip_folder(folder, tmp_path / "gh.zip").read_bytes()
    job_url = (await upload(client, "WEB", data, "gh.zip", "github")).headers["Location"]
    await runner_of(app).deliver_pending()
    assert "Imported 2 issues" in await text_of(await client.get(job_url))
    async with app.extensions["database"].sessionmaker() as session:
        described = await session.scalar(select(Issue.description).where(Issue.number == 2))
    assert described == "See WEB-1"


async def test_a_bad_upload_is_refused_on_the_spot(app: Quart, client: Any) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    response = await upload(client, "WEB", CSV.encode(), "export.csv", "trello")
    assert response.status_code == 400 and "GitHub (.zip) or Jira (.csv)" in await text_of(response)
    response = await upload(client, "WEB", b"", "empty.csv", "jira")
    assert response.status_code == 400 and "That file is empty." in await text_of(response)
    async with app.extensions["database"].sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 0


async def test_members_who_do_not_manage_are_refused_and_others_see_nothing(
    app: Quart, client: Any
) -> None:
    owner, member, _stranger = await people(
        app, "owner@example.com", "member@example.com", "stranger@example.com"
    )
    async with app.extensions["database"].sessionmaker() as session:
        project = await make_project(session, owner, key="WEB")
        await add_member(session, project, member, Role.MEMBER)
    await log_in(client, "owner@example.com")
    job_url = (await upload(client, "WEB", CSV.encode(), "export.csv", "jira")).headers["Location"]
    for email, status in (("member@example.com", 403), ("stranger@example.com", 404)):
        other = app.test_client()
        await log_in(other, email)
        assert (await other.get(job_url)).status_code == status
        assert (await other.get(job_url + "/progress")).status_code == status
        assert (await upload(other, "WEB", CSV.encode(), "x.csv", "jira")).status_code == status
    async with app.extensions["database"].sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 1
    # Another project's job is not found under this one.
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="OTHER")
    assert (await client.get(job_url.replace("/WEB/", "/OTHER/"))).status_code == 404


async def test_two_runners_at_once_run_a_job_once(app: Quart, client: Any) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    for _ in range(3):
        await upload(client, "WEB", CSV.encode(), "export.csv", "jira")
    maker = app.extensions["database"].sessionmaker
    runners = [ImportRunner(maker, poll_seconds=1, lease_seconds=60) for _ in range(2)]
    ran = await asyncio.gather(*(runner.deliver_pending() for runner in runners))
    assert sum(ran) == 3
    async with maker() as session:
        jobs = list(await session.scalars(select(ImportJob)))
        assert [(job.status, job.attempts) for job in jobs] == [("done", 1)] * 3
        assert await session.scalar(select(func.count()).select_from(Issue)) == 6
        numbers = list(await session.scalars(select(Issue.number).order_by(Issue.number)))
    assert numbers == [1, 2, 3, 4, 5, 6]


async def test_racing_claims_hand_a_job_to_one_runner(app: Quart, client: Any) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    maker = app.extensions["database"].sessionmaker
    runners = [ImportRunner(maker, poll_seconds=1, lease_seconds=60) for _ in range(4)]
    for _ in range(3):
        await upload(client, "WEB", CSV.encode(), "export.csv", "jira")
        claims = await asyncio.gather(*(runner.claim() for runner in runners))
        won = [claim for claim in claims if claim is not None]
        assert len(won) == 1 and won[0].attempt == 1


async def test_a_job_whose_lease_ran_out_is_claimed_again_and_a_live_one_is_not(
    app: Quart, client: Any
) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    await upload(client, "WEB", CSV.encode(), "export.csv", "jira")
    runner = runner_of(app)
    claim = await runner.claim()
    assert claim is not None and claim.attempt == 1
    assert await runner.claim() is None  # leased
    maker = app.extensions["database"].sessionmaker
    async with maker() as session:
        await session.execute(update(ImportJob).values(lease_until=utcnow()))
        await session.commit()
    again = await runner.claim()
    assert again is not None and again.attempt == 2
    await runner.run(claim)  # the first claim lost its job: it commits nothing
    async with maker() as session:
        assert await session.scalar(select(func.count()).select_from(Issue)) == 0
    await runner.run(again)
    async with maker() as session:
        job = await session.scalar(select(ImportJob))
        assert job.status == ImportStatus.DONE
        assert await session.scalar(select(func.count()).select_from(Issue)) == 2


async def test_the_commands_import_and_merge(app: Quart, database_url: str, tmp_path: Path) -> None:
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        await make_project(session, owner, key="CLI")
    folder = write_github(
        tmp_path / "gh",
        [github_issue(1, "One", user="zed"), github_issue(2, "PR", pull_request=True)],
    )
    code, output = await run_quart(
        database_url, "import", "github", str(folder), "--project", "CLI"
    )
    assert code == 0, output
    assert "imported 1 issues (CLI-1 to CLI-1)" in output
    assert "skipped issues.json record 2 (#2): a pull request, not an issue" in output
    assert "placeholder: zed@placeholder.invalid" in output
    path = tmp_path / "export.csv"
    path.write_text(CSV)
    code, output = await run_quart(database_url, "import", "jira", str(path), "--project", "cli")
    assert code == 0 and "imported 2 issues (CLI-2 to CLI-3)" in output, output
    path.write_text("nothing,like,jira\n")
    code, output = await run_quart(database_url, "import", "jira", str(path), "--project", "CLI")
    assert code != 0 and "this is not Jira's CSV export" in output
    code, output = await run_quart(
        database_url, "merge-person", "zed@placeholder.invalid", "owner@example.com"
    )
    assert code == 0, output
    async with app.extensions["database"].sessionmaker() as session:
        reporter = await session.scalar(select(Issue.reporter_id).where(Issue.number == 1))
        assert reporter == owner.id
        assert (
            await session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.email == "zed@placeholder.invalid")
            )
            == 0
        )


async def test_the_progress_reaches_the_projects_streams_as_state_without_an_id(
    app: Quart, client: Any
) -> None:
    """Every report and the end, on the project's live stream (PostgreSQL: through the NOTIFY
    every worker's listener hears), as `event: import` without an id: never in the log."""
    [owner] = await people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        project = await make_project(session, owner, key="WEB")
    await log_in(client, "owner@example.com")
    broker = app.extensions["broker"]
    watcher = await broker.subscribe(project.id)
    try:
        await upload(client, "WEB", CSV.encode(), "export.csv", "jira")
        assert await runner_of(app).deliver_pending() == 1
        told: list[bytes] = []
        async with asyncio.timeout(10):
            while not told or b'"status":"done"' not in told[-1]:
                item = await watcher.queue.get(within=5)
                if isinstance(item, bytes) and item.startswith(b"event: import"):
                    told.append(item)
    finally:
        broker.unsubscribe(watcher)
    assert all(not item.startswith(b"id:") for item in told)
    assert told[0].startswith(
        b'event: import\ndata: {"job_id":1,"status":"running","processed":0,"total":2}'
    )
    assert b'"status":"done","processed":2,"total":2' in told[-1]
