"""Demo data for milestones: two per project with estimates and three weeks of history."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Activity, Issue, Milestone, StatusCategory, User
from app.services import issues, milestones, projects
from app.services.issues import IssueChanges

HISTORY_DAYS = 21
PLANS = (  # title, description, due in days, issues planned in
    ("1.0", "The **first release**: sign-up, the board and search.", 10, 24),
    ("1.1", "Polish after the release: speed and the small things people ask for.", 45, 12),
)


async def plan_milestones(session: AsyncSession, people: list[User], project_id: int) -> None:
    """Two milestones in the project, issues planned into them with estimates, some done
    later, the events spread over the past three weeks so that the burn-up charts have a
    history."""
    rng = random.Random(project_id)  # its own: the rest of the demo stays as it was
    started = utcnow()
    first_day = started - timedelta(days=HISTORY_DAYS)
    statuses = await projects.workflow(session, project_id)
    done = next(status.id for status in statuses if status.category == StatusCategory.DONE)
    unplanned = list(
        await session.scalars(
            select(Issue.id).where(Issue.project_id == project_id).order_by(Issue.id)
        )
    )
    rng.shuffle(unplanned)
    planned: list[int] = []
    for title, description, due_in, size in PLANS:
        made = await milestones.create_milestone(
            session,
            people[0],
            project_id,
            title=title,
            description=description,
            due_date=(started + timedelta(days=due_in)).date(),
        )
        for issue_id in unplanned[:size]:
            await issues.update_issue(
                session,
                rng.choice(people),
                issue_id,
                IssueChanges(milestone_id=made.id, estimate=rng.choice([1, 2, 3, 5, 8])),
                expected_version=None,
            )
        chosen, unplanned = unplanned[:size], unplanned[size:]
        for issue_id in chosen[: size // 2]:  # work done since
            await issues.update_issue(
                session,
                rng.choice(people),
                issue_id,
                IssueChanges(status_id=done),
                expected_version=None,
            )
        planned += chosen
    # What was just written, spread over the past weeks in its order: planned first, done later.
    events = list(
        await session.scalars(
            select(Activity.id)
            .where(Activity.issue_id.in_(planned), Activity.created_at >= started)
            .order_by(Activity.id)
        )
    )
    for number, event_id in enumerate(events):
        at = first_day + timedelta(days=HISTORY_DAYS * (number + 1) / (len(events) + 1))
        await session.execute(update(Activity).where(Activity.id == event_id).values(created_at=at))
    await session.execute(
        update(Milestone).where(Milestone.project_id == project_id).values(created_at=first_day)
    )
    await session.commit()
