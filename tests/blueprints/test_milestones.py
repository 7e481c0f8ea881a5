"""The milestone pages: created, planned into from the issue page and the bulk edit, shown with
their progress and burn-up table, closed after saying where the open issues go; a private
project's milestones are not there for anyone else."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from quart import Quart
from sqlalchemy import select

from app.models import Issue, Milestone
from app.services import issues, milestones
from app.services.issues import IssueChanges
from tests.factories import make_issue, make_project, make_user
from tests.pages import PASSWORD, log_in, submit, text_of

if TYPE_CHECKING:  # as a module name, pytest would try to collect it as a test class
    from quart.typing import TestClientProtocol

CHART_DATA = re.compile(r'<script type="application/json" id="burn-up-data">(.*?)</script>', re.S)


async def _people(app: Quart, *emails: str) -> list:
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        return [
            await make_user(session, email=email, password_hash=await hasher.hash(PASSWORD))
            for email in emails
        ]


async def _milestone_of(app: Quart, issue_id: int) -> int | None:
    async with app.extensions["database"].sessionmaker() as session:
        return await session.scalar(select(Issue.milestone_id).where(Issue.id == issue_id))


async def test_a_writer_plans_issues_into_a_milestone_and_closes_it_from_the_pages(
    app: Quart, client: TestClientProtocol
) -> None:
    [owner] = await _people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        project = await make_project(session, owner, key="WEB")
        first = await make_issue(session, owner, project, title="Sign-in page")
        second = await make_issue(session, owner, project, title="Sign-up page")
    await log_in(client, "owner@example.com")

    made = await submit(
        client, "/p/WEB/milestones", {"title": "", "due": "2026-12-31", "description": ""}
    )
    assert made.status_code == 400 and "1 to 100 characters" in await text_of(made)
    made = await submit(
        client,
        "/p/WEB/milestones",
        {"title": "1.0", "due": "2026-12-31", "description": "**Ship** it"},
    )
    assert made.status_code == 302
    async with app.extensions["database"].sessionmaker() as session:
        release = await session.scalar(select(Milestone))
    milestone_url = f"/p/WEB/milestones/{release.id}"
    assert made.headers["Location"] == milestone_url

    issue_page = await text_of(await client.get("/WEB-1"))
    assert 'name="milestone"' in issue_page and ">1.0</option>" in issue_page
    edited = await submit(
        client, "/WEB-1/edit", {"field": "milestone", "milestone": str(release.id), "version": "1"}
    )
    assert edited.status_code == 302
    assert await _milestone_of(app, first.id) == release.id
    await submit(client, "/WEB-1/edit", {"field": "estimate", "estimate": "3", "version": "2"})
    bulk = await submit(
        client, "/p/WEB/issues/bulk", {"issue": str(second.id), "milestone": str(release.id)}
    )
    assert bulk.status_code == 302
    assert await _milestone_of(app, second.id) == release.id

    page = await text_of(await client.get(milestone_url))
    assert "<strong>Ship</strong> it" in page
    assert "0 of 2 issues done" in page and "0 of 3 points done" in page
    assert "Sign-in page" in page and "Sign-up page" in page
    chart = json.loads(CHART_DATA.search(page).group(1))
    assert chart["scope"][-1] == 2 and chart["done"][-1] == 0
    assert "<table" in page  # the chart, readable without JavaScript
    listing = await text_of(await client.get("/p/WEB/milestones"))
    assert milestone_url in listing and "Due" in listing
    assert milestone_url in await text_of(await client.get("/p/WEB/roadmap"))

    refused = await submit(client, f"{milestone_url}/close", {})
    assert refused.status_code == 400 and "2 open issues" in await text_of(refused)
    assert 'value="none"' in await text_of(await client.get(f"{milestone_url}/close"))
    closed = await submit(client, f"{milestone_url}/close", {"move_to": "none"})
    assert closed.status_code == 302
    assert await _milestone_of(app, first.id) is None
    assert await _milestone_of(app, second.id) is None
    assert "Reopen the milestone" in await text_of(await client.get(milestone_url))


async def test_a_private_projects_milestones_are_not_there_for_outsiders(
    app: Quart, client: TestClientProtocol
) -> None:
    owner, _ = await _people(app, "owner@example.com", "outsider@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        project = await make_project(session, owner, key="SEC")
        release = await milestones.create_milestone(
            session, owner, project.id, title="Secret launch"
        )
        issue = await make_issue(session, owner, project, title="Hidden work")
        await issues.update_issue(
            session, owner, issue.id, IssueChanges(milestone_id=release.id), expected_version=None
        )
    await log_in(client, "outsider@example.com")
    base = f"/p/SEC/milestones/{release.id}"
    for path in ("/p/SEC/milestones", "/p/SEC/roadmap", base, f"{base}/close"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "Secret launch" not in await text_of(answer)
    for form_path in (f"{base}/edit", f"{base}/reopen", "/p/SEC/milestones"):
        answer = await submit(client, form_path, {"title": "Mine now"})
        assert answer.status_code == 404, form_path
    found = await text_of(await client.get('/search?q=milestone:"Secret launch"'))
    assert "Hidden work" not in found and "Secret launch" not in found.split("<input")[0]


async def test_the_board_filters_by_milestone_and_its_cards_say_which(
    app: Quart, client: TestClientProtocol
) -> None:
    [owner] = await _people(app, "owner@example.com")
    async with app.extensions["database"].sessionmaker() as session:
        project = await make_project(session, owner, key="WEB")
        release = await milestones.create_milestone(session, owner, project.id, title="1.0")
        await issues.create_issue(
            session, owner, project.id, title="Planned work", milestone_id=release.id
        )
        await make_issue(session, owner, project, title="Loose end")
    await log_in(client, "owner@example.com")
    board = await text_of(await client.get(f"/p/WEB/board?milestone={release.id}"))
    assert "Planned work" in board and "Loose end" not in board
    assert f'data-milestone="{release.id}"' in board
    assert f'data-filter-milestone="{release.id}"' in board  # board.js filters live cards so
    unplanned = await text_of(await client.get("/p/WEB/board?milestone=none"))
    assert "Loose end" in unplanned and "Planned work" not in unplanned
    assert (await client.get("/p/WEB/board?milestone=1.0")).status_code == 400
