"""Issues: created numbered, edited field by field on the version the editor saw, watched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Activity,
    Issue,
    Label,
    Membership,
    User,
    Watcher,
    WorkflowStatus,
)
from app.models.issue import POSITION_STEP, IssueType, Priority
from app.services import milestones, notifications, relations, search
from app.services.access import (
    readable_project,
    writable_project,
)
from app.services.activity import number_at_commit, record_activity
from app.services.issue_views import ISSUE_DETAILS
from app.services.text import description_text, storable
from app.services.transaction import use_case

TITLE_MAX = 200
BULK_MAX = 200


def _choice(value: str, allowed: type[StrEnum], field_name: str) -> str:
    """`value` if it is one of the enum's values, else Invalid naming the field."""
    try:
        return allowed(value).value
    except ValueError:
        raise Invalid(
            f"{field_name.capitalize()} must be one of: {', '.join(allowed)}.", field=field_name
        ) from None


def _title(title: str) -> str:
    title = storable(title).strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise Invalid(f"A title is 1 to {TITLE_MAX} characters.", field="title")
    return title


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
    if not wanted:
        return []
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
    parent: str | None = None,
    milestone_id: int | None = None,
    estimate: int | None = None,
) -> Issue:
    """Create an issue with the project's next number, last in its column; with `parent` (a
    key), a sub-issue of that issue of the project. The reporter and the assignee watch it.
    Raises NotFound, Forbidden or Invalid; nothing is written then."""
    project = await writable_project(session, actor, project_id)
    title, description = _title(title), description_text(description)
    type, priority = _choice(type, IssueType, "type"), _choice(priority, Priority, "priority")
    status = await _status_of(session, project.id, status_id)
    assignee = await _assignee_of(session, project.id, assignee_id)
    labels = await _labels_of(session, project.id, label_ids)
    parent_issue = await relations.parent_named(session, actor, project, parent)
    milestone = await milestones.milestone_of_project(session, project.id, milestone_id)

    issue = Issue(
        project=project,
        number=None,  # taken at commit, last (services/activity.take_numbers)
        title=title,
        description=description,
        type=type,
        priority=priority,
        status=status,
        reporter_id=actor.id,
        assignee_id=assignee.id if assignee else None,
        due_date=due_date,
        parent_id=parent_issue.id if parent_issue else None,
        # Concurrent creates may share a position: cards sort by (position, id).
        position=await _last_position(session, project.id, status.id),
        labels=labels,
        milestone_id=milestone.id if milestone else None,
        estimate=milestones.check_estimate(estimate),
    )
    session.add(issue)
    await session.flush()
    number_at_commit(session, issue)
    activity = await record_activity(
        session,
        project,
        actor,
        "issue.created",
        issue=issue,
        # and its number, at commit; its milestone and done state for the burn-up chart
        payload={
            "title": title,
            "status": status.name,
            **milestones.milestone_payload(None, issue.milestone_id),
            **milestones.done_payload(None, status),
        },
    )
    if parent_issue is not None:
        await relations.sub_issue_created(session, actor, parent_issue, issue)
    await session.flush()
    await notifications.watch_automatically(session, issue, [actor.id])
    if assignee is not None:
        await notifications.notify(session, issue, activity, actor, assigned_to=assignee)
    await search.refresh_search_document(session, issue.id)
    return issue


# --- Reading ----------------------------------------------------------------------------------


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
    parent: str | None = None  # a key; "" for no parent
    milestone_id: int | object | None = field(default=...)
    estimate: int | object | None = field(default=...)

    def is_empty(self) -> bool:
        return (
            all(
                getattr(self, name) is None
                for name in (
                    "title",
                    "description",
                    "type",
                    "priority",
                    "status_id",
                    "label_ids",
                    "parent",
                )
            )
            and self.assignee_id is ...
            and self.due_date is ...
            and self.milestone_id is ...
            and self.estimate is ...
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


# What a move reads of the issue it moves: its key and status (not its people and labels).
_MOVE_DETAILS = (
    joinedload(Issue.project, innerjoin=True),
    joinedload(Issue.status, innerjoin=True),
)


async def _issue_for_update(
    session: AsyncSession, actor: User, issue_id: int, details: Sequence[Any] = ISSUE_DETAILS
) -> Issue:
    issue = await session.scalar(
        select(Issue)
        .where(Issue.id == issue_id)
        .options(*details)
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
    extra: dict[str, Any] = {}  # the payload's machine-read facts (milestone, done)

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
            description = description_text(changes.description)
            if description != issue.description:
                record["description"] = ["", "edited"]
            issue.description = description
        if changes.type is not None:
            kind = _choice(changes.type, IssueType, "type")
            note("type", issue.type, kind)
            issue.type = kind
        if changes.priority is not None:
            priority = _choice(changes.priority, Priority, "priority")
            note("priority", issue.priority, priority)
            issue.priority = priority
        status_changed, was_done = False, issue.status.is_done
        if changes.status_id is not None and changes.status_id != issue.status_id:
            status = await _status_of(session, issue.project_id, changes.status_id)
            note("status", issue.status.name, status.name)
            extra.update(milestones.done_payload(issue.status, status))
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
        if changes.parent is not None:
            moved = await relations.change_parent(session, actor, issue, changes.parent)
            if moved is not None:
                record["parent"] = list(moved)
        if changes.milestone_id is not ... and changes.milestone_id != issue.milestone_id:
            current = issue.milestone_id
            before = await milestones.milestone_of_project(
                session, issue.project_id, current, current=current
            )
            after = await milestones.milestone_of_project(
                session,
                issue.project_id,
                changes.milestone_id,  # type: ignore[arg-type]
            )
            note("milestone", before.title if before else None, after.title if after else None)
            extra.update(milestones.milestone_payload(current, after.id if after else None))
            issue.milestone_id = after.id if after else None
        if changes.estimate is not ...:
            estimate = milestones.check_estimate(changes.estimate)  # type: ignore[arg-type]
            note("estimate", issue.estimate, estimate)
            issue.estimate = estimate

    if not record:
        return issue, False
    await session.flush()  # the UPDATE bumps issue.version
    activity = await record_activity(
        session,
        issue.project,
        actor,
        "issue.updated",
        issue=issue,
        payload={"version": issue.version, "changes": record, **extra},
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
    if status_changed:
        await relations.status_changed(session, actor, issue, was_done=was_done)
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
    in_project: int | None = None,
) -> Issue:
    """Move a card on the board: into `status_id`, above `before_id` (None: to the bottom).
    With `in_project`, the issue must be that project's (the board it was moved on): NotFound
    otherwise. Raises StaleEdit if someone changed the issue since `expected_version`."""
    issue = await _issue_for_update(session, actor, issue_id, _MOVE_DETAILS)
    if in_project is not None and issue.project_id != in_project:
        raise NotFound("No such issue on this board.")
    if issue.version != expected_version:
        raise StaleEdit(issue, await _changes_since(session, issue, expected_version))
    with session.no_autoflush:
        status = await _status_of(session, issue.project_id, status_id)
        position = await _position_before(session, issue, status.id, before_id)
        changes: dict[str, list[str]] = {}
        was_done = issue.status.is_done
        done = milestones.done_payload(issue.status, status)
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
        payload={"version": issue.version, "changes": changes, "status_id": status.id, **done},
    )
    await session.flush()
    await notifications.notify(session, issue, activity, actor, status_changed=bool(changes))
    if changes:
        await relations.status_changed(session, actor, issue, was_done=was_done)
    return issue
