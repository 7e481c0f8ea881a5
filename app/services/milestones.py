"""Milestones: created, edited and closed by a project's writers; an issue planned into one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.models import Issue, Milestone, StatusCategory, User, WorkflowStatus
from app.models.milestone import TITLE_MAX
from app.services.access import readable_project, writable_project
from app.services.activity import record_activity
from app.services.text import description_text, storable
from app.services.transaction import use_case

ESTIMATE_MAX = 1000

# What a sentinel says when a caller means "leave it as it is".
UNCHANGED: Any = ...


def _title(title: str) -> str:
    title = storable(title).strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise Invalid(f"A milestone's title is 1 to {TITLE_MAX} characters.", field="title")
    return title


def check_estimate(estimate: int | None) -> int | None:
    """An issue's estimate in story points: none, or 0 to ESTIMATE_MAX."""
    if estimate is not None and not 0 <= estimate <= ESTIMATE_MAX:
        raise Invalid(f"An estimate is 0 to {ESTIMATE_MAX} points.", field="estimate")
    return estimate


async def _title_is_free(
    session: AsyncSession, project_id: int, title: str, milestone_id: int | None = None
) -> None:
    clash = select(Milestone.id).where(
        Milestone.project_id == project_id, func.lower(Milestone.title) == title.lower()
    )
    if milestone_id is not None:
        clash = clash.where(Milestone.id != milestone_id)
    if await session.scalar(clash):
        raise Invalid(f"There is a milestone called {title} already.", field="title")


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MilestoneSummary:
    """A milestone with its counts: issues and points, all and done."""

    milestone: Milestone
    total: int
    done: int
    points: int
    points_done: int
    overdue: bool

    @property
    def open_issues(self) -> int:
        return self.total - self.done


def _listing_order() -> tuple[Any, ...]:
    """Open ones first, soonest due first (those without a date after them), then closed ones,
    the latest closed first."""
    return (
        Milestone.closed_at.is_not(None),
        Milestone.due_date.is_(None),
        Milestone.due_date,
        Milestone.closed_at.desc(),
        Milestone.id,
    )


async def get_milestone(
    session: AsyncSession, viewer: User | None, project_id: int, milestone_id: int
) -> Milestone:
    """The project's milestone if `viewer` may read the project; NotFound otherwise."""
    await readable_project(session, viewer, project_id)
    milestone = await session.get(Milestone, milestone_id, populate_existing=True)
    if milestone is None or milestone.project_id != project_id:
        raise NotFound("No such milestone.")
    return milestone


async def choices(
    session: AsyncSession, project_id: int, current: int | None = None
) -> list[Milestone]:
    """What an issue's milestone may be set to: the open milestones, and its own (`current`)
    even when closed. The caller has checked that the project is readable."""
    condition = Milestone.closed_at.is_(None)
    if current is not None:
        condition = condition | (Milestone.id == current)
    return list(
        await session.scalars(
            select(Milestone)
            .where(Milestone.project_id == project_id, condition)
            .order_by(*_listing_order())
        )
    )


async def counts_by_milestone(
    session: AsyncSession, project_id: int, milestone_ids: list[int] | None = None
) -> dict[int, tuple[int, int, int, int]]:
    """(issues, done issues, points, done points) per milestone of the project, in one query."""
    done = WorkflowStatus.category == StatusCategory.DONE.value
    points = func.coalesce(Issue.estimate, 0)
    query = (
        select(
            Issue.milestone_id,
            func.count(),
            func.sum(case((done, 1), else_=0)),
            func.sum(points),
            func.sum(case((done, points), else_=0)),
        )
        .join(WorkflowStatus, WorkflowStatus.id == Issue.status_id)
        .where(Issue.project_id == project_id, Issue.milestone_id.is_not(None))
        .group_by(Issue.milestone_id)
    )
    if milestone_ids is not None:
        query = query.where(Issue.milestone_id.in_(milestone_ids))
    rows = await session.execute(query)
    return {
        row[0]: (int(row[1]), int(row[2] or 0), int(row[3] or 0), int(row[4] or 0)) for row in rows
    }


async def summaries(
    session: AsyncSession, viewer: User | None, project_id: int, *, today: date | None = None
) -> list[MilestoneSummary]:
    """The project's milestones in listing order, with their counts. NotFound when private."""
    await readable_project(session, viewer, project_id)
    today = today or utcnow().date()
    found = list(
        await session.scalars(
            select(Milestone)
            .where(Milestone.project_id == project_id)
            .order_by(*_listing_order())
            .execution_options(populate_existing=True)
        )
    )
    counts = await counts_by_milestone(session, project_id) if found else {}
    return [
        MilestoneSummary(m, *counts.get(m.id, (0, 0, 0, 0)), overdue=m.is_overdue(today))
        for m in found
    ]


async def summary(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    milestone_id: int,
    *,
    today: date | None = None,
) -> MilestoneSummary:
    milestone = await get_milestone(session, viewer, project_id, milestone_id)
    counts = await counts_by_milestone(session, project_id, [milestone.id])
    return MilestoneSummary(
        milestone,
        *counts.get(milestone.id, (0, 0, 0, 0)),
        overdue=milestone.is_overdue(today or utcnow().date()),
    )


# --- Writing ----------------------------------------------------------------------------------


class StaleMilestone(Conflict):
    """The milestone changed since the version the writer saw (the API's If-Match)."""

    status = 412
    code = "precondition_failed"


async def _milestone_for_update(
    session: AsyncSession,
    actor: User,
    project_id: int,
    milestone_id: int,
    expected_version: int | None = None,
) -> Milestone:
    await writable_project(session, actor, project_id)
    milestone = await session.scalar(
        select(Milestone).where(Milestone.id == milestone_id).with_for_update()
    )
    if milestone is None or milestone.project_id != project_id:
        raise NotFound("No such milestone.")
    if expected_version is not None and milestone.version != expected_version:
        raise StaleMilestone(
            f"{milestone.title} changed since version {expected_version}: nothing was saved. "
            "Read it again and retry."
        )
    return milestone


def _described(milestone: Milestone) -> dict[str, Any]:
    return {"id": milestone.id, "title": milestone.title}


@use_case
async def create_milestone(
    session: AsyncSession,
    actor: User,
    project_id: int,
    *,
    title: str,
    description: str = "",
    due_date: date | None = None,
) -> Milestone:
    """A new open milestone (writers). Raises Invalid for a bad or taken title."""
    project = await writable_project(session, actor, project_id)
    title, description = _title(title), description_text(description)
    await _title_is_free(session, project.id, title)
    milestone = Milestone(
        project_id=project.id, title=title, description=description, due_date=due_date
    )
    session.add(milestone)
    await session.flush()
    # A project event: pages kept by the project's counter (issue pages' pickers) see it.
    await record_activity(
        session, project, actor, "milestone.created", payload=_described(milestone)
    )
    return milestone


@use_case
async def update_milestone(
    session: AsyncSession,
    actor: User,
    project_id: int,
    milestone_id: int,
    *,
    title: str | None = None,
    description: str | None = None,
    due_date: date | None = UNCHANGED,
    expected_version: int | None = None,
) -> Milestone:
    """Change a milestone's title, description or due date (None clears the date). With
    `expected_version`, only that version: StaleMilestone otherwise."""
    milestone = await _milestone_for_update(
        session, actor, project_id, milestone_id, expected_version
    )
    changes: dict[str, list[str]] = {}
    with session.no_autoflush:
        if title is not None:
            title = _title(title)
            await _title_is_free(session, project_id, title, milestone.id)
            if title != milestone.title:
                changes["title"] = [milestone.title, title]
            milestone.title = title
        if description is not None:
            description = description_text(description)
            if description != milestone.description:
                changes["description"] = ["", "edited"]
            milestone.description = description
        if due_date is not UNCHANGED and due_date != milestone.due_date:
            changes["due date"] = [
                milestone.due_date.isoformat() if milestone.due_date else "",
                due_date.isoformat() if due_date else "",
            ]
            milestone.due_date = due_date
    if changes:
        project = await readable_project(session, actor, project_id)
        await record_activity(
            session,
            project,
            actor,
            "milestone.updated",
            payload={**_described(milestone), "changes": changes},
        )
    return milestone


async def open_issue_count(session: AsyncSession, milestone: Milestone) -> int:
    """How many of the milestone's issues are not done."""
    return await session.scalar(
        select(func.count())
        .select_from(Issue)
        .join(WorkflowStatus, WorkflowStatus.id == Issue.status_id)
        .where(
            Issue.project_id == milestone.project_id,
            Issue.milestone_id == milestone.id,
            WorkflowStatus.category != StatusCategory.DONE.value,
        )
    )


@use_case
async def close_milestone(
    session: AsyncSession,
    actor: User,
    project_id: int,
    milestone_id: int,
    *,
    move_to: int | None = UNCHANGED,
    expected_version: int | None = None,
) -> int:
    """Close the milestone. Its open issues go to the open milestone `move_to`, or to none
    (None), in the same commit, each with its activity row; when it has open issues and
    `move_to` is not given, Invalid(field="move_to") asks where they go. Returns how many
    issues moved. With `expected_version`, only that version: StaleMilestone otherwise."""
    milestone = await _milestone_for_update(
        session, actor, project_id, milestone_id, expected_version
    )
    if milestone.closed_at is not None:
        raise Invalid("This milestone is closed already.", field="state")
    target: Milestone | None = None
    if move_to is not UNCHANGED and move_to is not None:
        if move_to == milestone.id:
            raise Invalid("Pick another milestone for its open issues.", field="move_to")
        target = await milestone_of_project(session, project_id, move_to)
    project = await readable_project(session, actor, project_id)
    open_issues = list(
        await session.scalars(
            select(Issue)
            .join(WorkflowStatus, WorkflowStatus.id == Issue.status_id)
            .where(
                Issue.project_id == project_id,
                Issue.milestone_id == milestone.id,
                WorkflowStatus.category != StatusCategory.DONE.value,
            )
            .options(joinedload(Issue.project, innerjoin=True))
            .order_by(Issue.id)
            .with_for_update(key_share=True, of=Issue)
        )
    )
    if open_issues and move_to is UNCHANGED:
        count = len(open_issues)
        raise Invalid(
            f"{milestone.title} has {count} open issue{'s' if count != 1 else ''}: "
            "choose another milestone for them, or none.",
            field="move_to",
        )
    for issue in open_issues:
        await move_to_milestone(session, actor, issue, milestone, target)
    milestone.closed_at = utcnow()
    await record_activity(
        session,
        project,
        actor,
        "milestone.closed",
        payload={**_described(milestone), "moved": len(open_issues)},
    )
    return len(open_issues)


@use_case
async def reopen_milestone(
    session: AsyncSession, actor: User, project_id: int, milestone_id: int
) -> Milestone:
    milestone = await _milestone_for_update(session, actor, project_id, milestone_id)
    if milestone.closed_at is None:
        raise Invalid("This milestone is open already.", field="state")
    milestone.closed_at = None
    project = await readable_project(session, actor, project_id)
    await record_activity(
        session, project, actor, "milestone.reopened", payload=_described(milestone)
    )
    return milestone


# --- An issue's milestone ---------------------------------------------------------------------


async def milestone_of_project(
    session: AsyncSession, project_id: int, milestone_id: int | None, *, current: int | None = None
) -> Milestone | None:
    """The open milestone `milestone_id` of the project (None for none); Invalid otherwise.
    The issue's `current` milestone may be kept even when it is closed."""
    if milestone_id is None:
        return None
    milestone = await session.get(Milestone, milestone_id)
    if milestone is None or milestone.project_id != project_id:
        raise Invalid("Pick one of the project's milestones.", field="milestone")
    if milestone.closed_at is not None and milestone.id != current:
        raise Invalid(f"The milestone {milestone.title} is closed.", field="milestone")
    return milestone


def milestone_payload(before: int | None, after: int | None) -> dict[str, Any]:
    """What an issue event's payload says of a milestone change, by id (the burn-up chart reads
    it): {"milestone": [before, after]}, or nothing when it did not change."""
    return {"milestone": [before, after]} if before != after else {}


def done_payload(before: WorkflowStatus | None, after: WorkflowStatus) -> dict[str, Any]:
    """What an issue event's payload says when the issue became done or stopped being done
    (the burn-up chart's done line): {"done": true|false}, or nothing. `before` is None for a
    new issue."""
    was_done = before is not None and before.is_done
    return {"done": after.is_done} if was_done != after.is_done else {}


async def move_to_milestone(
    session: AsyncSession,
    actor: User,
    issue: Issue,
    before: Milestone | None,
    after: Milestone | None,
) -> None:
    """Plan `issue` (its project loaded) into `after` in the caller's transaction, with its
    activity row. The caller has checked that both are the issue's project's."""
    issue.milestone_id = after.id if after else None
    await session.flush()  # the UPDATE bumps issue.version
    await record_activity(
        session,
        issue.project,
        actor,
        "issue.updated",
        issue=issue,
        payload={
            "version": issue.version,
            "changes": {
                "milestone": [before.title if before else "", after.title if after else ""]
            },
            **milestone_payload(before.id if before else None, after.id if after else None),
        },
    )
