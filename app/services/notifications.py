"""Watchers and the mail they get: rows recorded with each change, mailed in quiet batches."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import after_commit, begin_writing, utcnow
from app.models import Activity, Issue, Membership, Notification, Project, User, Watcher
from app.outbound.mail import enqueue_mail
from app.services.history import describe

# A burst of changes is mailed once it has been quiet this long, or once its first change is
# this old, whichever comes first (decision 0006).
DEFAULT_QUIET = timedelta(minutes=2)
DEFAULT_LONGEST_WAIT = timedelta(minutes=15)

# The NOTIFY channel that says whose inbox changed (comma-separated user ids).
INBOX_CHANNEL = "issues_inbox"

REASON_TEXT = {
    "assigned": "assigned to you",
    "commented": "new comment",
    "status_changed": "status changed",
    "mentioned": "you were mentioned",
}


async def watch_automatically(session: AsyncSession, issue: Issue, user_ids: Iterable[int]) -> None:
    """Make these users watchers, unless one of them chose to unwatch the issue before (their
    row is left as it is). One statement."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return
    insert = postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(Watcher)
        .values([{"issue_id": issue.id, "user_id": user_id} for user_id in wanted])
        .on_conflict_do_nothing(index_elements=[Watcher.issue_id, Watcher.user_id])
    )


async def notify(
    session: AsyncSession,
    issue: Issue,
    activity: Activity,
    actor: User,
    *,
    assigned_to: User | None = None,
    status_changed: bool = False,
    commented: bool = False,
    mentioned: Iterable[int] = (),
) -> None:
    """Record what each watcher should hear about this change, in the change's transaction:
    one row per person, for their inbox and (if they want mail) their next digest. The actor is
    never told about their own change; people who can no longer read the project are left out."""
    reasons: dict[int, str] = {}
    if status_changed or commented:
        # Watchers who may read the project, in one query.
        for user_id in await _readers(session, issue.project_id, watching=issue.id):
            reasons[user_id] = "commented" if commented else "status_changed"
    named = {user_id: "mentioned" for user_id in mentioned}
    if assigned_to is not None:
        named[assigned_to.id] = "assigned"
    await watch_automatically(session, issue, named)
    named.pop(actor.id, None)
    if named:
        readers = await _readers(session, issue.project_id, among=named)
        reasons.update((user_id, reason) for user_id, reason in named.items() if user_id in readers)
    reasons.pop(actor.id, None)
    if not reasons:
        return
    session.add_all(
        Notification(user_id=user_id, issue_id=issue.id, activity_id=activity.id, reason=reason)
        for user_id, reason in reasons.items()
    )
    await inbox_changed(session, reasons)


async def inbox_changed(session: AsyncSession, user_ids: Iterable[int]) -> None:
    """Say that these people's inbox changes with this transaction: their open count streams
    read it again once it commits. On PostgreSQL a NOTIFY sent now, which the server delivers
    at commit to every worker (and drops on rollback); on SQLite's one process the after-commit
    hook (decision 0028)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :users)"),
            {"channel": INBOX_CHANNEL, "users": ",".join(map(str, wanted))},
        )
    else:
        after_commit.note_inbox(session, wanted)


async def _readers(
    session: AsyncSession,
    project_id: int,
    *,
    among: Iterable[int] = (),
    watching: int | None = None,
) -> set[int]:
    """Those of `among` (or the watchers of issue `watching`) who may read the project."""
    project = await session.get(Project, project_id)
    query = select(User.id)
    if watching is not None:
        query = query.join(Watcher, Watcher.user_id == User.id).where(
            Watcher.issue_id == watching, Watcher.watching.is_(True)
        )
    else:
        query = query.where(User.id.in_(set(among)))
    if project is None or not project.is_public:
        query = query.join(
            Membership, (Membership.user_id == User.id) & (Membership.project_id == project_id)
        )
    return set(await session.scalars(query))


@dataclass
class DigestLine:
    issue: Issue
    reasons: list[str]
    changes: list[str]


async def mail_due_digests(
    session: AsyncSession,
    *,
    base_url: str,
    quiet: timedelta = DEFAULT_QUIET,
    longest_wait: timedelta = DEFAULT_LONGEST_WAIT,
) -> int:
    """Queue one email per user whose pending notifications are due, and mark them mailed
    (those of people who turned mail off are marked so without a mail).
    Returns how many emails were queued. Safe to run in every worker at once."""
    now = utcnow()
    due_users = list(
        await session.scalars(
            select(Notification.user_id)
            .where(Notification.emailed_at.is_(None))
            .group_by(Notification.user_id)
            .having(
                or_(
                    func.max(Notification.created_at) <= now - quiet,
                    func.min(Notification.created_at) <= now - longest_wait,
                )
            )
        )
    )
    await session.rollback()
    mailed = 0
    for user_id in due_users:
        mailed += await _mail_digest(session, user_id, base_url)
    return mailed


async def _mail_digest(session: AsyncSession, user_id: int, base_url: str) -> int:
    await begin_writing(session)
    claim = (
        select(Notification)
        .where(Notification.user_id == user_id, Notification.emailed_at.is_(None))
        .order_by(Notification.id)
    )
    if session.bind.dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)  # another worker may be on it
    rows = list(await session.scalars(claim))
    user = await session.get(User, user_id)
    if not rows or user is None:
        await session.rollback()
        return 0
    # Marked handled either way: a person who turned mail off keeps the rows for the inbox,
    # and they are not read here again and again.
    await session.execute(
        update(Notification)
        .where(Notification.id.in_([row.id for row in rows]))
        .values(emailed_at=utcnow())
    )
    lines = await _digest_lines(session, user, rows) if user.notify_by_email else []
    if lines:
        enqueue_mail(
            session,
            to_address=user.email,
            to_name=user.display_name,
            template="watch_digest",
            name=user.display_name,
            lines=lines,
            base_url=base_url,
            link=f"{base_url}/issues?tab=watching",
        )
    await session.commit()
    return int(bool(lines))


async def _digest_lines(
    session: AsyncSession, user: User, rows: list[Notification]
) -> list[DigestLine]:
    issues = {
        issue.id: issue
        for issue in await session.scalars(
            select(Issue)
            .where(Issue.id.in_({row.issue_id for row in rows}))
            .options(selectinload(Issue.project))
        )
    }
    activities = {
        activity.id: activity
        for activity in await session.scalars(
            select(Activity)
            .where(Activity.id.in_({row.activity_id for row in rows}))
            .options(selectinload(Activity.actor))
        )
    }
    member_of = set(
        await session.scalars(select(Membership.project_id).where(Membership.user_id == user.id))
    )
    grouped: dict[int, DigestLine] = {}
    by_issue: dict[int, list[Notification]] = defaultdict(list)
    for row in rows:
        by_issue[row.issue_id].append(row)
    for issue_id, issue_rows in by_issue.items():
        issue = issues.get(issue_id)
        # Access is checked again at sending: someone removed from a private project hears nothing.
        if issue is None or not (issue.project.is_public or issue.project_id in member_of):
            continue
        line = grouped.setdefault(issue_id, DigestLine(issue, [], []))
        for row in issue_rows:
            reason = REASON_TEXT.get(row.reason, row.reason)
            if reason not in line.reasons:
                line.reasons.append(reason)
            activity = activities.get(row.activity_id)
            if activity is not None:
                line.changes.append(describe(activity))
    return list(grouped.values())
