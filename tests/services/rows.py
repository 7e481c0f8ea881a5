"""Reading back what a use case wrote: rows as stored, counts, statuses, links in queued mail."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OutboxMessage
from app.services import projects

Row = TypeVar("Row")


async def count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def rows_of(session: AsyncSession, model: type[Row], *criteria: Any) -> list[Row]:
    """The rows of `model` as the database holds them now, not as the session remembers them,
    in the order they were written."""
    query = select(model).where(*criteria).order_by(*model.__mapper__.primary_key)
    return list(await session.scalars(query.execution_options(populate_existing=True)))


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
