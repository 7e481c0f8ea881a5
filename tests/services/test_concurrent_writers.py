"""Issue numbers and event sequence numbers stay unique and gap-free under concurrent writers,
who hold the project's counters only from the moment they take them to their commit."""

from __future__ import annotations

import asyncio

import pytest
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Activity, Issue, Project
from app.services import comments, issues
from app.services.activity import record_activity
from app.services.transaction import use_case
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


@pytest.mark.postgresql_only  # SQLite's writers queue on the database's one write lock
async def test_a_writer_holds_the_project_s_counters_only_at_its_commit(app: Quart) -> None:
    """A transaction that has written its comment but not committed yet does not hold the
    project up: another writer creates an issue meanwhile, and numbers follow commit order."""
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner, key="HOLD")
        issue = await issues.create_issue(session, owner, project.id, title="First")
    written, release = asyncio.Event(), asyncio.Event()

    @use_case
    async def comment_and_wait(session: AsyncSession) -> None:
        # add_comment's own body, inside this transaction, which then stays open a while.
        await comments.add_comment.__wrapped__(session, owner, issue.id, "held open")
        written.set()
        await release.wait()

    async def slow_writer() -> None:
        async with sessionmaker() as session:
            await comment_and_wait(session)

    slow = asyncio.create_task(slow_writer())
    await asyncio.wait_for(written.wait(), 10)
    async with sessionmaker() as session:
        # Under the old order (counters first) this waited for the slow writer's commit.
        second = await asyncio.wait_for(
            issues.create_issue(session, owner, project.id, title="Second"), 10
        )
    release.set()
    await slow

    assert (issue.number, second.number) == (1, 2)
    async with sessionmaker() as session:
        log = [
            (row.seq, row.kind, row.payload.get("number"))
            for row in await session.scalars(
                select(Activity).where(Activity.project_id == project.id).order_by(Activity.seq)
            )
        ]
    # The slow comment was written before the second issue but committed after it.
    assert log == [
        (1, "project.created", None),
        (2, "issue.created", 1),
        (3, "issue.created", 2),
        (4, "comment.added", None),
    ]


async def test_a_commit_that_skips_numbering_is_refused(app: Quart) -> None:
    """Only use_case takes the numbers; a commit that did not would store NULL numbers."""
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner, key="SKIP")
        await record_activity(session, project, owner, "project.updated")
        with pytest.raises(RuntimeError, match="numbers were not taken"):
            await session.commit()
        await session.rollback()
        unnumbered = select(func.count()).select_from(Activity).where(Activity.seq.is_(None))
        assert await session.scalar(unnumbered) == 0


async def test_a_savepoint_rolled_back_keeps_the_numbers_of_what_came_before(app: Quart) -> None:
    """A use case that tries something in a savepoint and rolls it back still numbers what it
    wrote before it, and nothing of what the savepoint took away (no NULL, no gap)."""
    sessionmaker = app.extensions["database"].sessionmaker
    async with sessionmaker() as session:
        owner = await make_user(session)
        project = await make_project(session, owner, key="SAVE")

        @use_case
        async def update_then_try(session: AsyncSession) -> None:
            await record_activity(session, project, owner, "project.updated")
            savepoint = await session.begin_nested()
            await record_activity(session, project, owner, "project.updated", payload={"n": 2})
            await session.flush()
            await savepoint.rollback()

        await update_then_try(session)
        rows = list(
            await session.execute(
                select(Activity.seq, Activity.kind, Activity.payload)
                .where(Activity.project_id == project.id)
                .order_by(Activity.id)
            )
        )
    assert [(seq, kind) for seq, kind, _ in rows] == [
        (1, "project.created"),
        (2, "project.updated"),
    ]
    assert rows[1].payload == {}  # the savepoint's event is gone, not numbered
    async with sessionmaker() as session:
        counter = await session.scalar(
            select(Project.last_event_seq).where(Project.id == project.id)
        )
    assert counter == 2, "the counter passed a number nobody has: the next event leaves a gap"
