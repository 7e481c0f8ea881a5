"""Comments: added with their activity row, never empty, edited and deleted by their author only."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid, NotFound
from app.models import Comment
from app.services import comments, issue_views
from app.services.activity import activity_since
from tests.factories import add_member, make_issue, make_project, make_user
from tests.services.rows import count


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


async def test_only_the_author_edits_or_deletes_a_comment_and_the_timeline_keeps_it(
    session: AsyncSession,
) -> None:
    ann = await make_user(session)
    bob = await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    comment = await comments.add_comment(session, ann, issue.id, "first words")
    comment_id = comment.id
    with pytest.raises(Forbidden):
        await comments.edit_comment(session, bob, comment_id, "hijacked")
    await comments.edit_comment(session, ann, comment_id, "better words")
    await comments.delete_comment(session, ann, comment_id)
    kinds = [entry.kind for entry in await issue_views.timeline(session, issue)]
    assert kinds == ["issue.created", "comment", "comment.edited", "comment.deleted"]
    with pytest.raises(NotFound):
        await comments.edit_comment(session, ann, comment_id, "again")
