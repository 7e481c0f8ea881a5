"""The first use cases: projects, numbered issues, comments, each with its activity row."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models import Activity, Comment, Issue, Membership, Project, Role
from app.services import comments, issue_views, issues, projects
from app.services.activity import activity_since
from tests.factories import add_member, make_issue, make_project, make_user


async def count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def test_the_creator_of_a_project_is_its_owner(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await projects.create_project(session, alice, key=" web ", name="Website")
    assert project.key == "WEB"
    role = await session.scalar(select(Membership.role).where(Membership.project_id == project.id))
    assert role == Role.OWNER
    [created] = await activity_since(session, project.id, 0)
    assert (created.seq, created.kind, created.actor_id) == (1, "project.created", alice.id)


@pytest.mark.parametrize("key", ["W", "1WEB", "WEB-1", "TOOLONGKEY1", ""])
async def test_a_bad_project_key_is_refused_and_nothing_is_written(
    session: AsyncSession, key: str
) -> None:
    alice = await make_user(session)
    with pytest.raises(Invalid) as refusal:
        await projects.create_project(session, alice, key=key, name="Website")
    assert refusal.value.field == "key"
    assert await count(session, Project) == 0


async def test_a_taken_key_is_a_conflict(session: AsyncSession) -> None:
    alice = await make_user(session)
    await projects.create_project(session, alice, key="WEB", name="Website")
    with pytest.raises(Conflict):
        await projects.create_project(session, alice, key="web", name="Other")
    assert await count(session, Project) == 1


async def test_issues_are_numbered_per_project(session: AsyncSession) -> None:
    alice = await make_user(session)
    web = await make_project(session, alice, key="WEB")
    api = await make_project(session, alice, key="API")
    first = await make_issue(session, alice, web)
    second = await make_issue(session, alice, web)
    other = await make_issue(session, alice, api)
    assert [first.key, second.key, other.key] == ["WEB-1", "WEB-2", "API-1"]
    assert first.version == 1
    assert second.position > first.position
    assert first.created_at.tzinfo is not None


async def test_creating_an_issue_writes_its_activity_row(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice, key="WEB")
    issue = await issues.create_issue(
        session, alice, project.id, title="Login is slow", priority="high", type="bug"
    )
    [_, created] = await activity_since(session, project.id, 0)
    assert created.kind == "issue.created"
    assert created.seq == 2
    assert created.issue_id == issue.id
    assert created.payload == {"number": 1, "title": "Login is slow", "status": "Backlog"}
    assert created.created_at.tzinfo is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "priority": "critical"}, "priority"),
        ({"title": "ok", "type": "epic"}, "type"),
        ({"title": "ok", "status_id": 999}, "status"),
        ({"title": "ok", "assignee_id": 999}, "assignee"),
        ({"title": "ok", "label_ids": [999]}, "labels"),
    ],
)
async def test_an_invalid_issue_writes_nothing_and_takes_no_number(
    session: AsyncSession, fields: dict, field: str
) -> None:
    alice = await make_user(session)
    project_id = (await make_project(session, alice)).id
    with pytest.raises(Invalid) as refusal:
        await issues.create_issue(session, alice, project_id, **fields)
    assert refusal.value.field == field
    assert await count(session, Issue) == 0
    assert await count(session, Activity) == 1  # only project.created
    issue = await issues.create_issue(session, alice, project_id, title="Valid")
    assert issue.number == 1


async def test_a_viewer_cannot_create_issues_and_an_outsider_cannot_see_a_private_project(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    viewer = await make_user(session)
    outsider = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await add_member(session, project, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        await issues.create_issue(session, viewer, project_id, title="Nope")
    with pytest.raises(NotFound):
        await issues.create_issue(session, outsider, project_id, title="Nope")
    with pytest.raises(NotFound):
        await issue_views.get_issue(session, outsider, project_id, 1)
    assert await count(session, Issue) == 0


async def test_a_public_project_is_readable_but_not_writable_by_outsiders(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    outsider = await make_user(session)
    project = await make_project(session, owner, is_public=True)
    issue = await make_issue(session, owner, project)
    found = await issue_views.get_issue(session, outsider, project.id, issue.number)
    assert found.id == issue.id
    with pytest.raises(Forbidden):
        await comments.add_comment(session, outsider, issue.id, "drive-by")


async def test_a_comment_is_added_with_its_activity_row(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    issue = await make_issue(session, alice, project)
    comment = await comments.add_comment(session, alice, issue.id, "  Seen on *staging* too. ")
    assert comment.body == "Seen on *staging* too."
    events = await activity_since(session, project.id, 2)
    assert [(e.seq, e.kind, e.payload) for e in events] == [
        (3, "comment.added", {"comment_id": comment.id})
    ]


async def test_an_empty_comment_is_refused(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    issue = await make_issue(session, alice, project)
    with pytest.raises(Invalid):
        await comments.add_comment(session, alice, issue.id, "   ")
    assert await count(session, Comment) == 0


async def test_replay_reads_only_what_came_after(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    for _ in range(4):
        await make_issue(session, alice, project)
    assert [e.seq for e in await activity_since(session, project.id, 3)] == [4, 5]
    assert await activity_since(session, project.id, 5) == []


async def test_the_sidebar_lists_the_first_projects_by_name_and_not_archived_ones(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    for key in ("PC", "PA", "PB"):
        await make_project(session, owner, key=key)  # named "Project <key>"
    archived = await make_project(session, owner, key="OLD")
    await projects.set_archived(session, owner, archived.id, True)
    listed = (await projects.navigation(session, owner)).projects
    assert [p.key for p in listed] == ["PA", "PB", "PC"]
    first_two = (await projects.navigation(session, owner, limit=2)).projects
    assert [p.key for p in first_two] == ["PA", "PB"]
    newcomer = await make_user(session)
    assert (await projects.navigation(session, newcomer)).projects == []
