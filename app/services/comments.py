"""Comments: Markdown, editable and deletable by their author, with @mentions that notify."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.models import Comment, Issue, Membership, Project, User
from app.rendering.markdown import find_mentions
from app.services import attachments, notifications, search
from app.services.access import readable_project, writable_project
from app.services.activity import record_activity
from app.services.text import storable
from app.services.transaction import use_case

BODY_MAX = 20_000


def _body(body: str) -> str:
    body = storable(body).strip()
    if not 1 <= len(body) <= BODY_MAX:
        raise Invalid(f"A comment is 1 to {BODY_MAX} characters.", field="body")
    return body


async def mentioned_readers(session: AsyncSession, project: Project, text: str) -> list[int]:
    """Users @mentioned in `text` who may read the project (others are not told)."""
    handles = find_mentions(text)
    if not handles:
        return []
    query = select(User.id).where(User.handle.in_(handles))
    if not project.is_public:
        query = query.join(
            Membership, (Membership.user_id == User.id) & (Membership.project_id == project.id)
        )
    return list(await session.scalars(query))


async def list_comments(
    session: AsyncSession, viewer: User | None, issue_id: int, *, after_id: int = 0, limit: int = 50
) -> tuple[list[Comment], bool]:
    """One page of the issue's comments, oldest first, deleted ones left out, and whether more
    follow. NotFound when the viewer may not read the issue."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue.")
    await readable_project(session, viewer, issue.project_id)
    rows = list(
        await session.scalars(
            select(Comment)
            .where(
                Comment.issue_id == issue_id, Comment.deleted_at.is_(None), Comment.id > after_id
            )
            .options(selectinload(Comment.author))
            .order_by(Comment.id)
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


async def get_comment(
    session: AsyncSession, viewer: User | None, issue_id: int, comment_id: int
) -> Comment:
    """One comment of the issue, with its author; NotFound when missing, deleted or unreadable."""
    comment = await session.scalar(
        select(Comment)
        .where(Comment.id == comment_id, Comment.issue_id == issue_id)
        .options(selectinload(Comment.author))
    )
    if comment is None or comment.deleted_at is not None:
        raise NotFound("No such comment.")
    issue = await session.get(Issue, issue_id)
    assert issue is not None
    await readable_project(session, viewer, issue.project_id)
    return comment


@use_case
async def add_comment(session: AsyncSession, actor: User, issue_id: int, body: str) -> Comment:
    """Add a Markdown comment. The author starts watching; watchers and mentioned people are
    notified. Raises NotFound, Forbidden or Invalid."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue.")
    project = await writable_project(session, actor, issue.project_id)
    body = _body(body)

    comment = Comment(issue_id=issue.id, author_id=actor.id, body=body)
    session.add(comment)
    await session.flush()
    activity = await record_activity(
        session, project, actor, "comment.added", issue=issue, payload={"comment_id": comment.id}
    )
    await session.flush()
    await notifications.watch_automatically(session, issue, [actor.id])
    await notifications.notify(
        session,
        issue,
        activity,
        actor,
        commented=True,
        mentioned=await mentioned_readers(session, project, body),
    )
    await search.refresh_search_document(session, issue.id)
    await attachments.claim_for_comment(session, actor, comment)
    return comment


async def own_comment(
    session: AsyncSession, actor: User, comment_id: int
) -> tuple[Comment, Issue, Project]:
    """The actor's own comment, its issue and project, if they may still change it: NotFound
    for a missing or deleted one, Forbidden for someone else's or in a read-only project."""
    comment = await session.get(Comment, comment_id)
    if comment is None or comment.deleted_at is not None:
        raise NotFound("No such comment.")
    issue = await session.get(Issue, comment.issue_id)
    assert issue is not None
    project = await writable_project(session, actor, issue.project_id)
    if comment.author_id != actor.id:
        raise Forbidden("You can only change your own comments.")
    return comment, issue, project


@use_case
async def edit_comment(session: AsyncSession, actor: User, comment_id: int, body: str) -> Comment:
    """Change the text of one's own comment; the timeline keeps that it was edited."""
    comment, issue, project = await own_comment(session, actor, comment_id)
    body = _body(body)
    if body == comment.body:
        return comment
    comment.body, comment.edited_at = body, utcnow()
    await record_activity(
        session, project, actor, "comment.edited", issue=issue, payload={"comment_id": comment.id}
    )
    await search.refresh_search_document(session, issue.id)
    await attachments.claim_for_comment(session, actor, comment)
    return comment


@use_case
async def delete_comment(session: AsyncSession, actor: User, comment_id: int) -> None:
    """Remove one's own comment. Its text and its files go; the timeline keeps that it was
    deleted."""
    comment, issue, project = await own_comment(session, actor, comment_id)
    await attachments.release_comment_attachments(session, project, actor, issue, comment)
    comment.deleted_at, comment.body = utcnow(), ""
    await record_activity(
        session, project, actor, "comment.deleted", issue=issue, payload={"comment_id": comment.id}
    )
    await search.refresh_search_document(session, issue.id)
