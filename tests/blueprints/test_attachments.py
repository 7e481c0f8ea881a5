"""Attachments on the pages: the upload (size refused before the body is read, CSRF), the
file served inert, the section on the issue page with names escaped, deleting, and images
pasted into Markdown rendered from the tracker's own URLs only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from quart import Quart
from quart.datastructures import FileStorage
from quart.typing import TestClientProtocol as Client

from app.models import Attachment
from app.services import attachments
from tests.attachment_fixtures import attachments_app, stored_files
from tests.factories import (
    add_member,
    make_issue,
    make_project,
    make_user,
    png_bytes,
)
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, csrf_token, log_in, text_of

LIMIT = 64 * 1024


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher, tmp_path: Path) -> AsyncIterator[Quart]:
    async with attachments_app(
        database_url, mailbox, tmp_path, ATTACHMENT_MAX_BYTES=LIMIT, RATE_LIMIT_ENABLED=False
    ) as made:
        yield made


@pytest_asyncio.fixture
async def world(app: Quart) -> dict[str, Any]:
    async with app.extensions["database"].sessionmaker() as session:
        hashed = await app.extensions["account_settings"].hasher.hash(PASSWORD)
        ann = await make_user(session, email="ann@example.com", password_hash=hashed)
        bob = await make_user(session, email="bob@example.com", password_hash=hashed)
        await make_user(session, email="eve@example.com", password_hash=hashed)
        project = await make_project(session, ann, key="WEB")
        await add_member(session, project, bob)
        issue = await make_issue(session, ann, project, title="Broken login")
        return {"issue": issue, "ann": ann, "bob": bob}


async def logged_in(app: Quart, email: str) -> Client:
    client = app.test_client()
    assert (await log_in(client, email)).status_code == 302
    return client


async def upload(
    client: Client,
    data: bytes,
    name: str,
    *,
    content_type: str = "image/png",
    **form: str,
) -> Any:
    return await client.post(
        "/WEB-1/attachments",
        form=form,
        files={"file": FileStorage(BytesIO(data), filename=name, content_type=content_type)},
        headers={"X-CSRF-Token": await csrf_token(client), "Accept": "application/json"},
    )


async def test_an_upload_answers_its_markdown_and_the_page_shows_it(
    app: Quart, world: dict
) -> None:
    client = await logged_in(app, "ann@example.com")
    response = await upload(client, png_bytes(), "shot.png")
    assert response.status_code == 201, await text_of(response)
    answer = await response.get_json()
    assert answer["markdown"] == f"![shot.png](/attachments/{answer['id']})"
    assert answer["content_type"] == "image/png"
    page = await text_of(await client.get("/WEB-1"))
    assert f'src="/attachments/{answer["id"]}/thumbnail"' in page
    assert "attached shot.png" in page  # the timeline records it
    assert 'data-upload-url="/WEB-1/attachments"' in page


async def test_a_plain_form_upload_works_without_the_script(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    response = await client.post(
        "/WEB-1/attachments",
        form={"csrf_token": await csrf_token(client)},
        files={"file": FileStorage(BytesIO(b"some notes\n"), filename="notes.txt")},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/WEB-1#attachments")
    assert "notes.txt" in await text_of(await client.get("/WEB-1"))


async def test_an_upload_without_the_csrf_token_is_refused(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    response = await client.post(
        "/WEB-1/attachments",
        files={"file": FileStorage(BytesIO(png_bytes()), filename="a.png")},
    )
    assert response.status_code == 403
    assert [f for f in stored_files(app) if not f.startswith(".staging")] == []


async def test_a_too_large_body_is_refused_by_its_length_before_it_is_read(
    app: Quart, world: dict
) -> None:
    client = await logged_in(app, "ann@example.com")
    token = await csrf_token(client)
    headers = {
        "X-CSRF-Token": token,
        "Accept": "application/json",
        "Content-Type": "multipart/form-data; boundary=xyz",
        "Content-Length": str(10 * LIMIT),
    }
    async with client.request("/WEB-1/attachments", method="POST", headers=headers) as connection:
        # A first piece of the body only: the answer comes without the rest being sent.
        await connection.send(b"--xyz\r\n")
        body = await asyncio.wait_for(connection.receive(), 5)
        status = connection.status_code
        await connection.disconnect()
    assert status == 413
    assert b"at most 64 KiB" in body
    assert stored_files(app) == []


async def test_a_too_large_file_is_refused_while_it_streams(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    # Within the length allowed for the envelope, but the file itself is over the limit.
    response = await upload(client, b"x" * (LIMIT + 10), "big.txt", content_type="text/plain")
    assert response.status_code == 413
    assert "at most 64 KiB" in (await response.get_json())["error"]["message"]
    assert stored_files(app) == []  # the spool is gone too
    async with app.extensions["database"].sessionmaker() as session:
        assert await attachments.list_attachments(session, world["ann"], world["issue"].id) == []


async def test_a_file_at_the_limit_is_accepted(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    response = await upload(client, b"y" * LIMIT, "exact.txt", content_type="text/plain")
    assert response.status_code == 201


async def served(client: Client, data: bytes, name: str) -> Any:
    answer = await (await upload(client, data, name)).get_json()
    return await client.get(answer["url"])


async def test_a_safe_image_is_served_inline_and_inert(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    data = png_bytes()
    response = await served(client, data, "shot.png")
    assert response.status_code == 200
    assert await response.get_data() == data
    headers = response.headers
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


async def test_a_pdf_opens_in_the_browser_s_viewer_without_running_anything(
    app: Quart, world: dict
) -> None:
    client = await logged_in(app, "ann@example.com")
    response = await served(client, b"%PDF-1.4\n%%EOF\n", "spec.pdf")
    headers = response.headers
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("inline;")
    assert headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><script>alert(document.domain)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    ],
    ids=["html", "svg"],
)
async def test_markup_is_never_served_as_a_page(app: Quart, world: dict, data: bytes) -> None:
    client = await logged_in(app, "ann@example.com")
    # The client claims an image; the bytes say otherwise.
    response = await served(client, data, "cute.png")
    headers = response.headers
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_a_tricky_name_is_stored_safely_and_shown_escaped(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    name = "../../<img src=x onerror=alert(1)>" + "é" * 300 + ".txt"
    response = await served(client, b"hello\n", name)
    disposition = response.headers["Content-Disposition"]
    kept = "<img src=x onerror=alert(1)>" + "é" * 223 + ".txt"  # 255 characters
    fallback = "<img src=x onerror=alert(1)>" + "_" * 223 + ".txt"
    assert disposition == (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(kept, safe='')}"
    )
    page = await text_of(await client.get("/WEB-1"))
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


async def test_only_readers_get_the_file(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    answer = await (await upload(client, png_bytes(), "shot.png")).get_json()
    eve = await logged_in(app, "eve@example.com")
    for url in (answer["url"], answer["url"] + "/thumbnail"):
        assert (await eve.get(url)).status_code == 404
        anonymous = await app.test_client().get(url)
        assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
        assert (await client.get(url)).status_code == 200
    eve_upload = await upload(eve, png_bytes(), "mine.png")
    assert eve_upload.status_code == 404


async def test_a_member_deletes_their_file_and_it_leaves_storage(app: Quart, world: dict) -> None:
    bob = await logged_in(app, "bob@example.com")
    answer = await (await upload(bob, png_bytes(), "shot.png")).get_json()
    ann = await logged_in(app, "ann@example.com")
    refused = await ann.post(
        f"/attachments/{answer['id']}/delete", form={"csrf_token": await csrf_token(ann)}
    )
    assert refused.status_code == 403
    response = await bob.post(
        f"/attachments/{answer['id']}/delete", form={"csrf_token": await csrf_token(bob)}
    )
    assert response.status_code == 302
    await app.extensions["attachment_remover"].drain()
    assert stored_files(app) == []
    assert (await bob.get(answer["url"])).status_code == 404
    assert "deleted the file shot.png" in await text_of(await bob.get("/WEB-1"))


async def test_a_pasted_image_renders_in_the_comment(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    answer = await (await upload(client, png_bytes(), "shot.png")).get_json()
    body = f"See {answer['markdown']} and ![remote](https://tracker.example/pixel.png)"
    response = await client.post(
        "/WEB-1/comments", form={"csrf_token": await csrf_token(client), "body": body}
    )
    assert response.status_code == 302
    page = await text_of(await client.get("/WEB-1"))
    assert f'<img src="/attachments/{answer["id"]}" alt="shot.png">' in page
    assert 'src="https://tracker.example' not in page  # other sites' images stay links
    async with app.extensions["database"].sessionmaker() as session:
        attachment = await session.get(Attachment, answer["id"])
        assert attachment is not None and attachment.comment_id is not None


async def test_a_missing_stored_file_answers_404_not_500(app: Quart, world: dict) -> None:
    client = await logged_in(app, "ann@example.com")
    answer = await (await upload(client, b"notes\n", "notes.txt")).get_json()
    storage = app.extensions["attachment_storage"]
    async with app.extensions["database"].sessionmaker() as session:
        key = (await session.get(Attachment, answer["id"])).storage_key
    await storage.delete(key)
    assert (await client.get(answer["url"])).status_code == 404


async def test_markdown_link_escapes_the_name() -> None:
    from app.blueprints.attachments import markdown_link

    attachment = Attachment(id=7, file_name="a](javascript:x)[b.png", content_type="image/png")
    with_app = Quart(__name__)
    with_app.add_url_rule("/attachments/<int:attachment_id>", "attachments.file")
    async with with_app.test_request_context("/"):
        assert markdown_link(attachment) == r"![a\]\(javascript:x\)\[b.png](/attachments/7)"
