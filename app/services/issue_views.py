"""Reading issues: by key or id with what a page shows, an issue page's heading and timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.errors import NotFound
from app.models import (
    Activity,
    Comment,
    Issue,
    Membership,
    Project,
    User,
    Watcher,
)
from app.services.access import (
    PROJECT_WITH_ROLE,
    readable_project,
    require_readable,
)

# Everything a page that shows an issue needs, loaded in a few queries instead of one per use.
# What a page shows of an issue (relationships are lazy="raise"): the one-per-issue rows joined
# into the issue's own query, the labels in one more.
ISSUE_DETAILS = (
    joinedload(Issue.project, innerjoin=True),
    joinedload(Issue.status, innerjoin=True),
    joinedload(Issue.assignee),
    joinedload(Issue.reporter),
    selectinload(Issue.labels),
    joinedload(Issue.parent).load_only(Issue.number),  # its key (same project)
)


async def get_issue(
    session: AsyncSession, actor: User | None, project_id: int, number: int
) -> Issue:
    """The issue (project and number) with its details if `actor` may read it, else NotFound."""
    project = await readable_project(session, actor, project_id)
    issue = await session.scalar(
        select(Issue)
        .where(Issue.project_id == project.id, Issue.number == number)
        .options(*ISSUE_DETAILS)
        # Fresh from the database even when a use case of this request loaded it before.
        .execution_options(populate_existing=True)
    )
    if issue is None:
        raise NotFound(f"No issue {project.key}-{number}.")
    return issue


async def get_issue_by_id(session: AsyncSession, actor: User | None, issue_id: int) -> Issue:
    """The issue with its details if `actor` may read it, else NotFound."""
    found = await session.execute(
        select(Issue.project_id, Issue.number).where(Issue.id == issue_id)
    )
    row = found.one_or_none()
    if row is None:
        raise NotFound("No such issue.")
    return await get_issue(session, actor, row.project_id, row.number)


async def get_issue_by_key(session: AsyncSession, actor: User | None, key: str) -> Issue:
    """The issue named `key` (such as WEB-12) if `actor` may read it; NotFound otherwise,
    whether it is missing or private."""
    heading = await issue_heading(session, actor, key)
    return await get_issue(session, actor, heading.project.id, heading.number)


@dataclass
class IssueHeading:
    """What names an issue, and what its page is kept by: its project, whether the viewer
    watches it, the seq of the issue's latest event (every change of its own: fields, comments)
    and of its project's latest change to itself (labels, workflow, members, settings)."""

    id: int
    number: int
    title: str
    project: Project
    watching: bool
    issue_seq: int | None  # None: no event yet (none pruned away either)
    project_seq: int | None

    @property
    def key(self) -> str:
        return f"{self.project.key}-{self.number}"


# The two halves of a kept issue page's state, each one index probe (models/activity.py).
_ISSUE_SEQ = select(func.max(Activity.seq)).where(Activity.issue_id == Issue.id).scalar_subquery()
_PROJECT_SEQ = (
    select(func.max(Activity.seq))
    .where(Activity.project_id == Project.id, Activity.issue_id.is_(None))
    .scalar_subquery()
)

# An issue page's first query, built once (see access.PROJECT_WITH_ROLE).
ISSUE_HEADING = (
    PROJECT_WITH_ROLE.add_columns(
        Issue.id,
        Issue.title,
        Watcher.watching,
        _ISSUE_SEQ.label("issue_seq"),
        _PROJECT_SEQ.label("project_seq"),
    )
    .outerjoin(Issue, and_(Issue.project_id == Project.id, Issue.number == bindparam("number")))
    .outerjoin(
        Watcher,
        and_(Watcher.issue_id == Issue.id, Watcher.user_id == bindparam("viewer_id")),
    )
    .where(Project.key == bindparam("project_key"))
)


async def issue_heading(session: AsyncSession, actor: User | None, key: str) -> IssueHeading:
    """The heading of the issue named `key` if `actor` may read it (one query, with the
    viewer's role), else NotFound, whether it is missing or private."""
    project_key, _, number = key.upper().rpartition("-")
    missing = f"No issue {key}."
    if not number.isdigit() or len(number) > 9:
        raise NotFound(missing)
    parameters = {
        "viewer_id": actor.id if actor else None,
        "project_key": project_key,
        "number": int(number),
    }
    row = (await session.execute(ISSUE_HEADING, parameters)).one_or_none()
    if row is None:
        raise NotFound(missing)
    project = row[0]
    await require_readable(session, actor, project, row.role, missing=missing)
    if row.id is None:
        raise NotFound(missing)
    return IssueHeading(
        row.id,
        int(number),
        row.title,
        project,
        bool(row.watching),
        row.issue_seq,
        row.project_seq,
    )


@dataclass
class TimelineEntry:
    """One line of an issue's history: a comment, or a change from the activity log."""

    at: datetime
    kind: str
    actor: User | None
    comment: Comment | None = None
    activity: Activity | None = None


async def timeline(session: AsyncSession, issue: Issue) -> list[TimelineEntry]:
    """Comments and changes of the issue, oldest first, in one list."""
    comments = list(
        await session.scalars(
            select(Comment)
            .where(Comment.issue_id == issue.id)
            .options(joinedload(Comment.author))
            .order_by(Comment.created_at, Comment.id)
        )
    )
    changes = list(
        await session.scalars(
            select(Activity)
            .where(
                Activity.issue_id == issue.id,
                Activity.kind.in_(
                    (
                        "issue.created",
                        "issue.updated",
                        "issue.moved",
                        "comment.edited",
                        "comment.deleted",
                        "attachment.added",
                        "attachment.deleted",
                        "relation.added",
                        "relation.removed",
                    )
                ),
            )
            .options(joinedload(Activity.actor))
            .order_by(Activity.seq)
        )
    )
    # A relation to another project's issue names it by id only (services/relations): its
    # line would say nothing, and whether to show it depends on the viewer. The relations list
    # shows it to those who may read that issue.
    changes = [a for a in changes if not a.kind.startswith("relation.") or "other" in a.payload]
    entries = [TimelineEntry(c.created_at, "comment", c.author, comment=c) for c in comments]
    entries += [TimelineEntry(a.created_at, a.kind, a.actor, activity=a) for a in changes]
    entries.sort(key=lambda entry: entry.at)
    return entries


async def is_watching(session: AsyncSession, issue_id: int, user: User | None) -> bool:
    if user is None:
        return False
    watching = await session.scalar(
        select(Watcher.watching).where(Watcher.issue_id == issue_id, Watcher.user_id == user.id)
    )
    return bool(watching)


async def watched_issues(session: AsyncSession, viewer: User, *, limit: int = 100) -> list[Issue]:
    """Issues the viewer watches in projects they can still read, most recently updated first."""
    member_of = select(Membership.project_id).where(Membership.user_id == viewer.id)
    return list(
        await session.scalars(
            select(Issue)
            .join(Watcher, (Watcher.issue_id == Issue.id) & (Watcher.user_id == viewer.id))
            .join(Project, Project.id == Issue.project_id)
            .where(
                Watcher.watching.is_(True),
                (Project.is_public.is_(True)) | (Project.id.in_(member_of)),
            )
            .options(*ISSUE_DETAILS)
            .order_by(Issue.updated_at.desc(), Issue.id.desc())
            .limit(limit)
        )
    )
