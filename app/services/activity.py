"""Writing the project's event log in the same transaction as the change it records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit
from app.models import Activity, Issue, Project, User
from app.services.webhook_deliveries import enqueue_deliveries


async def take_project_counters(
    session: AsyncSession, project_id: int, *, issues: int = 0, events: int = 0
) -> tuple[int, int]:
    """Advance the project's counters and return their new values.

    The UPDATE locks the project row until the transaction ends, so concurrent writers to one
    project queue here and numbers are handed out in commit order; a rollback gives them back.
    Call it before anything else in a writing transaction to keep the lock order the same
    everywhere.
    """
    result = await session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(
            last_issue_number=Project.last_issue_number + issues,
            last_event_seq=Project.last_event_seq + events,
        )
        .returning(Project.last_issue_number, Project.last_event_seq)
        .execution_options(synchronize_session=False)
    )
    last_issue_number, last_event_seq = result.one()
    return last_issue_number, last_event_seq


async def record_activity(
    session: AsyncSession,
    project: Project,
    actor: User | None,
    kind: str,
    *,
    issue: Issue | None = None,
    payload: dict[str, Any] | None = None,
) -> Activity:
    """Add the event-log row for a change; the caller commits it with the change."""
    _, seq = await take_project_counters(session, project.id, events=1)
    activity = Activity(
        project_id=project.id,
        seq=seq,
        actor_id=actor.id if actor else None,
        issue_id=issue.id if issue else None,
        kind=kind,
        payload=payload or {},
    )
    session.add(activity)
    # Tell the live layer once this commits: PostgreSQL delivers a NOTIFY only at commit (and
    # drops it on rollback); SQLite's single process hears it from an after-commit hook.
    after_commit.note_activity(session, project.id)
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_notify("issues_activity", f"{project.id}:{seq}")))
    # Webhook deliveries commit (or roll back) with the change, like the row itself.
    await enqueue_deliveries(session, activity, project, actor, issue)
    return activity


async def activity_since(
    session: AsyncSession,
    project_id: int,
    after_seq: int,
    *,
    issue_id: int | None = None,
    limit: int = 500,
) -> list[Activity]:
    """The project's events after `after_seq`, oldest first (the replay a live client needs);
    with `issue_id`, that issue's only."""
    statement = select(Activity).where(Activity.project_id == project_id, Activity.seq > after_seq)
    if issue_id is not None:
        statement = statement.where(Activity.issue_id == issue_id)
    return list(await session.scalars(statement.order_by(Activity.seq).limit(limit)))
