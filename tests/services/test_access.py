"""Access: viewers only read, outsiders see no private project, an archived one is read-only."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, NotFound
from app.models import Issue, Role
from app.services import comments, issue_views, issues, projects
from app.services.issues import IssueChanges
from tests.factories import add_member, make_issue, make_project, make_user
from tests.services.rows import count


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


async def test_a_viewer_can_read_but_not_edit(session: AsyncSession) -> None:
    owner = await make_user(session)
    viewer = await make_user(session)
    project = await make_project(session, owner)
    await add_member(session, project, viewer, Role.VIEWER)
    issue = await make_issue(session, owner, project)
    assert (await issue_views.get_issue_by_key(session, viewer, issue.key)).id == issue.id
    with pytest.raises(Forbidden):
        await issues.update_issue(
            session, viewer, issue.id, IssueChanges(title="x"), expected_version=None
        )


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


async def test_an_archived_project_is_read_only(session: AsyncSession) -> None:
    owner = await make_user(session)
    project = await make_project(session, owner)
    project_id = project.id
    await projects.set_archived(session, owner, project_id, True)
    with pytest.raises(Forbidden, match="archived"):
        await issues.create_issue(session, owner, project_id, title="Too late")
    await projects.set_archived(session, owner, project_id, False)
    assert (await issues.create_issue(session, owner, project_id, title="Back")).number == 1
