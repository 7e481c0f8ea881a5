"""Reading back what a use case wrote: row counts, a workflow's statuses, links in queued mail."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OutboxMessage
from app.services import projects


async def count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def statuses(session: AsyncSession, project_id: int) -> dict[str, int]:
    return {status.name: status.id for status in await projects.workflow(session, project_id)}


async def signed_links(session: AsyncSession, template: str, to_address: str) -> list[str]:
    """The signed part of each link mailed with `template` to `to_address`, oldest first: what
    the recipient would follow."""
    bodies = await session.scalars(
        select(OutboxMessage.text_body)
        .where(OutboxMessage.template == template, OutboxMessage.to_address == to_address)
        .order_by(OutboxMessage.id)
    )
    return [
        match.group(1)
        for body in bodies
        if (match := re.search(r"http://issues\.test/auth/[a-z-]+/(\S+)", body))
    ]
