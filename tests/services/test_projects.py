"""Projects: created under a checked key, listed to who may see them, their workflow and members."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models import Membership, Project, Role
from app.services import projects
from app.services.activity import activity_since
from tests.factories import add_member, make_issue, make_project, make_user
from tests.services.rows import count, statuses


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


async def test_private_projects_are_invisible_in_lists(session: AsyncSession) -> None:
    owner = await make_user(session)
    outsider = await make_user(session)
    await make_project(session, owner, key="PRIV")
    await make_project(session, owner, key="OPEN", is_public=True)
    assert [p.key for p in await projects.visible_projects(session, outsider)] == ["OPEN"]
    # Anonymous readers (the API's) see public projects only.
    assert [p.key for p in await projects.visible_projects(session, None)] == ["OPEN"]
    with pytest.raises(NotFound):
        await projects.project_by_key(session, None, "PRIV")
    with pytest.raises(NotFound):
        await projects.project_by_key(session, outsider, "PRIV")


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


# --- Workflow ---------------------------------------------------------------------------------


async def test_a_new_project_has_the_default_workflow(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    columns = await projects.workflow(session, project.id)
    assert [(c.name, c.category) for c in columns] == [
        ("Backlog", "todo"),
        ("To do", "todo"),
        ("In progress", "in_progress"),
        ("In review", "in_progress"),
        ("Done", "done"),
    ]


async def test_the_workflow_can_be_changed_by_admins_only(session: AsyncSession) -> None:
    owner = await make_user(session)
    member = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await add_member(session, project, member)
    with pytest.raises(Forbidden):
        await projects.add_status(session, member, project_id, name="QA", category="in_progress")
    qa = await projects.add_status(session, owner, project_id, name="QA", category="in_progress")
    await projects.move_status(session, owner, project_id, qa.id, offset=-1)
    names = [status.name for status in await projects.workflow(session, project_id)]
    assert names == ["Backlog", "To do", "In progress", "In review", "QA", "Done"]
    with pytest.raises(Invalid):
        await projects.add_status(session, owner, project_id, name="qa", category="todo")


async def test_a_status_with_issues_cannot_be_removed(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await make_issue(session, owner, project)
    backlog = (await statuses(session, project_id))["Backlog"]
    with pytest.raises(Invalid, match="Move the issues out"):
        await projects.delete_status(session, owner, project_id, backlog)
    done = (await statuses(session, project_id))["Done"]
    await projects.delete_status(session, owner, project_id, done)
    assert "Done" not in await statuses(session, project_id)


# --- Members and roles ------------------------------------------------------------------------


async def test_the_last_owner_cannot_leave_or_be_demoted(session: AsyncSession) -> None:
    owner = await make_user(session)
    admin = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await projects.add_member(session, owner, project_id, email=admin.email, role="admin")
    with pytest.raises(Invalid, match="last owner"):
        await projects.remove_member(session, owner, project_id, owner.id)
    with pytest.raises(Invalid, match="needs an owner"):
        await projects.change_role(session, owner, project_id, owner.id, "member")
    with pytest.raises(Forbidden):
        await projects.change_role(session, admin, project_id, admin.id, "owner")
    await projects.change_role(session, owner, project_id, admin.id, "owner")
    await projects.remove_member(session, owner, project_id, owner.id)  # now they may leave
    assert [m.role for m in await projects.members(session, project_id)] == [Role.OWNER]


async def test_members_are_added_by_the_address_of_an_existing_account(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    with pytest.raises(Invalid, match="No account"):
        await projects.add_member(
            session, owner, project_id, email="ghost@example.com", role="member"
        )
    friend = await make_user(session, email="friend@example.com")
    added = await projects.add_member(
        session, owner, project_id, email=" Friend@Example.com ", role="viewer"
    )
    assert (added.user.id, added.role) == (friend.id, Role.VIEWER)
