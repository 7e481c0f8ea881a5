"""Issues: created numbered, edited field by field on the version the editor saw, watched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, any_, bindparam, func, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Activity,
    Comment,
    Issue,
    IssueLabel,
    Label,
    Membership,
    Project,
    User,
    Watcher,
    WorkflowStatus,
)
from app.models.issue import POSITION_STEP, IssueType, Priority
from app.models.user import initials_of
from app.services import notifications, search
from app.services.access import (
    PROJECT_WITH_ROLE,
    readable_project,
    require_readable,
    writable_project,
)
from app.services.activity import record_activity, take_project_counters
from app.services.text import storable
from app.services.transaction import use_case

TITLE_MAX = 200
DESCRIPTION_MAX = 50_000
BULK_MAX = 200
EDITABLE_FIELDS = (
    "title",
    "description",
    "type",
    "priority",
    "status",
    "assignee",
    "labels",
    "due",
)
ISSUE_TYPES = tuple(kind.value for kind in IssueType)
PRIORITIES = tuple(priority.value for priority in Priority)

# Everything a page that shows an issue needs, loaded in a few queries instead of one per use.
# What a page shows of an issue (relationships are lazy="raise"): the one-per-issue rows joined
# into the issue's own query, the labels in one more.
ISSUE_DETAILS = (
    joinedload(Issue.project, innerjoin=True),
    joinedload(Issue.status, innerjoin=True),
    joinedload(Issue.assignee),
    joinedload(Issue.reporter),
    selectinload(Issue.labels),
)


def _choice(value: str, allowed: Sequence[str], field_name: str) -> str:
    if value not in allowed:
        raise Invalid(
            f"{field_name.capitalize()} must be one of: {', '.join(allowed)}.", field=field_name
        )
    return value


def _title(title: str) -> str:
    title = storable(title).strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise Invalid(f"A title is 1 to {TITLE_MAX} characters.", field="title")
    return title


def _description(description: str) -> str:
    description = storable(description)
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(
            f"A description is at most {DESCRIPTION_MAX} characters.", field="description"
        )
    return description


async def _status_of(
    session: AsyncSession, project_id: int, status_id: int | None
) -> WorkflowStatus:
    """The project's status `status_id`, or its first column when None."""
    query = select(WorkflowStatus).where(WorkflowStatus.project_id == project_id)
    if status_id is None:
        status = await session.scalar(query.order_by(WorkflowStatus.position).limit(1))
    else:
        status = await session.scalar(query.where(WorkflowStatus.id == status_id))
    if status is None:
        raise Invalid("Pick one of the project's statuses.", field="status")
    return status


async def _assignee_of(session: AsyncSession, project_id: int, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    user = await session.scalar(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id, User.id == user_id)
    )
    if user is None:
        raise Invalid("The assignee must be a member of the project.", field="assignee")
    return user


async def _labels_of(
    session: AsyncSession, project_id: int, label_ids: Iterable[int]
) -> list[Label]:
    wanted = set(label_ids)
    labels = list(
        await session.scalars(
            select(Label)
            .where(Label.project_id == project_id, Label.id.in_(wanted))
            .order_by(Label.name)
        )
    )
    if len(labels) != len(wanted):
        raise Invalid("Unknown label for this project.", field="labels")
    return labels


async def _last_position(session: AsyncSession, project_id: int, status_id: int) -> int:
    last = await session.scalar(
        select(func.max(Issue.position)).where(
            Issue.project_id == project_id, Issue.status_id == status_id
        )
    )
    return (last or 0) + POSITION_STEP


# --- Creating ---------------------------------------------------------------------------------


@use_case
async def create_issue(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    title: str,
    description: str = "",
    type: str = IssueType.TASK.value,
    priority: str = Priority.NONE.value,
    status_id: int | None = None,
    assignee_id: int | None = None,
    label_ids: Iterable[int] = (),
    due_date: date | None = None,
) -> Issue:
    """Create an issue with the project's next number, last in its column. The reporter and the
    assignee watch it. Raises NotFound, Forbidden or Invalid; nothing is written then."""
    project = await writable_project(session, actor, project_id)
    title, description = _title(title), _description(description)
    _choice(type, ISSUE_TYPES, "type")
    _choice(priority, PRIORITIES, "priority")
    status = await _status_of(session, project.id, status_id)
    assignee = await _assignee_of(session, project.id, assignee_id)
    labels = await _labels_of(session, project.id, label_ids)

    number, _ = await take_project_counters(session, project.id, issues=1)
    issue = Issue(
        project=project,
        number=number,
        title=title,
        description=description,
        type=type,
        priority=priority,
        status=status,
        reporter_id=actor.id,
        assignee_id=assignee.id if assignee else None,
        due_date=due_date,
        position=await _last_position(session, project.id, status.id),
        labels=labels,
    )
    session.add(issue)
    await session.flush()
    activity = await record_activity(
        session,
        project,
        actor,
        "issue.created",
        issue=issue,
        payload={"number": number, "title": title, "status": status.name},
    )
    await session.flush()
    await notifications.watch_automatically(session, issue, [actor.id])
    if assignee is not None:
        await notifications.notify(session, issue, activity, actor, assigned_to=assignee)
    await search.refresh_search_document(session, issue.id)
    await session.commit()
    return issue


# --- Reading ----------------------------------------------------------------------------------


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
    """What names an issue, and what its page is kept by: its project (with the counter that
    every change bumps) and whether the viewer watches it."""

    id: int
    number: int
    title: str
    project: Project
    watching: bool

    @property
    def key(self) -> str:
        return f"{self.project.key}-{self.number}"


# An issue page's first query, built once (see access.PROJECT_WITH_ROLE).
ISSUE_HEADING = (
    PROJECT_WITH_ROLE.add_columns(Issue.id, Issue.title, Watcher.watching)
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
    return IssueHeading(row.id, int(number), row.title, project, bool(row.watching))


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
                    )
                ),
            )
            .options(joinedload(Activity.actor))
            .order_by(Activity.seq)
        )
    )
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


# --- Editing ----------------------------------------------------------------------------------


@dataclass
class IssueChanges:
    """What an edit asks for; fields left as None are not touched."""

    title: str | None = None
    description: str | None = None
    type: str | None = None
    priority: str | None = None
    status_id: int | None = None
    # Sentinels: assignee/due may be set to nothing, which None cannot say.
    assignee_id: int | object | None = field(default=...)
    label_ids: list[int] | None = None
    due_date: date | object | None = field(default=...)

    def is_empty(self) -> bool:
        return (
            all(
                getattr(self, name) is None
                for name in ("title", "description", "type", "priority", "status_id", "label_ids")
            )
            and self.assignee_id is ...
            and self.due_date is ...
        )


class StaleEdit(Conflict):
    """Someone changed the issue since the editor loaded it. `changes` says what, by whom."""

    def __init__(self, issue: Issue, changes: list[str]) -> None:
        summary = "; ".join(changes) or "it was changed"
        super().__init__(
            f"{issue.key} changed while you were editing ({summary}). "
            "Nothing of yours was saved: check the current values and try again."
        )
        self.issue_key = issue.key
        self.changes = changes


async def _issue_for_update(session: AsyncSession, actor: User, issue_id: int) -> Issue:
    issue = await session.scalar(
        select(Issue)
        .where(Issue.id == issue_id)
        .options(*ISSUE_DETAILS)
        # FOR NO KEY UPDATE: concurrent editors queue; comments (FK inserts) do not wait.
        # OF issue: only the issue's row (PostgreSQL refuses to lock the nullable side of the
        # outer joins that load the assignee and reporter).
        .with_for_update(key_share=True, of=Issue)
    )
    if issue is None:
        raise NotFound("No such issue.")
    await writable_project(session, actor, issue.project_id)
    return issue


async def _changes_since(session: AsyncSession, issue: Issue, version: int) -> list[str]:
    """Human lines for the edits after `version`, from the activity log."""
    rows = await session.scalars(
        select(Activity)
        .where(Activity.issue_id == issue.id, Activity.kind.in_(("issue.updated", "issue.moved")))
        .options(selectinload(Activity.actor))
        .order_by(Activity.seq)
    )
    lines = []
    for row in rows:
        if row.payload.get("version", 0) <= version:
            continue
        who = row.actor.display_name if row.actor else "someone"
        for name, (before, after) in row.payload.get("changes", {}).items():
            lines.append(f"{who} changed {name} from {before or 'nothing'} to {after or 'nothing'}")
    return lines


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


@use_case
async def update_issue(
    session: AsyncSession,
    actor: User,
    issue_id: int,
    changes: IssueChanges,
    *,
    expected_version: int | None,
) -> Issue:
    """Apply `changes` to the issue as seen at `expected_version` (None: to whatever is current,
    for API clients without If-Match). Records one activity row with each field's old and new
    value. Raises StaleEdit when the issue moved on meanwhile, Invalid for a bad value."""
    issue, _ = await _apply_changes(session, actor, issue_id, changes, expected_version)
    await session.commit()
    return issue


async def _apply_changes(
    session: AsyncSession,
    actor: User,
    issue_id: int,
    changes: IssueChanges,
    expected_version: int | None,
) -> tuple[Issue, bool]:
    """Change one issue in the caller's transaction; says whether anything changed."""
    issue = await _issue_for_update(session, actor, issue_id)
    if expected_version is not None and issue.version != expected_version:
        raise StaleEdit(issue, await _changes_since(session, issue, expected_version))
    record: dict[str, list[str]] = {}

    def note(name: str, before: Any, after: Any) -> None:
        if _shown(before) != _shown(after):
            record[name] = [_shown(before), _shown(after)]

    # One UPDATE for the whole edit: the look-ups below must not flush half of it (each flush
    # would bump the version).
    with session.no_autoflush:
        if changes.title is not None:
            title = _title(changes.title)
            note("title", issue.title, title)
            issue.title = title
        if changes.description is not None:
            description = _description(changes.description)
            if description != issue.description:
                record["description"] = ["", "edited"]
            issue.description = description
        if changes.type is not None:
            note("type", issue.type, _choice(changes.type, ISSUE_TYPES, "type"))
            issue.type = changes.type
        if changes.priority is not None:
            note("priority", issue.priority, _choice(changes.priority, PRIORITIES, "priority"))
            issue.priority = changes.priority
        status_changed = False
        if changes.status_id is not None and changes.status_id != issue.status_id:
            status = await _status_of(session, issue.project_id, changes.status_id)
            note("status", issue.status.name, status.name)
            issue.status = status
            issue.position = await _last_position(session, issue.project_id, status.id)
            status_changed = True
        newly_assigned: User | None = None
        if changes.assignee_id is not ...:
            assignee = await _assignee_of(session, issue.project_id, changes.assignee_id)  # type: ignore[arg-type]
            if (assignee.id if assignee else None) != issue.assignee_id:
                note(
                    "assignee",
                    issue.assignee.display_name if issue.assignee else None,
                    assignee.display_name if assignee else None,
                )
                issue.assignee = assignee
                newly_assigned = assignee
        if changes.label_ids is not None:
            labels = await _labels_of(session, issue.project_id, changes.label_ids)
            note("labels", [label.name for label in issue.labels], [label.name for label in labels])
            issue.labels = labels
        if changes.due_date is not ...:
            note("due date", issue.due_date, changes.due_date)
            issue.due_date = changes.due_date  # type: ignore[assignment]

    if not record:
        return issue, False
    await session.flush()  # the UPDATE bumps issue.version
    activity = await record_activity(
        session,
        issue.project,
        actor,
        "issue.updated",
        issue=issue,
        payload={"version": issue.version, "changes": record},
    )
    await session.flush()
    await notifications.notify(
        session,
        issue,
        activity,
        actor,
        assigned_to=newly_assigned,
        status_changed=status_changed,
    )
    if "title" in record or "description" in record:
        await search.refresh_search_document(session, issue.id)
    return issue, True


@use_case
async def bulk_update(
    session: AsyncSession,
    actor: User,
    project_id: int,
    issue_ids: Sequence[int],
    changes: IssueChanges,
) -> int:
    """Apply the same changes to several issues of one project, one activity row per changed
    issue, all in one commit (all or nothing). Returns how many issues changed."""
    await writable_project(session, actor, project_id)
    if not issue_ids:
        raise Invalid("Select at least one issue.", field="issues")
    if len(issue_ids) > BULK_MAX:
        raise Invalid(f"Edit at most {BULK_MAX} issues at once.", field="issues")
    if changes.is_empty():
        raise Invalid("Choose what to change.", field="changes")
    in_project = set(
        await session.scalars(
            select(Issue.id).where(Issue.project_id == project_id, Issue.id.in_(set(issue_ids)))
        )
    )
    if in_project != set(issue_ids):
        raise Invalid("Some selected issues are not in this project.", field="issues")
    changed = 0
    for issue_id in sorted(in_project):  # a fixed order, so two bulk edits cannot deadlock
        _, did_change = await _apply_changes(session, actor, issue_id, changes, None)
        changed += did_change
    await session.commit()
    return changed


@use_case
async def set_watching(session: AsyncSession, actor: User, issue_id: int, watching: bool) -> None:
    """Watch or unwatch an issue the actor can read."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue.")
    await readable_project(session, actor, issue.project_id)
    row = await session.get(Watcher, (issue_id, actor.id))
    if row is None:
        session.add(Watcher(issue_id=issue_id, user_id=actor.id, watching=watching))
    else:
        row.watching = watching
    await session.commit()


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


# --- The board --------------------------------------------------------------------------------


async def _position_before(
    session: AsyncSession, issue: Issue, status_id: int, before_id: int | None
) -> int:
    """A position that puts the issue just above `before_id` in its column (None: at the
    bottom). Renumbers the column when there is no room left between two neighbours."""
    if before_id is None:
        return await _last_position(session, issue.project_id, status_id)
    column = list(
        await session.scalars(
            select(Issue)
            .where(
                Issue.project_id == issue.project_id,
                Issue.status_id == status_id,
                Issue.id != issue.id,
            )
            .order_by(Issue.position, Issue.id)
        )
    )
    index = next((i for i, other in enumerate(column) if other.id == before_id), None)
    if index is None:
        raise Invalid("That card is no longer in this column; reload the board.", field="before")
    above = column[index - 1].position if index > 0 else column[index].position - 2 * POSITION_STEP
    below = column[index].position
    if below - above >= 2:
        return (above + below) // 2
    # No gap left: spread the column out again. These rows change place, not content, so
    # their versions are left alone (a raw UPDATE, not the ORM's versioned one).
    for offset, other in enumerate(column):
        new_position = (offset + 1) * POSITION_STEP * 2
        await session.execute(
            Issue.__table__.update().where(Issue.id == other.id).values(position=new_position)
        )
    return (index + 1) * POSITION_STEP * 2 - POSITION_STEP


@use_case
async def move_issue(
    session: AsyncSession,
    actor: User,
    issue_id: int,
    *,
    status_id: int,
    before_id: int | None,
    expected_version: int,
) -> Issue:
    """Move a card on the board: into `status_id`, above `before_id` (None: to the bottom).
    Raises StaleEdit if someone changed the issue since `expected_version`."""
    issue = await _issue_for_update(session, actor, issue_id)
    if issue.version != expected_version:
        raise StaleEdit(issue, await _changes_since(session, issue, expected_version))
    with session.no_autoflush:
        status = await _status_of(session, issue.project_id, status_id)
        position = await _position_before(session, issue, status.id, before_id)
        changes: dict[str, list[str]] = {}
        if status.id != issue.status_id:
            changes["status"] = [issue.status.name, status.name]
        issue.status, issue.position = status, position
    await session.flush()
    activity = await record_activity(
        session,
        issue.project,
        actor,
        "issue.moved",
        issue=issue,
        payload={"version": issue.version, "changes": changes, "status_id": status.id},
    )
    await session.flush()
    await notifications.notify(session, issue, activity, actor, status_changed=bool(changes))
    await session.commit()
    return issue


async def board_columns(
    session: AsyncSession, viewer: User | None, project_id: int
) -> list[tuple[WorkflowStatus, list[Issue]]]:
    """The project's columns, each with its cards in board order."""
    project = await readable_project(session, viewer, project_id)
    statuses = list(
        await session.scalars(
            select(WorkflowStatus)
            .where(WorkflowStatus.project_id == project.id)
            .order_by(WorkflowStatus.position, WorkflowStatus.id)
        )
    )
    cards = await session.scalars(
        select(Issue)
        .where(Issue.project_id == project.id)
        .options(*ISSUE_DETAILS)
        .order_by(Issue.position, Issue.id)
    )
    by_status: dict[int, list[Issue]] = {status.id: [] for status in statuses}
    for card in cards:
        by_status.setdefault(card.status_id, []).append(card)
    return [(status, by_status[status.id]) for status in statuses]


def _among(session: AsyncSession, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """`column IN ids`, as one array parameter on PostgreSQL: a board's hundreds of ids would
    otherwise be compiled into hundreds of parameters on every view."""
    if session.bind.dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    return column.in_(ids)


# A board shows at most this many cards per column (the rest are one search away): a column
# of a project with 100,000 open issues must not load them all.
BOARD_COLUMN_LIMIT = 500


@dataclass(frozen=True)
class BoardCard:
    """What the board needs of a card to place it and to know whether its HTML is current;
    read without building ORM objects (a board has hundreds)."""

    id: int
    number: int
    version: int
    status_id: int
    position: int
    title: str
    type: str
    priority: str
    assignee: tuple[str, str, str] | None  # handle, display name, initials
    labels: tuple[tuple[int, str, str], ...]  # id, name, colour


@dataclass
class BoardColumn:
    status: WorkflowStatus
    cards: list[BoardCard]
    total: int  # may exceed len(cards): see BOARD_COLUMN_LIMIT


async def board(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    *,
    per_column: int = BOARD_COLUMN_LIMIT,
) -> list[BoardColumn]:
    """The project's columns with their first cards in board order, and each one's count."""
    project = await readable_project(session, viewer, project_id)
    statuses = list(
        await session.scalars(
            select(WorkflowStatus)
            .where(WorkflowStatus.project_id == project.id)
            .order_by(WorkflowStatus.position, WorkflowStatus.id)
        )
    )
    if not statuses:
        return []
    counted = await session.execute(
        select(Issue.status_id, func.count())
        .where(Issue.project_id == project.id)
        .group_by(Issue.status_id)
    )
    totals: dict[int, int] = {status_id: count for status_id, count in counted}
    # One statement, each column an index range scan of (project_id, status_id, position).
    per_status = [
        select(
            Issue.id,
            Issue.number,
            Issue.version,
            Issue.status_id,
            Issue.position,
            Issue.title,
            Issue.type,
            Issue.priority,
            User.handle,
            User.display_name,
            User.email,
        )
        .outerjoin(User, User.id == Issue.assignee_id)
        .where(Issue.project_id == project.id, Issue.status_id == status.id)
        .order_by(Issue.position, Issue.id)
        .limit(per_column)
        .subquery()
        .select()
        for status in statuses
    ]
    rows = (await session.execute(union_all(*per_status))).all()
    labels: dict[int, list[tuple[int, str, str]]] = {}
    if rows:
        label_rows = await session.execute(
            select(IssueLabel.c.issue_id, Label.id, Label.name, Label.color)
            .join(Label, Label.id == IssueLabel.c.label_id)
            .where(_among(session, IssueLabel.c.issue_id, [row[0] for row in rows]))
            .order_by(IssueLabel.c.issue_id, Label.name)
        )
        for issue_id, label_id, name, color in label_rows:
            labels.setdefault(issue_id, []).append((label_id, name, color))
    by_status: dict[int, list[BoardCard]] = {status.id: [] for status in statuses}
    for row in rows:
        issue_id, number, version, status_id, position, title, type_, priority = row[:8]
        handle, name, email = row[8:]
        by_status[status_id].append(
            BoardCard(
                id=issue_id,
                number=number,
                version=version,
                status_id=status_id,
                position=position,
                title=title,
                type=type_,
                priority=priority,
                assignee=(handle, name, initials_of(name, email)) if handle else None,
                # By name as Python orders it, as a live event's card does (not by collation).
                labels=tuple(sorted(labels.get(issue_id, ()), key=lambda la: (la[1], la[0]))),
            )
        )
    for cards in by_status.values():
        cards.sort(key=lambda card: (card.position, card.id))  # a union keeps no order
    return [
        BoardColumn(status, by_status[status.id], totals.get(status.id, 0)) for status in statuses
    ]
