"""Admin jobs over the database, run from the CLI: pruning the activity log."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import begin_writing, utcnow
from app.models import Activity, Notification

PRUNE_BATCH = 5000


async def prune_activity(session: AsyncSession, *, older_than: timedelta) -> int:
    """Delete activity rows older than `older_than`, in batches (one commit each, so writers
    wait only briefly), and return how many. Rows that a watcher's unsent digest still refers
    to are kept until it is sent.

    A live client whose Last-Event-ID falls in the pruned part can no longer be replayed: the
    stream tells it to resync (reload). An issue's timeline shows only what is left.
    """
    cutoff = utcnow() - older_than
    awaiting_digest = select(Notification.activity_id).where(Notification.emailed_at.is_(None))
    pruned = 0
    while True:
        await begin_writing(session)
        batch = list(
            await session.scalars(
                select(Activity.id)
                .where(Activity.created_at < cutoff, Activity.id.not_in(awaiting_digest))
                .order_by(Activity.id)
                .limit(PRUNE_BATCH)
            )
        )
        if batch:
            await session.execute(delete(Activity).where(Activity.id.in_(batch)))
        await session.commit()
        pruned += len(batch)
        if len(batch) < PRUNE_BATCH:
            return pruned
