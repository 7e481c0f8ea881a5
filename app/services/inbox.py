"""A person's inbox: their notifications grouped by issue, read, done, and the unread count.

Every read checks access again (a person removed from a private project sees nothing of it,
not even its titles), and every write touches only the person's own rows (decision 0028).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import ColumnElement

from app.db import utcnow
from app.errors import NotFound
from app.models import Activity, Issue, Membership, Notification, Project, User
from app.services.history import describe
from app.services.notifications import REASON_TEXT, inbox_changed
from app.services.transaction import use_case

PAGE_SIZE = 25
# The header shows "99+" past this: counting further would read rows nobody needs.
COUNT_CAP = 99


class Tab(StrEnum):
    UNREAD = "unread"
    ALL = "all"
    DONE = "done"


@dataclass(frozen=True)
class Entry:
    """One issue in the inbox: what happened to it lately, and why the person hears of it."""

    issue_id: int
    issue_key: str
    title: str
    project_name: str
    reasons: list[str]
    latest_change: str
    latest_at: datetime
    unread: bool
    cursor: int  # the newest row's id: the next page starts below it


@dataclass(frozen=True)
class InboxPage:
    entries: list[Entry]
    next_cursor: int | None


def _readable_by(user_id: int) -> ColumnElement[bool]:
    """The notification's project is one the person may read now."""
    return or_(
        Project.is_public.is_(True),
        exists().where(Membership.project_id == Project.id, Membership.user_id == user_id),
    )


def _in_tab(tab: Tab) -> ColumnElement[bool]:
    return Notification.done_at.is_not(None) if tab is Tab.DONE else Notification.done_at.is_(None)


async def inbox_page(
    session: AsyncSession,
    user: User,
    tab: Tab = Tab.UNREAD,
    *,
    before: int | None = None,
    page_size: int = PAGE_SIZE,
) -> InboxPage:
    """One page of the person's inbox, newest first, one entry per issue. `before` is the
    previous page's `next_cursor` (keyset pagination: a page costs the same at any depth)."""
    unread = func.sum(case((Notification.read_at.is_(None), 1), else_=0))
    newest = func.max(Notification.id)
    query = (
        select(Notification.issue_id, newest.label("newest"), unread.label("unread"))
        .join(Issue, Issue.id == Notification.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .where(Notification.user_id == user.id, _in_tab(tab), _readable_by(user.id))
        .group_by(Notification.issue_id)
        .order_by(newest.desc())
        .limit(page_size + 1)
    )
    if tab is Tab.UNREAD:
        query = query.having(unread > 0)
    if before is not None:
        query = query.having(newest < before)
    groups = (await session.execute(query)).all()
    more = len(groups) > page_size
    groups = groups[:page_size]
    if not groups:
        return InboxPage([], None)
    issue_ids = [group.issue_id for group in groups]
    issues = {
        issue.id: issue
        for issue in await session.scalars(
            select(Issue).where(Issue.id.in_(issue_ids)).options(selectinload(Issue.project))
        )
    }
    newest_rows = {
        row.id: row
        for row in await session.scalars(
            select(Notification).where(Notification.id.in_([group.newest for group in groups]))
        )
    }
    activities = {
        activity.id: activity
        for activity in await session.scalars(
            select(Activity)
            .where(Activity.id.in_({row.activity_id for row in newest_rows.values()}))
            .options(selectinload(Activity.actor))
        )
    }
    reasons: dict[int, list[str]] = {}
    for issue_id, reason in await session.execute(
        select(Notification.issue_id, Notification.reason)
        .where(
            Notification.user_id == user.id,
            Notification.issue_id.in_(issue_ids),
            _in_tab(tab),
        )
        .distinct()
        .order_by(Notification.issue_id, Notification.reason)
    ):
        reasons.setdefault(issue_id, []).append(REASON_TEXT.get(reason, reason))
    entries = []
    for group in groups:
        issue, row = issues[group.issue_id], newest_rows[group.newest]
        activity = activities.get(row.activity_id)
        entries.append(
            Entry(
                issue_id=issue.id,
                issue_key=issue.key,
                title=issue.title,
                project_name=issue.project.name,
                reasons=reasons.get(issue.id, []),
                latest_change=describe(activity) if activity else "",
                latest_at=row.created_at,
                unread=bool(group.unread),
                cursor=group.newest,
            )
        )
    return InboxPage(entries, entries[-1].cursor if more else None)


async def unread_count(session: AsyncSession, user_id: int) -> int:
    """How many issues have unread entries in the person's inbox, counted up to COUNT_CAP + 1
    (the header shows "99+")."""
    unread_issues = (
        select(Notification.issue_id)
        .join(Issue, Issue.id == Notification.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .where(
            Notification.user_id == user_id,
            Notification.done_at.is_(None),
            Notification.read_at.is_(None),
            _readable_by(user_id),
        )
        .distinct()
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return await session.scalar(select(func.count()).select_from(unread_issues)) or 0


def count_label(count: int) -> str:
    return f"{COUNT_CAP}+" if count > COUNT_CAP else str(count)


async def _own_issue(session: AsyncSession, user: User, issue_id: int) -> None:
    """Refuse (NotFound) an issue the person has no entries of, or may no longer read."""
    found = await session.scalar(
        select(Notification.id)
        .join(Issue, Issue.id == Notification.issue_id)
        .join(Project, Project.id == Issue.project_id)
        .where(
            Notification.user_id == user.id,
            Notification.issue_id == issue_id,
            _readable_by(user.id),
        )
        .limit(1)
    )
    if found is None:
        raise NotFound("No such entry in your inbox.")


async def _set(
    session: AsyncSession, user: User, *where: ColumnElement[bool], **values: object
) -> int:
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        await inbox_changed(session, [user.id])
    return result.rowcount


@use_case
async def mark_read(session: AsyncSession, user: User, issue_id: int) -> int:
    """Mark the person's unread entries of this issue read. NotFound if they have none of it
    (someone else's, or a project they may no longer read): nothing is written."""
    await _own_issue(session, user, issue_id)
    return await _set(
        session,
        user,
        Notification.issue_id == issue_id,
        Notification.read_at.is_(None),
        read_at=utcnow(),
    )


@use_case
async def mark_all_read(session: AsyncSession, user: User) -> int:
    """Mark everything in the person's inbox read. Returns how many rows changed."""
    return await _set(
        session,
        user,
        Notification.done_at.is_(None),
        Notification.read_at.is_(None),
        read_at=utcnow(),
    )


@use_case
async def mark_done(session: AsyncSession, user: User, issue_id: int) -> int:
    """Put the issue's entries away (they leave the inbox for the Done tab, read). NotFound as
    for mark_read."""
    await _own_issue(session, user, issue_id)
    now = utcnow()
    return await _set(
        session,
        user,
        Notification.issue_id == issue_id,
        Notification.done_at.is_(None),
        done_at=now,
        read_at=func.coalesce(Notification.read_at, now),
    )


async def entry_issue(session: AsyncSession, user: User, issue_id: int) -> Issue:
    """The issue of one of the person's entries (with its project), for opening it."""
    await _own_issue(session, user, issue_id)
    issue = await session.scalar(
        select(Issue).where(Issue.id == issue_id).options(selectinload(Issue.project))
    )
    if issue is None:
        raise NotFound("No such entry in your inbox.")
    return issue
