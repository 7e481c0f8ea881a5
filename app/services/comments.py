"""Commenting on issues."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid, NotFound
from app.models import Comment, Issue, User
from app.services.access import writable_project
from app.services.activity import record_activity
from app.services.transaction import use_case

BODY_MAX = 20_000


@use_case
async def add_comment(session: AsyncSession, actor: User, issue_id: int, body: str) -> Comment:
    """Add a Markdown comment to an issue. Raises NotFound, Forbidden or Invalid."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue.")
    project = await writable_project(session, actor, issue.project_id)
    body = body.strip()
    if not 1 <= len(body) <= BODY_MAX:
        raise Invalid(f"A comment is 1 to {BODY_MAX} characters.", field="body")

    comment = Comment(issue_id=issue.id, author_id=actor.id, body=body)
    session.add(comment)
    await session.flush()
    await record_activity(
        session, project, actor, "comment.added", issue=issue, payload={"comment_id": comment.id}
    )
    await session.commit()
    return comment
