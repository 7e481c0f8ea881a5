"""Attachments over HTTP: the upload that streams to disk, serving a file safely, deleting.

The API's routes (app/api/attachments.py) use the same upload and serving functions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from quart import (
    Blueprint,
    Quart,
    Request,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    request,
    url_for,
)

from app.blueprints.guards import current_account, logged_in_user, login_required, wants_json
from app.db import get_session
from app.errors import Invalid, NotFound, TooLarge
from app.models import Attachment
from app.models.attachment import THUMBNAIL_SUFFIX
from app.services import attachments, issue_views
from app.storage import AttachmentStorage, Spool, human_size

bp = Blueprint("attachments", __name__)

P = ParamSpec("P")
T = TypeVar("T")

# What a multipart body carries besides the file: its boundaries, headers and small fields.
ENVELOPE_BYTES = 64 * 1024
FILE_FIELD = "file"
# Files served with this policy cannot run anything, even if a browser took them for a page.
FILE_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"
# Except PDFs: Chromium refuses to start its PDF viewer in a sandboxed document (its bug
# 413851) and the viewer's page needs inline styles. A PDF is shown by the browser's own
# viewer, never as a page of this origin (its type is sniffed and nosniff holds it there).
PDF_CONTENT_SECURITY_POLICY = "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'"


def storage() -> AttachmentStorage:
    return current_app.extensions["attachment_storage"]


def is_upload(method: str, path: str) -> bool:
    """Whether a request is an attachment upload, or an export's for an import (decision
    0029) or a project archive to restore (0030): its body may be ATTACHMENT_MAX_BYTES,
    streamed to a spool on disk."""
    return method == "POST" and path.endswith(("/attachments", "/imports", "/restores"))


def upload_request_class(base: type[Request], limit: int) -> type[Request]:
    """The app's request class: an upload's body may reach `limit` plus its envelope (Quart
    fixes the body's limit when it makes the request, from MAX_CONTENT_LENGTH, before any
    route runs), and its file parts stream into a Spool in the storage's staging folder
    instead of memory. Every other request keeps MAX_CONTENT_LENGTH."""

    class UploadAwareRequest(base):  # type: ignore[misc, valid-type]
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
            self.is_upload = is_upload(method, path)
            if self.is_upload:
                kwargs["max_content_length"] = limit + ENVELOPE_BYTES
            super().__init__(method, scheme, path, *args, **kwargs)
            if self.is_upload:
                self.max_content_length = limit + ENVELOPE_BYTES

        def make_form_data_parser(self) -> Any:
            parser = super().make_form_data_parser()
            if self.is_upload:
                parser.stream_factory = _spool_factory
            return parser

    return UploadAwareRequest


def _spool_factory(*_: Any) -> Spool:
    spool = Spool(storage().staging_dir, current_app.config["ATTACHMENT_MAX_BYTES"])
    g.setdefault("upload_spools", []).append(spool)
    return spool


def _discard_spools(_: BaseException | None = None) -> None:
    """After every request: a spool that the upload did not store is removed."""
    for spool in g.pop("upload_spools", []):
        spool.discard()


def refuse_large_body() -> None:
    """Refuse an upload whose Content-Length says it is too large, before reading any of it."""
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    length = request.content_length
    if length is not None and length > limit + ENVELOPE_BYTES:
        raise TooLarge(
            f"A file may be at most {human_size(limit)}; this one is {human_size(length)}.",
            field=FILE_FIELD,
        )


def streamed_upload(
    authorise: Callable[..., Awaitable[object]],
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Before an upload's body is read: its size by Content-Length, then `authorise` (called
    with the route's arguments; it raises to refuse). Marks the view as streaming its body,
    which the API's small-body limit then leaves alone."""

    def decorate(view: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(view)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            refuse_large_body()
            await authorise(**kwargs)
            return await view(*args, **kwargs)

        guarded.streams_its_body = True  # type: ignore[attr-defined]
        return guarded

    return decorate


async def received_upload() -> tuple[attachments.Upload, dict[str, str]]:
    """The uploaded file (spooled to disk while it streamed in) and the form's other fields."""
    files = await request.files
    form = await request.form
    given = files.get(FILE_FIELD)
    if given is None or not isinstance(given.stream, Spool):
        raise Invalid("Choose a file to upload.", field=FILE_FIELD)
    spool: Spool = given.stream
    path = spool.finish()
    upload = attachments.Upload(
        path=path,
        file_name=given.filename or "",
        size=spool.size,
        sha256=spool.sha256,
        head=spool.head,
    )
    return upload, dict(form.items())


def optional_comment_id(fields: dict[str, str]) -> int | None:
    raw = fields.get("comment_id", "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,9}", raw) or int(raw) > 2**31 - 1:
        raise Invalid("comment_id must be a comment's id.", field="comment_id")
    return int(raw)


def attachment_url(attachment: Attachment) -> str:
    return url_for("attachments.file", attachment_id=attachment.id)


def markdown_link(attachment: Attachment) -> str:
    """The Markdown that shows the file: an image for images, a link for anything else."""
    label = re.sub(r"([\\\[\]()*_`<>!])", r"\\\1", attachment.file_name)
    link = f"[{label}]({attachment_url(attachment)})"
    return f"!{link}" if attachment.is_image else link


def upload_answer(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "file_name": attachment.file_name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "url": attachment_url(attachment),
        "markdown": markdown_link(attachment),
    }


def content_disposition(disposition: str, file_name: str) -> str:
    """The header with an ASCII fallback and the exact name in RFC 5987's filename*."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in file_name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


async def serve(attachment: Attachment, *, thumbnail: bool = False) -> Response:
    """The stored bytes with the headers that keep them inert: the sniffed type, nosniff, a
    sandboxing policy, and `attachment` for anything but safe images and PDFs."""
    if thumbnail and not attachment.has_thumbnail:
        raise NotFound("This file has no thumbnail.")
    key = attachment.storage_key + (THUMBNAIL_SUFFIX if thumbnail else "")
    chunks = storage().stream(key)
    try:
        first = await anext(chunks, b"")
    except FileNotFoundError:
        raise NotFound("The file is missing from storage.") from None

    async def body() -> Any:
        yield first
        async for chunk in chunks:
            yield chunk

    content_type = "image/png" if thumbnail else attachment.content_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    inline = thumbnail or attachment.is_inline
    response = Response(body(), content_type=content_type)
    headers = response.headers
    headers["Content-Disposition"] = content_disposition(
        "inline" if inline else "attachment", attachment.file_name
    )
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = (
        PDF_CONTENT_SECURITY_POLICY
        if content_type == "application/pdf"
        else FILE_CONTENT_SECURITY_POLICY
    )
    if not thumbnail:
        headers["Content-Length"] = str(attachment.size)
        headers["ETag"] = f'"{attachment.sha256}"'
    return response


# --- Pages ------------------------------------------------------------------------------------


async def _may_attach_to(key: str) -> None:
    heading = await issue_views.issue_heading(get_session(), logged_in_user(), key)
    await attachments.check_may_attach(get_session(), logged_in_user(), heading.id)


@bp.post("/<issue_key:key>/attachments")
@login_required
@streamed_upload(_may_attach_to)
async def upload(key: str) -> Response:
    """Attach a file to the issue (or, with comment_id, to one's comment): answers JSON for the
    page's script, or goes back to the issue page for a plain form."""
    session = get_session()
    heading = await issue_views.issue_heading(session, logged_in_user(), key)
    issue_id = heading.id
    upload, fields = await received_upload()
    attachment = await attachments.add_attachment(
        session,
        storage(),
        logged_in_user(),
        issue_id,
        upload,
        comment_id=optional_comment_id(fields),
    )
    if wants_json():
        response = jsonify(upload_answer(attachment))
        response.status_code = 201
        return response
    return redirect(url_for("issues.show", key=key, _anchor="attachments"))


@bp.get("/attachments/<int(max=2147483647):attachment_id>")
@login_required
async def file(attachment_id: int) -> Response:
    """The file, to people who may read its project (NotFound to everyone else)."""
    attachment = await attachments.get_attachment(get_session(), current_account(), attachment_id)
    return await serve(attachment)


@bp.get("/attachments/<int(max=2147483647):attachment_id>/thumbnail")
@login_required
async def thumbnail(attachment_id: int) -> Response:
    attachment = await attachments.get_attachment(get_session(), current_account(), attachment_id)
    return await serve(attachment, thumbnail=True)


@bp.post("/attachments/<int(max=2147483647):attachment_id>/delete")
@login_required
async def delete(attachment_id: int) -> Response:
    session = get_session()
    attachment = await attachments.get_attachment(session, logged_in_user(), attachment_id)
    issue = await issue_views.get_issue_by_id(session, logged_in_user(), attachment.issue_id)
    issue_key = issue.key
    await attachments.delete_attachment(session, logged_in_user(), attachment_id)
    if wants_json():
        return Response(status=204)
    return redirect(url_for("issues.show", key=issue_key, _anchor="attachments"))


def init_app(app: Quart) -> None:
    """The request class that lets uploads stream, the spools' clean-up, the routes."""
    app.request_class = upload_request_class(app.request_class, app.config["ATTACHMENT_MAX_BYTES"])
    app.teardown_request(_discard_spools)
    app.register_blueprint(bp)
