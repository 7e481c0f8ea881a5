"""What an operator watches that only the database knows: how deep the delivery queues are."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import DeliveryStatus, MailStatus, OutboxMessage, WebhookDelivery
from app.web.metrics import QueueDepth


async def queue_depths(session: AsyncSession) -> list[QueueDepth]:
    """Pending and failed mail and webhook deliveries, and how long the oldest due one has
    waited: two small grouped counts on the (status, next_attempt_at) indexes."""
    now = utcnow()
    depths = []
    for name, model, pending, failed in (
        ("mail", OutboxMessage, MailStatus.PENDING.value, MailStatus.FAILED.value),
        ("webhooks", WebhookDelivery, DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value),
    ):
        counts = dict(
            (
                await session.execute(
                    select(model.status, func.count())
                    .where(model.status.in_([pending, failed]))
                    .group_by(model.status)
                )
            ).all()
        )
        oldest_due = await session.scalar(
            select(func.min(model.next_attempt_at)).where(
                model.status == pending, model.next_attempt_at <= now
            )
        )
        waited = (now - oldest_due).total_seconds() if oldest_due is not None else 0.0
        depths.append(QueueDepth(name, counts.get(pending, 0), counts.get(failed, 0), waited))
    return depths
