"""Attachments: stored with their row and activity, typed by their bytes, named safely, and
their files removed only once the rows that named them are gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid, NotFound
from app.models import Attachment, Issue, Project, Role, User
from app.models.attachment import FILE_NAME_MAX
from app.services import attachments, comments
from app.services.activity import activity_since
from app.services.attachments import safe_file_name, sniff_content_type
from app.services.transaction import use_case
from app.storage import AttachmentStorage
from tests.attachment_fixtures import attachments_app, stored_files
from tests.factories import (
    add_member,
    make_attachment,
    make_issue,
    make_project,
    make_user,
    png_bytes,
    spooled,
)
from tests.mailcatcher import MailCatcher
from tests.services.rows import count

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher, tmp_path: Path) -> AsyncIterator[Quart]:
    async with attachments_app(database_url, mailbox, tmp_path) as made:
        yield made


def storage(app: Quart) -> AttachmentStorage:
    return app.extensions["attachment_storage"]


async def test_an_image_is_stored_with_its_thumbnail_row_and_activity(
    app: Quart, session: AsyncSession
) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    issue = await make_issue(session, alice, project)
    data = png_bytes(800, 600)
    attachment = await make_attachment(session, storage(app), alice, issue, data=data)
    assert attachment.content_type == "image/png"
    assert attachment.size == len(data) and attachment.has_thumbnail
    key = attachment.storage_key
    assert stored_files(app) == [key, key + ".thumb.png"]
    chunks = [chunk async for chunk in storage(app).stream(key)]
    assert b"".join(chunks) == data
    events = await activity_since(session, project.id, 2)
    assert [(e.kind, e.payload) for e in events] == [
        ("attachment.added", {"attachment_id": attachment.id, "file_name": "screenshot.png"})
    ]


@pytest.mark.parametrize(
    ("data", "claimed_name", "sniffed"),
    [
        (PDF, "report.pdf", "application/pdf"),
        (HTML, "innocent.png", "text/plain"),
        (SVG, "logo.svg", "text/plain"),
        (
            b"\x89PNG\r\n\x1a\n" + b"not really an image" * 10,
            "fake.png",
            "application/octet-stream",
        ),
        (b"just some notes\n", "notes.exe", "text/plain"),
        (bytes(range(256)), "blob.bin", "application/octet-stream"),
    ],
)
async def test_the_type_comes_from_the_bytes_never_from_the_name(
    app: Quart, session: AsyncSession, data: bytes, claimed_name: str, sniffed: str
) -> None:
    alice = await make_user(session)
    issue = await make_issue(session, alice, await make_project(session, alice))
    attachment = await make_attachment(
        session, storage(app), alice, issue, data=data, file_name=claimed_name
    )
    assert attachment.content_type == sniffed
    assert not attachment.has_thumbnail
    assert attachment.is_inline == (sniffed == "application/pdf")


def test_sniffing_never_names_markup_a_browser_would_run() -> None:
    assert sniff_content_type(HTML) == "text/plain"
    assert sniff_content_type(SVG) == "text/plain"
    assert sniff_content_type(png_bytes()[:64]) == "image/png"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("C:\\Users\\ann\\shot.png", "shot.png"),
        ("evil\x00\x1b[31mred\r\n.txt", "evil[31mred.txt"),
        ("photo\u202egnp.exe", "photognp.exe"),
        ("..", "file"),
        ("", "file"),
        (".htaccess", "htaccess"),
    ],
)
def test_a_file_name_keeps_its_last_part_without_control_characters(given: str, kept: str) -> None:
    assert safe_file_name(given) == kept


def test_a_long_file_name_is_cut_with_its_extension_kept() -> None:
    name = safe_file_name("a" * 300 + ".png")
    assert len(name) == FILE_NAME_MAX and name.endswith("aaa.png")


async def test_a_strange_name_is_stored_safely(app: Quart, session: AsyncSession) -> None:
    alice = await make_user(session)
    issue = await make_issue(session, alice, await make_project(session, alice))
    attachment = await make_attachment(
        session, storage(app), alice, issue, file_name="../../" + "x" * 300 + "\x07.png"
    )
    assert attachment.file_name == "x" * (FILE_NAME_MAX - 4) + ".png"
    # The storage key is the app's own, never the name.
    assert ".." not in attachment.storage_key and "x" not in attachment.storage_key


async def test_outsiders_and_viewers_cannot_attach_and_nothing_is_left_behind(
    app: Quart, session: AsyncSession
) -> None:
    owner, outsider, viewer = [await make_user(session) for _ in range(3)]
    project = await make_project(session, owner)
    await add_member(session, project, viewer, Role.VIEWER)
    issue_id = (await make_issue(session, owner, project)).id
    with pytest.raises(NotFound):
        upload = spooled(storage(app), png_bytes(), "a.png")
        await attachments.add_attachment(session, storage(app), outsider, issue_id, upload)
    with pytest.raises(Forbidden):
        upload = spooled(storage(app), png_bytes(), "a.png")
        await attachments.add_attachment(session, storage(app), viewer, issue_id, upload)
    assert await count(session, Attachment) == 0
    assert stored_files(app) == []


async def test_a_refusal_after_the_bytes_were_stored_removes_them(
    app: Quart, session: AsyncSession
) -> None:
    ann, bob = await make_user(session), await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    ann_comment = await comments.add_comment(session, ann, issue.id, "mine")
    # The comment check runs in the row's transaction, after the bytes went to storage.
    with pytest.raises(Forbidden):
        await make_attachment(session, storage(app), bob, issue, comment_id=ann_comment.id)
    assert await count(session, Attachment) == 0
    assert stored_files(app) == []


async def test_an_empty_file_is_refused(app: Quart, session: AsyncSession) -> None:
    alice = await make_user(session)
    issue = await make_issue(session, alice, await make_project(session, alice))
    upload = spooled(storage(app), b"", "empty.txt")
    with pytest.raises(Invalid):
        await attachments.add_attachment(session, storage(app), alice, issue.id, upload)
    assert stored_files(app) == []


async def test_private_attachments_are_not_found_by_outsiders(
    app: Quart, session: AsyncSession
) -> None:
    owner, outsider = await make_user(session), await make_user(session)
    issue = await make_issue(session, owner, await make_project(session, owner))
    attachment = await make_attachment(session, storage(app), owner, issue)
    attachment_id, issue_id = attachment.id, issue.id
    with pytest.raises(NotFound):
        await attachments.get_attachment(session, outsider, attachment_id)
    with pytest.raises(NotFound):
        await attachments.list_attachments(session, outsider, issue_id)
    with pytest.raises(NotFound):
        await attachments.delete_attachment(session, outsider, attachment_id)
    assert [a.id for a in await attachments.list_attachments(session, owner, issue_id)] == [
        attachment_id
    ]


async def test_deleting_removes_the_files_after_the_commit_and_records_it(
    app: Quart, session: AsyncSession
) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    issue = await make_issue(session, alice, project)
    attachment = await make_attachment(session, storage(app), alice, issue)
    await attachments.delete_attachment(session, alice, attachment.id)
    await app.extensions["attachment_remover"].drain()
    assert await count(session, Attachment) == 0
    assert stored_files(app) == []
    kinds = [e.kind for e in await activity_since(session, project.id, 0)]
    assert kinds[-1] == "attachment.deleted"


async def test_only_the_uploader_deletes_a_file(app: Quart, session: AsyncSession) -> None:
    ann, bob = await make_user(session), await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    attachment = await make_attachment(session, storage(app), ann, issue)
    key = attachment.storage_key  # a refusal's rollback expires the object
    with pytest.raises(Forbidden):
        await attachments.delete_attachment(session, bob, attachment.id)
    await app.extensions["attachment_remover"].drain()
    assert await count(session, Attachment) == 1
    assert key in stored_files(app)


@use_case
async def _release_then_fail(session: AsyncSession, actor: User, attachment_id: int) -> None:
    attachment = await session.get(Attachment, attachment_id)
    issue = await session.get(Issue, attachment.issue_id)
    project = await session.get(Project, issue.project_id)
    await attachments._release(session, project, actor, issue, attachment)
    await session.flush()
    raise Invalid("the transaction fails after the row was deleted")


async def test_a_deletion_that_rolls_back_keeps_the_file(app: Quart, session: AsyncSession) -> None:
    alice = await make_user(session)
    issue = await make_issue(session, alice, await make_project(session, alice))
    attachment = await make_attachment(session, storage(app), alice, issue)
    key = attachment.storage_key
    with pytest.raises(Invalid):
        await _release_then_fail(session, alice, attachment.id)
    await app.extensions["attachment_remover"].drain()
    assert await count(session, Attachment) == 1
    assert key in stored_files(app)  # the row still names it: still there


async def test_a_pasted_image_belongs_to_the_comment_and_goes_with_it(
    app: Quart, session: AsyncSession
) -> None:
    alice = await make_user(session)
    project = await make_project(session, alice)
    issue = await make_issue(session, alice, project)
    pasted = await make_attachment(session, storage(app), alice, issue)
    kept = await make_attachment(session, storage(app), alice, issue, file_name="other.png")
    comment = await comments.add_comment(
        session, alice, issue.id, f"Look: ![shot](/attachments/{pasted.id})"
    )
    assert (await session.get(Attachment, pasted.id)).comment_id == comment.id
    assert (await session.get(Attachment, kept.id)).comment_id is None
    await comments.delete_comment(session, alice, comment.id)
    await app.extensions["attachment_remover"].drain()
    assert [a.id for a in await attachments.list_attachments(session, alice, issue.id)] == [kept.id]
    assert pasted.storage_key not in stored_files(app)
    assert kept.storage_key in stored_files(app)
    kinds = [e.kind for e in await activity_since(session, project.id, 0)]
    assert kinds[-2:] == ["attachment.deleted", "comment.deleted"]


async def test_a_comment_does_not_claim_someone_elses_file(
    app: Quart, session: AsyncSession
) -> None:
    ann, bob = await make_user(session), await make_user(session)
    project = await make_project(session, ann)
    await add_member(session, project, bob)
    issue = await make_issue(session, ann, project)
    theirs = await make_attachment(session, storage(app), ann, issue)
    await comments.add_comment(session, bob, issue.id, f"![x](/attachments/{theirs.id})")
    assert (await session.get(Attachment, theirs.id)).comment_id is None
