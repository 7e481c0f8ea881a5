"""Which of a project's webhooks get an activity: a delivery queued for each, in the
change's own transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Activity, Issue, Project, User, Webhook, WorkflowStatus
from app.outbound.webhooks.queue import delivery_body, queue_delivery


async def _issue_summary(session: AsyncSession, project_key: str, issue: Issue) -> dict[str, Any]:
    row = (
        await session.execute(
            select(Issue.number, Issue.title, WorkflowStatus.name)
            .join(WorkflowStatus, WorkflowStatus.id == Issue.status_id)
            .where(Issue.id == issue.id)
        )
    ).one()
    return {"key": f"{project_key}-{row[0]}", "number": row[0], "title": row[1], "status": row[2]}


async def enqueue_deliveries(
    session: AsyncSession,
    activity: Activity,
    project: Project,
    actor: User | None,
    issue: Issue | None,
) -> int:
    """Queue a delivery of `activity` to each of the project's active hooks that wants its kind,
    in the caller's transaction. A project without hooks costs one indexed query."""
    hooks = [
        hook
        for hook in await session.scalars(
            select(Webhook).where(Webhook.project_id == project.id, Webhook.active.is_(True))
        )
        if hook.wants(activity.kind)
    ]
    if not hooks:
        return 0
    project_key = await project.awaitable_attrs.key
    summary = await _issue_summary(session, project_key, issue) if issue is not None else None
    occurred_at = (activity.created_at or utcnow()).isoformat().replace("+00:00", "Z")
    for hook in hooks:
        event_id = str(uuid.uuid4())
        body = delivery_body(
            event_id=event_id,
            kind=activity.kind,
            project_key=project_key,
            seq=activity.seq,
            occurred_at=occurred_at,
            actor=actor,
            issue=summary,
            data=dict(activity.payload or {}),
        )
        queue_delivery(
            session, hook.id, event_id=event_id, kind=activity.kind, seq=activity.seq, body=body
        )
    return len(hooks)
