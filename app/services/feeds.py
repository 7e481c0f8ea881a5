"""Atom feeds of a project's activity and of a saved search (decision 0027), read by feed
readers that cannot log in: a private project's feed needs the person's feed token, an HMAC
that one click revokes for every URL at once."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import utcnow
from app.errors import NotFound
from app.models import Activity, FeedKey, Issue, Project, SavedSearch, User
from app.security import new_token
from app.services import audit, search
from app.services.access import project_by_key
from app.services.history import describe
from app.services.transaction import use_case

ENTRIES_MAX = 50
_TOKEN = re.compile(r"(\d{1,10})\.([0-9a-f]{40})")


def _signature(secret_key: str, user_id: int, salt: str) -> str:
    message = f"feed:{user_id}:{salt}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:40]


async def feed_token(session: AsyncSession, secret_key: str, user: User) -> str | None:
    """The token of `user`'s feed links, or None while they are off."""
    key = await session.get(FeedKey, user.id)
    return f"{user.id}.{_signature(secret_key, user.id, key.salt)}" if key else None


@use_case
async def new_feed_token(session: AsyncSession, user: User, origin: audit.Origin) -> None:
    """Turn feed links on, or give them a new token: every older feed URL stops working."""
    key = await session.get(FeedKey, user.id)
    if key is None:
        session.add(FeedKey(user_id=user.id, salt=new_token()))
    else:
        key.salt, key.created_at = new_token(), utcnow()
        audit.record(
            session, audit.AuditAction.TOKEN_REVOKED, actor=user, origin=origin, kind="feed"
        )
    audit.record(session, audit.AuditAction.TOKEN_CREATED, actor=user, origin=origin, kind="feed")


@use_case
async def turn_off_feed_links(session: AsyncSession, user: User, origin: audit.Origin) -> None:
    result = await session.execute(delete(FeedKey).where(FeedKey.user_id == user.id))
    if result.rowcount:
        audit.record(
            session, audit.AuditAction.TOKEN_REVOKED, actor=user, origin=origin, kind="feed"
        )


async def reader_of(session: AsyncSession, secret_key: str, token: str) -> User:
    """The person a feed token speaks for. NotFound for a malformed, revoked or forged one: a
    feed reader gets the same 404 as for a feed that is not there."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise NotFound("No such feed.")
    user_id, signature = int(match.group(1)), match.group(2)
    row = (
        await session.execute(
            select(FeedKey, User)
            .join(User, User.id == FeedKey.user_id)
            .where(FeedKey.user_id == user_id)
        )
    ).one_or_none()
    if row is None or not hmac.compare_digest(
        signature, _signature(secret_key, user_id, row[0].salt)
    ):
        raise NotFound("No such feed.")
    if row[1].deactivated_at is not None:
        raise NotFound("No such feed.")  # deactivation ends every way in, feed links too
    return row[1]


@dataclass(frozen=True)
class Entry:
    id: str  # unique and stable: the tag URI's tail
    title: str
    link: str  # a path on this site
    updated: datetime
    author: str
    summary: str


@dataclass(frozen=True)
class Feed:
    id: str
    title: str
    link: str
    updated: datetime
    entries: list[Entry]


async def project_activity(session: AsyncSession, viewer: User | None, key: str) -> Feed:
    """The project's latest changes, newest first. NotFound where the viewer may not read it."""
    project = await project_by_key(session, viewer, key, missing="No such feed.")
    rows = list(
        await session.scalars(
            select(Activity)
            .where(Activity.project_id == project.id, Activity.seq.is_not(None))
            .order_by(Activity.seq.desc())
            .limit(ENTRIES_MAX)
            .options(selectinload(Activity.actor))
        )
    )
    issues = await _issues_by_id(session, {row.issue_id for row in rows if row.issue_id})
    entries = [_activity_entry(project, row, issues.get(row.issue_id)) for row in rows]
    return Feed(
        id=f"project:{project.id}",
        title=f"{project.name} ({project.key}): activity",
        link=f"/p/{project.key}/board",
        updated=entries[0].updated if entries else project.created_at,
        entries=entries,
    )


async def _issues_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Issue]:
    if not ids:
        return {}
    found = await session.scalars(
        select(Issue).where(Issue.id.in_(ids)).options(selectinload(Issue.project))
    )
    return {issue.id: issue for issue in found}


def _activity_entry(project: Project, row: Activity, issue: Issue | None) -> Entry:
    change = describe(row)
    if issue is not None:
        title, link = f"{issue.key} {issue.title}: {change}", f"/{issue.key}"
    else:
        title, link = f"{project.key}: {change}", f"/p/{project.key}/board"
    return Entry(
        id=f"activity:{row.id}",
        title=title,
        link=link,
        updated=row.created_at,
        author=row.actor.display_name if row.actor else "Issues",
        summary=change,
    )


async def saved_search(session: AsyncSession, viewer: User, saved_search_id: int) -> Feed:
    """The issues of one of the viewer's saved searches, most recently updated first; only
    those the viewer may read now."""
    saved = await session.scalar(
        select(SavedSearch).where(
            SavedSearch.id == saved_search_id, SavedSearch.user_id == viewer.id
        )
    )
    if saved is None:
        raise NotFound("No such feed.")
    # A feed reader shows what changed last on top, whatever order the search page uses.
    query = dataclasses.replace(search.parse_query(saved.query), sort="updated-desc")
    page = await search.search_issues(session, viewer, query, limit=ENTRIES_MAX)
    entries = [
        Entry(
            id=f"issue:{issue.id}:{issue.version}",
            title=f"{issue.key} {issue.title}",
            link=f"/{issue.key}",
            updated=issue.updated_at,
            author=issue.reporter.display_name if issue.reporter else "Issues",
            summary=_issue_summary(issue),
        )
        for issue in page.issues
    ]
    return Feed(
        id=f"search:{saved.id}",
        title=f"Saved search: {saved.name}",
        link=f"/search?{urlencode({'q': saved.query})}",
        updated=entries[0].updated if entries else saved.created_at,
        entries=entries,
    )


def _issue_summary(issue: Issue) -> str:
    assignee = issue.assignee.display_name if issue.assignee else "nobody"
    return f"{issue.status.name}, assigned to {assignee}"
