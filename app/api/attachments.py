"""Attachments: upload (multipart), list, read, download and delete an issue's files."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint, Response, url_for
from quart_schema import document_response, validate_request
from quart_schema.pydantic import File
from quart_schema.validation import DataSource

from app.api.auth import acting_user, caller
from app.api.projects import ID
from app.api.schemas import UserOut, user_out
from app.blueprints.attachments import (
    markdown_link,
    optional_comment_id,
    received_upload,
    serve,
    storage,
    streamed_upload,
)
from app.db import get_session
from app.models import LARGEST_ID, Attachment
from app.services import attachments, issue_views

bp = Blueprint("attachments", __name__)


class AttachmentUpload(BaseModel):
    """A multipart form: the file, and the id of one's own comment to attach it to."""

    file: File
    comment_id: int | None = Field(default=None, ge=1, le=LARGEST_ID)


class AttachmentOut(BaseModel):
    """A stored file. `content_type` was read from its bytes; `url` downloads it (images and
    PDFs are shown inline), `markdown` shows it in a description or a comment."""

    id: int
    issue_id: int
    comment_id: int | None
    file_name: str
    content_type: str
    size: int
    sha256: str
    uploader: UserOut | None
    created_at: datetime
    url: str
    thumbnail_url: str | None
    markdown: str


class AttachmentList(BaseModel):
    items: list[AttachmentOut]


def attachment_out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id,
        issue_id=attachment.issue_id,
        comment_id=attachment.comment_id,
        file_name=attachment.file_name,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        uploader=user_out(attachment.uploader),
        created_at=attachment.created_at,
        url=url_for("api.attachments.download_attachment", attachment_id=attachment.id),
        thumbnail_url=(
            url_for("attachments.thumbnail", attachment_id=attachment.id)
            if attachment.has_thumbnail
            else None
        ),
        markdown=markdown_link(attachment),
    )


async def _may_attach_to(key: str) -> None:
    user = acting_user()
    issue = await issue_views.issue_heading(get_session(), user, key)
    await attachments.check_may_attach(get_session(), user, issue.id)


@bp.get("/issues/<issue_key:key>/attachments")
@document_response(AttachmentList, 200)
async def list_attachments(key: str) -> AttachmentList:
    """The issue's files and its comments', oldest first."""
    issue = await issue_views.issue_heading(get_session(), caller(), key)
    found = await attachments.list_attachments(get_session(), caller(), issue.id)
    return AttachmentList(items=[attachment_out(a) for a in found])


@bp.post("/issues/<issue_key:key>/attachments")
@streamed_upload(_may_attach_to)
@validate_request(AttachmentUpload, source=DataSource.FORM_MULTIPART)
@document_response(AttachmentOut, 201)
async def upload_attachment(key: str, data: AttachmentUpload) -> tuple[AttachmentOut, int]:
    """Attach a file (members; at most ATTACHMENT_MAX_BYTES, 25 MiB by default, else 413).
    Its type is read from its bytes, whatever the client says."""
    session = get_session()
    issue = await issue_views.issue_heading(session, caller(), key)
    upload, fields = await received_upload()
    attachment = await attachments.add_attachment(
        session,
        storage(),
        acting_user(),
        issue.id,
        upload,
        comment_id=optional_comment_id(fields),
    )
    found = await attachments.get_attachment(session, caller(), attachment.id)
    return attachment_out(found), 201


@bp.get(f"/attachments/<{ID}:attachment_id>")
@document_response(AttachmentOut, 200)
async def show_attachment(attachment_id: int) -> AttachmentOut:
    """One file's description."""
    return attachment_out(await attachments.get_attachment(get_session(), caller(), attachment_id))


@bp.get(f"/attachments/<{ID}:attachment_id>/content")
async def download_attachment(attachment_id: int) -> Response:
    """The file's bytes (Content-Disposition: attachment unless a safe image or a PDF)."""
    attachment = await attachments.get_attachment(get_session(), caller(), attachment_id)
    return await serve(attachment)


@bp.delete(f"/attachments/<{ID}:attachment_id>")
async def delete_attachment(attachment_id: int) -> Response:
    """Delete a file you attached; the stored bytes are removed once the deletion commits."""
    user = acting_user()
    await attachments.get_attachment(get_session(), user, attachment_id)
    await attachments.delete_attachment(get_session(), user, attachment_id)
    return Response(status=204)
