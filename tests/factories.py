"""Test data made through the same services the app uses, with defaults that read well."""

from __future__ import annotations

import itertools

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Attachment, Issue, Membership, Project, Role, User
from app.services import attachments, issues, projects
from app.services.attachments import Upload
from app.storage import AttachmentStorage, Spool

_sequence = itertools.count(1)


async def make_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    display_name: str | None = None,
    validated: bool = True,
    password_hash: str | None = None,
) -> User:
    number = next(_sequence)
    email = email or f"user{number}@example.com"
    user = User(
        email=email,
        handle=email.split("@")[0].lower() + str(number),
        display_name=display_name or f"User {number}",
        email_verified_at=utcnow() if validated else None,
        password_hash=password_hash,
    )
    session.add(user)
    await session.commit()
    # Detached, like the request's user, so that a refused use case's rollback leaves it usable.
    session.expunge(user)
    return user


async def make_project(
    session: AsyncSession, owner: User, *, key: str | None = None, is_public: bool = False
) -> Project:
    key = key or f"P{next(_sequence)}"
    return await projects.create_project(
        session, owner, key=key, name=f"Project {key}", is_public=is_public
    )


async def add_member(
    session: AsyncSession, project: Project, user: User, role: Role = Role.MEMBER
) -> None:
    session.add(Membership(project_id=project.id, user_id=user.id, role=role.value))
    await session.commit()


async def make_issue(
    session: AsyncSession, actor: User, project: Project, *, title: str | None = None
) -> Issue:
    return await issues.create_issue(
        session, actor, project.id, title=title or f"Issue {next(_sequence)}"
    )


def png_bytes(width: int = 40, height: int = 30, color: str = "#2563eb") -> bytes:
    """A small real PNG, made with Pillow."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def spooled(storage: AttachmentStorage, data: bytes, file_name: str) -> Upload:
    """`data` as the upload route hands it to the service: streamed into a staging file."""
    spool = Spool(storage.staging_dir, limit=len(data) + 1)
    spool.write(data)
    path = spool.finish()
    return Upload(
        path=path, file_name=file_name, size=spool.size, sha256=spool.sha256, head=spool.head
    )


async def make_attachment(
    session: AsyncSession,
    storage: AttachmentStorage,
    actor: User,
    issue: Issue,
    *,
    data: bytes | None = None,
    file_name: str = "screenshot.png",
    comment_id: int | None = None,
) -> Attachment:
    return await attachments.add_attachment(
        session,
        storage,
        actor,
        issue.id,
        spooled(storage, png_bytes() if data is None else data, file_name),
        comment_id=comment_id,
    )
