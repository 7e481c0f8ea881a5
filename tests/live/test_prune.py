"""Pruning the activity log: live clients behind the retained window resync, the rest replay,
and issue pages keep working with fewer entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from quart import Quart
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.commands.maintenance import prune_activity
from app.db import utcnow
from app.live.stream import RESYNC_EVENT, StreamSettings, event_stream
from app.models import Activity, Project
from app.services import comments
from tests.factories import make_issue, make_project, make_user
from tests.pages import PASSWORD, log_in


async def first_events(stream: AsyncIterator[bytes], count: int) -> list[bytes]:
    """The first `count` chunks after the opening retry hint (ends early if the stream does)."""
    chunks: list[bytes] = []
    async for chunk in stream:
        if chunk.startswith(b"retry:"):
            continue
        chunks.append(chunk)
        if chunk == RESYNC_EVENT or len(chunks) == count:
            break
    await stream.aclose()
    return chunks


async def a_project_with_old_history(session: AsyncSession) -> tuple[Project, int]:
    """A project with six events; the first four are 90 days old. Returns it and its last seq."""
    owner = await make_user(session, email="owner@example.com", password_hash=None)
    project = await make_project(session, owner, key="OLD")
    issue = await make_issue(session, owner, project, title="Long lived")
    for number in range(4):
        await comments.add_comment(session, owner, issue.id, f"comment {number}")
    latest = await session.scalar(
        select(func.max(Activity.seq)).where(Activity.project_id == project.id)
    )
    await session.execute(
        update(Activity)
        .where(Activity.project_id == project.id, Activity.seq <= latest - 2)
        .values(created_at=utcnow() - timedelta(days=90))
    )
    await session.commit()
    return project, latest


async def test_a_client_behind_the_pruned_window_is_told_to_resync(
    app: Quart, session: AsyncSession
) -> None:
    project, latest = await a_project_with_old_history(session)
    assert await prune_activity(session, older_than=timedelta(days=30)) == latest - 2
    stream = event_stream(app.extensions["broker"], project.id, 1, StreamSettings(heartbeat=0.2))
    assert await first_events(stream, 1) == [RESYNC_EVENT]


async def test_a_client_ahead_of_everything_pruned_still_gets_resync(
    app: Quart, session: AsyncSession
) -> None:
    project, latest = await a_project_with_old_history(session)
    await prune_activity(session, older_than=timedelta(days=0))  # everything goes
    stream = event_stream(
        app.extensions["broker"], project.id, latest - 3, StreamSettings(heartbeat=0.2)
    )
    assert await first_events(stream, 1) == [RESYNC_EVENT]


async def test_an_up_to_date_client_of_a_quiet_project_stays_connected(
    app: Quart, session: AsyncSession
) -> None:
    # Every row of a project quiet for months is pruned; its pages still carry its counter.
    project, latest = await a_project_with_old_history(session)
    await session.execute(update(Activity).values(created_at=utcnow() - timedelta(days=90)))
    await session.commit()
    await prune_activity(session, older_than=timedelta(days=30))
    stream = event_stream(
        app.extensions["broker"], project.id, latest, StreamSettings(heartbeat=0.05)
    )
    # A heartbeat, not resync (which would make the page reload, again and again).
    assert await first_events(stream, 1) == [b": ping\n\n"]


async def test_a_client_behind_a_hole_in_the_kept_rows_gets_resync(
    app: Quart, session: AsyncSession
) -> None:
    # Rows a pending digest needs are kept, so a pruned log can have holes in the middle.
    project, latest = await a_project_with_old_history(session)
    await session.execute(
        delete(Activity).where(Activity.project_id == project.id, Activity.seq == latest - 1)
    )
    await session.commit()
    stream = event_stream(
        app.extensions["broker"], project.id, latest - 3, StreamSettings(heartbeat=0.2)
    )
    assert await first_events(stream, 1) == [RESYNC_EVENT]


async def test_a_client_within_the_retained_window_replays_what_it_missed(
    app: Quart, session: AsyncSession
) -> None:
    project, latest = await a_project_with_old_history(session)
    await prune_activity(session, older_than=timedelta(days=30))
    stream = event_stream(
        app.extensions["broker"], project.id, latest - 2, StreamSettings(heartbeat=0.2)
    )
    events = await first_events(stream, 2)
    assert [event.split(b"\n", 1)[0] for event in events] == [
        f"id: {latest - 1}".encode(),
        f"id: {latest}".encode(),
    ]


async def test_the_issue_page_shows_what_is_left_after_pruning(
    app: Quart, client, session: AsyncSession
) -> None:
    owner = await make_user(session, email="ann@example.com")
    owner.password_hash = await app.extensions["account_settings"].hasher.hash(PASSWORD)
    session.add(owner)
    await session.commit()
    project = await make_project(session, owner, key="KEEP")
    issue = await make_issue(session, owner, project, title="Still here")
    await comments.add_comment(session, owner, issue.id, "a comment that stays")
    await session.execute(update(Activity).values(created_at=utcnow() - timedelta(days=400)))
    await session.commit()
    assert await prune_activity(session, older_than=timedelta(days=365)) >= 2
    assert (await log_in(client, "ann@example.com")).status_code == 302
    response = await client.get(f"/KEEP-{issue.number}")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert "Still here" in page and "a comment that stays" in page
