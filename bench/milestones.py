"""bench.scale's milestone scenario: a milestone of 2,000 issues with two months of history.

`prepare` makes it once in the bench database (found again by its title on later runs), through
the services' own writes: 2,000 open issues of the biggest project planned into the milestone
(one activity row each, as closing a milestone writes them), half of them done afterwards, the
events spread over 60 days, so that the burn-up chart has a real history to read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from quart import Quart
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.db import utcnow
from app.models import Activity, Issue, Milestone, Project, StatusCategory, User, WorkflowStatus
from app.services import boards, milestone_progress, milestones, projects
from app.services.access import may_write
from app.services.activity import record_activity
from app.services.boards import BoardFilters
from app.services.transaction import use_case

Operation = Callable[[AsyncSession], Awaitable[None]]

TITLE = "bench: 2,000 issues"
SIZE = 2_000
HISTORY_DAYS = 60
BATCH = 200


@use_case
async def _plan_batch(
    session: AsyncSession, actor: User, milestone_id: int, issue_ids: list[int], done_id: int
) -> None:
    """Plan the issues into the milestone, and make every other one done, with their events."""
    milestone = await session.get_one(Milestone, milestone_id)
    found = await session.scalars(
        select(Issue)
        .where(Issue.id.in_(issue_ids))
        .options(joinedload(Issue.project), joinedload(Issue.status))
        .order_by(Issue.id)
    )
    done = await session.get_one(WorkflowStatus, done_id)
    for number, issue in enumerate(found):
        await milestones.move_to_milestone(session, actor, issue, None, milestone)
        if number % 2:
            before, issue.status = issue.status, done
            await session.flush()
            await record_activity(
                session,
                issue.project,
                actor,
                "issue.updated",
                issue=issue,
                payload={
                    "version": issue.version,
                    "changes": {"status": [before.name, done.name]},
                    **milestones.done_payload(before, done),
                },
            )


async def prepare(app: Quart, viewer_id: int, project_key: str) -> tuple[int, int]:
    """The bench milestone's (project id, milestone id), made first if it is not there."""
    database = app.extensions["database"]
    async with database.sessionmaker() as session:
        viewer = await session.get_one(User, viewer_id)
        session.expunge(viewer)
        project = await session.scalar(select(Project).where(Project.key == project_key))
        project_id = project.id
        existing = await session.scalar(
            select(Milestone.id).where(Milestone.project_id == project_id, Milestone.title == TITLE)
        )
        if existing is not None:
            return project_id, existing
        started = utcnow()
        made = await milestones.create_milestone(
            session, viewer, project_id, title=TITLE, due_date=(started + timedelta(days=14)).date()
        )
        milestone_id = made.id
        statuses = await projects.workflow(session, project_id)
        done_id = next(s.id for s in statuses if s.category == StatusCategory.DONE)
        open_ids = [s.id for s in statuses if s.category != StatusCategory.DONE]
        chosen = list(
            await session.scalars(
                select(Issue.id)
                .where(
                    Issue.project_id == project_id,
                    Issue.milestone_id.is_(None),
                    Issue.status_id.in_(open_ids),
                )
                .order_by(Issue.id)
                .limit(SIZE)
            )
        )
        for start in range(0, len(chosen), BATCH):
            await _plan_batch(session, viewer, milestone_id, chosen[start : start + BATCH], done_id)
        # Spread the new events over the past HISTORY_DAYS, in their order: planned in the first
        # weeks, done later.
        events = list(
            await session.scalars(
                select(Activity.id)
                .where(Activity.issue_id.in_(chosen), Activity.created_at >= started)
                .order_by(Activity.id)
            )
        )
        first = started - timedelta(days=HISTORY_DAYS)
        await session.execute(
            update(Milestone).where(Milestone.id == milestone_id).values(created_at=first)
        )
        for number, event_id in enumerate(events):
            at = first + timedelta(days=HISTORY_DAYS * number / max(len(events), 1))
            await session.execute(
                update(Activity).where(Activity.id == event_id).values(created_at=at)
            )
        await session.commit()
        return project_id, milestone_id


def milestone_page(viewer: User, key: str, milestone_id: int) -> Operation:
    """milestones.show: its progress, its issues by category and its burn-up chart."""

    async def run(session: AsyncSession) -> None:
        project = await projects.project_by_key(session, viewer, key)
        await may_write(session, viewer, project)
        await milestone_progress.milestone_page(session, viewer, project.id, milestone_id)

    return run


def milestone_list(viewer: User, key: str) -> Operation:
    """milestones.index: every milestone of the project with its counts."""

    async def run(session: AsyncSession) -> None:
        project = await projects.project_by_key(session, viewer, key)
        await may_write(session, viewer, project)
        await milestones.summaries(session, viewer, project.id)

    return run


def board_of_milestone(viewer: User, key: str, milestone_id: int) -> Operation:
    """boards.board?milestone=: the board narrowed to the milestone's cards."""

    async def run(session: AsyncSession) -> None:
        project = await projects.project_by_key(session, viewer, key)
        filters = BoardFilters(milestone=str(milestone_id))
        await boards.board(session, viewer, project.id, filters=filters)
        await milestones.choices(session, project.id)

    return run


def operations(viewer: User, key: str, milestone_id: int) -> dict[str, Operation]:
    return {
        f"milestone page + burn-up, {SIZE:,} issues ({key})": milestone_page(
            viewer, key, milestone_id
        ),
        f"milestones list ({key})": milestone_list(viewer, key),
        f"board filtered by milestone ({key})": board_of_milestone(viewer, key, milestone_id),
    }
