"""The project's event log: replay reads only what came after a sequence number."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.activity import activity_since
from tests.factories import make_issue, make_project, make_user


async def test_replay_reads_only_what_came_after(session: AsyncSession) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    for _ in range(4):
        await make_issue(session, alice, project)
    assert [e.seq for e in await activity_since(session, project.id, 3)] == [4, 5]
    assert await activity_since(session, project.id, 5) == []
