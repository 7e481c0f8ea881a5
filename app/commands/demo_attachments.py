"""Demo attachments: a screenshot on a few issues (drawn with Pillow), a log file, and an
image pasted into a comment, so that a newcomer sees files at once."""

from __future__ import annotations

import asyncio
import io
import random

from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Issue, Project, User
from app.services import attachments, comments
from app.storage import AttachmentStorage, Spool

DEMO_PROJECT = "WEB"
ISSUES_WITH_FILES = 3


def _screenshot(seed: int) -> bytes:
    """A small made-up screenshot: a window with a bar chart."""
    rng = random.Random(seed)
    image = Image.new("RGB", (480, 300), "#f8fafc")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 479, 28), fill="#4f46e5")
    for index in range(8):
        height = rng.randint(30, 220)
        left = 30 + index * 55
        draw.rectangle((left, 280 - height, left + 35, 280), fill="#0ea5e9")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _spooled(storage: AttachmentStorage, data: bytes, file_name: str) -> attachments.Upload:
    spool = Spool(storage.staging_dir, limit=len(data))
    spool.write(data)
    path = spool.finish()
    return attachments.Upload(
        path=path, file_name=file_name, size=spool.size, sha256=spool.sha256, head=spool.head
    )


async def seed_attachments(
    session: AsyncSession, storage: AttachmentStorage, people: list[User]
) -> int:
    """Attach files to the first issues of the demo's public project; returns how many."""
    issue_ids = list(
        await session.scalars(
            select(Issue.id)
            .join(Project, Project.id == Issue.project_id)
            .where(Project.key == DEMO_PROJECT)
            .order_by(Issue.number)
            .limit(ISSUES_WITH_FILES)
        )
    )
    made = 0
    for position, issue_id in enumerate(issue_ids):
        uploader = people[position % len(people)]
        image = await asyncio.to_thread(_screenshot, position)
        await attachments.add_attachment(
            session, storage, uploader, issue_id, _spooled(storage, image, "screenshot.png")
        )
        log = f"2026-12-03T09:1{position}:00Z ERROR request timed out after 30 s\n".encode()
        await attachments.add_attachment(
            session, storage, uploader, issue_id, _spooled(storage, log * 20, "server.log")
        )
        pasted = await attachments.add_attachment(
            session,
            storage,
            uploader,
            issue_id,
            _spooled(storage, await asyncio.to_thread(_screenshot, 100 + position), "after.png"),
        )
        await comments.add_comment(
            session, uploader, issue_id, f"After the fix:\n\n![after.png](/attachments/{pasted.id})"
        )
        made += 3
    return made
