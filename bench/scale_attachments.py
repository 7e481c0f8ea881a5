"""bench.scale's attachment scenario: an issue's files, as its page and the API list them.

The bench database has no attachments of its own: `give_files` adds rows (no stored bytes,
which no timed query reads) to the measured issue once, so that the list has something to
find among the other issues' files.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models import Attachment, Issue, User
from app.services import attachments, issue_views

FILES_ON_THE_ISSUE = 30
# Spread over other issues, so that the index, not the table's size, decides the cost.
FILES_ELSEWHERE = 20_000


async def give_files(database: Database, issue_key: str, viewer: User) -> None:
    """Attachment rows on `issue_key` and on other issues, added once (kept between runs)."""
    async with database.sessionmaker() as session:
        issue = await issue_views.get_issue_by_key(session, viewer, issue_key)
        present = await session.scalar(
            select(func.count()).select_from(Attachment).where(Attachment.issue_id == issue.id)
        )
        if present:
            return
        others = list(
            await session.scalars(
                select(Issue.id)
                .where(Issue.id != issue.id)
                .order_by(Issue.id)
                .limit(FILES_ELSEWHERE)
            )
        )
        owners = [issue.id] * FILES_ON_THE_ISSUE + others
        rows = [
            Attachment(
                issue_id=issue_id,
                uploader_id=viewer.id,
                file_name=f"screenshot-{n}.png",
                content_type="image/png",
                size=48_000 + n,
                storage_key=f"bench/{issue.id}/{n}",
                sha256=f"{n:064x}",
                has_thumbnail=True,
            )
            for n, issue_id in enumerate(owners)
        ]
        session.add_all(rows)
        await session.commit()


def issue_files(viewer: User, key: str) -> Callable[[AsyncSession], Awaitable[None]]:
    """GET /api/v1/issues/<key>/attachments (and the issue page's Attachments section)."""

    async def run(session: AsyncSession) -> None:
        heading = await issue_views.issue_heading(session, viewer, key)
        await attachments.list_attachments(session, viewer, heading.id)

    return run
