"""Issue numbers and event sequence numbers stay unique and gap-free under concurrent writers."""

from __future__ import annotations

import asyncio

from quart import Quart
from sqlalchemy import select

from app.models import Activity, Issue
from app.services import comments, issues
from tests.factories import add_member, make_project, make_user

WRITERS = 6
ISSUES_PER_WRITER = 5


async def test_concurrent_writers_never_leave_a_gap_a_reader_can_see(app: Quart) -> None:
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner, key="RACE")
        writers = [await make_user(session) for _ in range(WRITERS)]
        for writer in writers:
            await add_member(session, project, writer)
    project_id = project.id
    done = asyncio.Event()
    snapshots_seen: list[int] = []

    async def write(writer) -> None:
        async with sessionmaker() as session:
            for n in range(ISSUES_PER_WRITER):
                issue = await issues.create_issue(session, writer, project_id, title=f"t{n}")
                await comments.add_comment(session, writer, issue.id, "on it")

    async def observe() -> None:
        # Every snapshot a reader takes must hold 1..max and nothing else: a live client that
        # saw event n may rely on having seen every event before it.
        while not done.is_set():
            async with sessionmaker() as session:
                seqs = list(
                    await session.scalars(
                        select(Activity.seq)
                        .where(Activity.project_id == project_id)
                        .order_by(Activity.seq)
                    )
                )
            assert seqs == list(range(1, len(seqs) + 1)), f"a reader saw a gap: {seqs}"
            snapshots_seen.append(len(seqs))
            await asyncio.sleep(0)

    observer = asyncio.create_task(observe())
    await asyncio.gather(*(write(writer) for writer in writers))
    done.set()
    await observer

    async with sessionmaker() as session:
        numbers = sorted(await session.scalars(select(Issue.number)))
        seqs = sorted(
            await session.scalars(select(Activity.seq).where(Activity.project_id == project_id))
        )
    total_issues = WRITERS * ISSUES_PER_WRITER
    assert numbers == list(range(1, total_issues + 1))
    # project.created, then one issue.created and one comment.added per issue.
    assert seqs == list(range(1, 1 + 2 * total_issues + 1))
    assert len(set(snapshots_seen)) > 1, "the observer should have watched the log grow"
