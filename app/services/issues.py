"""Creating issues: numbered per project, placed last in their column, recorded in the log."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.errors import Invalid, NotFound
from app.models import Issue, Label, Membership, User, WorkflowStatus
from app.models.issue import POSITION_STEP, IssueType, Priority
from app.services.access import readable_project, writable_project
from app.services.activity import record_activity, take_project_counters
from app.services.transaction import use_case

TITLE_MAX = 200
DESCRIPTION_MAX = 50_000


def _choice(value: str, allowed: list[str] | tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise Invalid(f"{field.capitalize()} must be one of: {', '.join(allowed)}.", field=field)
    return value


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
    label_ids: list[int] | tuple[int, ...] = (),
    due_date: date | None = None,
) -> Issue:
    """Create an issue with the project's next number. Raises NotFound, Forbidden or Invalid;
    nothing is written then."""
    project = await writable_project(session, actor, project_id)
    title = title.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise Invalid(f"A title is 1 to {TITLE_MAX} characters.", field="title")
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(
            f"A description is at most {DESCRIPTION_MAX} characters.", field="description"
        )
    _choice(type, [t.value for t in IssueType], "type")
    _choice(priority, [p.value for p in Priority], "priority")
    status = await _status_of(session, project.id, status_id)
    if assignee_id is not None and not await session.scalar(
        select(Membership.user_id).where(
            Membership.project_id == project.id, Membership.user_id == assignee_id
        )
    ):
        raise Invalid("The assignee must be a member of the project.", field="assignee")
    labels = list(
        await session.scalars(
            select(Label).where(Label.project_id == project.id, Label.id.in_(label_ids))
        )
    )
    if len(labels) != len(set(label_ids)):
        raise Invalid("Unknown label for this project.", field="labels")

    number, _ = await take_project_counters(session, project.id, issues=1)
    last_position = await session.scalar(
        select(func.max(Issue.position)).where(
            Issue.project_id == project.id, Issue.status_id == status.id
        )
    )
    issue = Issue(
        project=project,
        number=number,
        title=title,
        description=description,
        type=type,
        priority=priority,
        status=status,
        reporter_id=actor.id,
        assignee_id=assignee_id,
        due_date=due_date,
        position=(last_position or 0) + POSITION_STEP,
        labels=labels,
    )
    session.add(issue)
    await session.flush()
    await record_activity(
        session,
        project,
        actor,
        "issue.created",
        issue=issue,
        payload={"number": number, "title": title, "status": status.name},
    )
    await session.commit()
    return issue


async def get_issue(
    session: AsyncSession, actor: User | None, project_id: int, number: int
) -> Issue:
    """The issue WEB-12 (project and number) if `actor` may read it, else NotFound."""
    project = await readable_project(session, actor, project_id)
    issue = await session.scalar(
        select(Issue)
        .where(Issue.project_id == project.id, Issue.number == number)
        .options(selectinload(Issue.labels))
    )
    if issue is None:
        raise NotFound(f"No issue {project.key}-{number}.")
    issue.project = project
    return issue
