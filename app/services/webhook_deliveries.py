"""Which of a project's webhooks get an activity: a delivery queued for each, in the
change's own transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


@dataclass
class PendingDeliveries:
    """The deliveries of one activity, looked up once its seq (and a new issue's number) are
    taken at commit (services/activity.take_numbers), and queued in that transaction."""

    hooks: list[Webhook]
    project_key: str
    actor: User | None
    summary: dict[str, Any] | None

    def queue(self, session: AsyncSession, activity: Activity) -> int:
        """Queue a delivery to each hook, in the caller's transaction."""
        occurred_at = (activity.created_at or utcnow()).isoformat().replace("+00:00", "Z")
        for hook in self.hooks:
            event_id = str(uuid.uuid4())
            body = delivery_body(
                event_id=event_id,
                kind=activity.kind,
                project_key=self.project_key,
                seq=activity.seq,
                occurred_at=occurred_at,
                actor=self.actor,
                issue=self.summary,
                data=dict(activity.payload or {}),
            )
            queue_delivery(
                session, hook.id, event_id=event_id, kind=activity.kind, seq=activity.seq, body=body
            )
        return len(self.hooks)


async def prepare_deliveries(
    session: AsyncSession,
    activity: Activity,
    project: Project,
    actor: User | None,
    issue: Issue | None,
) -> PendingDeliveries | None:
    """The project's active hooks that want `activity`'s kind, with what their deliveries
    say (None when there are none). A project without hooks costs one indexed query."""
    hooks = [
        hook
        for hook in await session.scalars(
            select(Webhook).where(Webhook.project_id == project.id, Webhook.active.is_(True))
        )
        if hook.wants(activity.kind)
    ]
    if not hooks:
        return None
    project_key = await project.awaitable_attrs.key
    summary = await _issue_summary(session, project_key, issue) if issue is not None else None
    return PendingDeliveries(hooks, project_key, actor, summary)
