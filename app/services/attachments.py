"""Attachments: files on an issue or a comment, typed by their bytes, thumbnailed, and removed
from storage only once the rows that named them are gone (decision 0020)."""

from __future__ import annotations

import asyncio
import re
import tempfile
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import filetype
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.db import after_commit
from app.errors import Forbidden, Invalid, NotFound
from app.models import Attachment, Comment, Issue, Project, User
from app.models.attachment import FILE_NAME_MAX, IMAGE_TYPES, THUMBNAIL_SUFFIX
from app.services.access import readable_project, writable_project
from app.services.activity import record_activity
from app.services.transaction import use_case
from app.storage import AttachmentStorage

THUMBNAIL_SIZE = (320, 320)
# Types the sniffer may name that a browser would run as a page: never stored under their own
# type, so never served as one.
ACTIVE_TYPES = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml"})
# An attachment's own URL, as the upload inserts it into Markdown: /attachments/12.
ATTACHMENT_URL = re.compile(r"/attachments/([1-9][0-9]{0,9})(?![0-9])")


@dataclass(frozen=True)
class Upload:
    """A file that has streamed in to a temporary file: what the blueprint hands the service."""

    path: Path
    file_name: str
    size: int
    sha256: str
    head: bytes


def safe_file_name(given: str | None) -> str:
    """The name as given, made safe to store and show: its last path part only, no control or
    format characters (no right-to-left tricks), at most FILE_NAME_MAX characters with the
    extension kept, and never empty or a dot name."""
    name = unicodedata.normalize("NFC", given or "")
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    name = re.split(r"[/\\]", name)[-1].strip().lstrip(".").strip()
    if not name:
        return "file"
    if len(name) > FILE_NAME_MAX:
        suffix = PurePosixPath(name).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        name = name[: FILE_NAME_MAX - len(suffix)].rstrip() + suffix
    return name


def sniff_content_type(head: bytes) -> str:
    """The type the bytes say they are (the client's word is never asked): a known signature,
    else text/plain for text, else application/octet-stream. Markup that a browser would run
    (HTML, SVG) is text/plain."""
    kind = filetype.guess(head)
    if kind is not None and kind.mime not in ACTIVE_TYPES:
        return kind.mime
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multibyte character cut at the end of the head is still text.
        if error.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain"


def _thumbnail(source: Path, staging_dir: Path) -> tuple[bool, Path | None]:
    """(is a readable image, its thumbnail as a PNG file or None). CPU work: run in a thread."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            image.seek(0)
            image.thumbnail(THUMBNAIL_SIZE)
            image = image.convert("RGBA")
            staging_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=staging_dir, prefix="thumb-", suffix=".png", delete=False
            ) as handle:
                image.save(handle, format="PNG")
            return True, Path(handle.name)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False, None


async def _issue_and_project(
    session: AsyncSession, actor: User, issue_id: int, comment_id: int | None
) -> tuple[Issue, Project]:
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue.")
    project = await writable_project(session, actor, issue.project_id)
    if comment_id is not None:
        comment = await session.get(Comment, comment_id)
        if comment is None or comment.issue_id != issue_id or comment.deleted_at is not None:
            raise NotFound("No such comment.", field="comment_id")
        if comment.author_id != actor.id:
            raise Forbidden("You can only attach files to your own comments.")
    return issue, project


async def check_may_attach(
    session: AsyncSession, actor: User, issue_id: int, comment_id: int | None = None
) -> None:
    """Raise NotFound or Forbidden unless `actor` may attach files here, then end the read
    transaction: the upload that follows may take a while and must not hold it open."""
    try:
        await _issue_and_project(session, actor, issue_id, comment_id)
    finally:
        await session.commit()


@use_case
async def _record_attachment(
    session: AsyncSession,
    actor: User,
    issue_id: int,
    comment_id: int | None,
    attachment: Attachment,
) -> Attachment:
    issue, project = await _issue_and_project(session, actor, issue_id, comment_id)
    session.add(attachment)
    await session.flush()
    await record_activity(
        session,
        project,
        actor,
        "attachment.added",
        issue=issue,
        payload={"attachment_id": attachment.id, "file_name": attachment.file_name},
    )
    return attachment


async def add_attachment(
    session: AsyncSession,
    storage: AttachmentStorage,
    actor: User,
    issue_id: int,
    upload: Upload,
    *,
    comment_id: int | None = None,
) -> Attachment:
    """Store the uploaded file and its row (and an activity row), one commit. The bytes are
    stored first; if the row then cannot be written they are removed again, so a refusal
    leaves neither a row nor a file. Raises NotFound, Forbidden or Invalid."""
    if upload.size == 0:
        await asyncio.to_thread(upload.path.unlink, missing_ok=True)
        raise Invalid("The file is empty.", field="file")
    content_type = sniff_content_type(upload.head)
    thumbnail: Path | None = None
    if content_type in IMAGE_TYPES:
        readable, thumbnail = await asyncio.to_thread(_thumbnail, upload.path, storage.staging_dir)
        if not readable:
            content_type = "application/octet-stream"  # a signature, but no image behind it
    key = f"{issue_id}/{uuid.uuid4().hex}"
    stored: list[str] = []
    try:
        await storage.put(key, upload.path, content_type)
        stored.append(key)
        if thumbnail is not None:
            await storage.put(key + THUMBNAIL_SUFFIX, thumbnail, "image/png")
            stored.append(key + THUMBNAIL_SUFFIX)
        return await _record_attachment(
            session,
            actor,
            issue_id,
            comment_id,
            Attachment(
                issue_id=issue_id,
                comment_id=comment_id,
                uploader_id=actor.id,
                file_name=safe_file_name(upload.file_name),
                content_type=content_type,
                size=upload.size,
                storage_key=key,
                sha256=upload.sha256,
                has_thumbnail=thumbnail is not None,
            ),
        )
    except BaseException:
        for stored_key in stored:
            await storage.delete(stored_key)
        await asyncio.to_thread(upload.path.unlink, missing_ok=True)
        if thumbnail is not None:
            await asyncio.to_thread(thumbnail.unlink, missing_ok=True)
        raise


def stored_keys(attachment: Attachment) -> list[str]:
    """The storage keys of an attachment's bytes: the file and its thumbnail."""
    keys = [attachment.storage_key]
    if attachment.has_thumbnail:
        keys.append(attachment.storage_key + THUMBNAIL_SUFFIX)
    return keys


async def list_attachments(
    session: AsyncSession, viewer: User | None, issue_id: int
) -> list[Attachment]:
    """The issue's attachments (its own and its comments'), oldest first, with their uploaders.
    NotFound when the viewer may not read the issue."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue.")
    await readable_project(session, viewer, issue.project_id)
    return list(
        await session.scalars(
            select(Attachment)
            .where(Attachment.issue_id == issue_id)
            .options(selectinload(Attachment.uploader))
            .order_by(Attachment.id)
        )
    )


async def get_attachment(
    session: AsyncSession, viewer: User | None, attachment_id: int
) -> Attachment:
    """One attachment if `viewer` may read its project; NotFound otherwise (a private
    project's files do not exist for outsiders)."""
    attachment = await session.scalar(
        select(Attachment)
        .where(Attachment.id == attachment_id)
        .options(selectinload(Attachment.uploader))
    )
    if attachment is None:
        raise NotFound("No such attachment.")
    issue = await session.get(Issue, attachment.issue_id)
    assert issue is not None
    try:
        await readable_project(session, viewer, issue.project_id)
    except NotFound:
        raise NotFound("No such attachment.") from None
    return attachment


async def _release(
    session: AsyncSession, project: Project, actor: User, issue: Issue, attachment: Attachment
) -> None:
    """Delete the row, record it, and have its files removed once this commits."""
    await session.delete(attachment)
    await record_activity(
        session,
        project,
        actor,
        "attachment.deleted",
        issue=issue,
        payload={"attachment_id": attachment.id, "file_name": attachment.file_name},
    )
    after_commit.note_released_files(session, stored_keys(attachment))


@use_case
async def delete_attachment(session: AsyncSession, actor: User, attachment_id: int) -> None:
    """Remove one's own attachment, like one's own comment: the row now, the stored files
    after the commit. Raises NotFound or Forbidden."""
    attachment = await session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("No such attachment.")
    issue = await session.get(Issue, attachment.issue_id)
    assert issue is not None
    try:
        project = await writable_project(session, actor, issue.project_id)
    except NotFound:
        raise NotFound("No such attachment.") from None
    if attachment.uploader_id != actor.id:
        raise Forbidden("You can only delete files you attached.")
    await _release(session, project, actor, issue, attachment)


async def claim_for_comment(session: AsyncSession, actor: User, comment: Comment) -> None:
    """Inside a comment's use case: the actor's files on this issue that are not on a comment
    yet and that the comment's text shows (pasted into the comment box before it was posted)
    become the comment's, so that deleting the comment removes them."""
    named = {int(match) for match in ATTACHMENT_URL.findall(comment.body)}
    if not named:
        return
    claimed = await session.scalars(
        select(Attachment).where(
            Attachment.id.in_(named),
            Attachment.issue_id == comment.issue_id,
            Attachment.uploader_id == actor.id,
            Attachment.comment_id.is_(None),
        )
    )
    for attachment in claimed:
        attachment.comment_id = comment.id


async def release_comment_attachments(
    session: AsyncSession, project: Project, actor: User, issue: Issue, comment: Comment
) -> None:
    """Inside the deletion of a comment: its files go with it (after the commit)."""
    for attachment in list(
        await session.scalars(select(Attachment).where(Attachment.comment_id == comment.id))
    ):
        await _release(session, project, actor, issue, attachment)
