"""The attachments API: multipart upload, list, read, download and delete, with its limits,
its leaks closed for private projects, and its place in the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest_asyncio
from quart import Quart
from quart.datastructures import FileStorage
from sqlalchemy.ext.asyncio import AsyncSession

from tests.api.conftest import ApiWorld, build_api_world
from tests.attachment_fixtures import attachments_app, stored_files
from tests.factories import png_bytes
from tests.mailcatcher import MailCatcher

LIMIT = 32 * 1024


@pytest_asyncio.fixture
async def app(database_url: str, mailbox: MailCatcher, tmp_path: Path) -> AsyncIterator[Quart]:
    async with attachments_app(database_url, mailbox, tmp_path, ATTACHMENT_MAX_BYTES=LIMIT) as made:
        yield made


@pytest_asyncio.fixture
async def world(app: Quart, session: AsyncSession) -> ApiWorld:
    return await build_api_world(session)


async def post_file(
    app: Quart, headers: dict[str, str], data: bytes, name: str, key: str = "WEB-1", **form: str
) -> Any:
    return await app.test_client().post(
        f"/api/v1/issues/{key}/attachments",
        form=form,
        files={"file": FileStorage(BytesIO(data), filename=name, content_type="image/png")},
        headers=headers,
    )


async def test_upload_list_show_download_delete(app: Quart, world: ApiWorld) -> None:
    client = app.test_client()
    data = png_bytes()
    response = await post_file(app, world.auth("member"), data, "shot.png")
    assert response.status_code == 201, await response.get_data(as_text=True)
    created = await response.get_json()
    assert created["content_type"] == "image/png" and created["size"] == len(data)
    assert created["uploader"]["handle"] == world.people["member"].handle
    assert created["url"] == f"/api/v1/attachments/{created['id']}/content"
    assert created["thumbnail_url"] == f"/attachments/{created['id']}/thumbnail"
    listed = await (
        await client.get("/api/v1/issues/WEB-1/attachments", headers=world.auth("viewer"))
    ).get_json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    shown = await client.get(f"/api/v1/attachments/{created['id']}", headers=world.auth("viewer"))
    assert (await shown.get_json())["sha256"] == created["sha256"]
    content = await client.get(created["url"], headers=world.auth("viewer"))
    assert await content.get_data() == data
    assert content.headers["X-Content-Type-Options"] == "nosniff"
    assert content.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    refused = await client.delete(
        f"/api/v1/attachments/{created['id']}", headers=world.auth("owner")
    )
    assert refused.status_code == 403  # not the uploader
    deleted = await client.delete(
        f"/api/v1/attachments/{created['id']}", headers=world.auth("member")
    )
    assert deleted.status_code == 204
    await app.extensions["attachment_remover"].drain()
    assert stored_files(app) == []
    gone = await client.get(created["url"], headers=world.auth("member"))
    assert gone.status_code == 404


async def test_private_files_do_not_exist_for_outsiders(app: Quart, world: ApiWorld) -> None:
    created = await (await post_file(app, world.auth("member"), png_bytes(), "a.png")).get_json()
    client = app.test_client()
    for headers in (world.auth("outsider"), {}):
        for url in (
            "/api/v1/issues/WEB-1/attachments",
            f"/api/v1/attachments/{created['id']}",
            f"/api/v1/attachments/{created['id']}/content",
        ):
            response = await client.get(url, headers=headers)
            assert response.status_code == 404, (url, headers)
            assert "a.png" not in await response.get_data(as_text=True)
    refused = await post_file(app, world.auth("outsider"), png_bytes(), "b.png")
    assert refused.status_code == 404
    assert len(stored_files(app)) == 2  # only the member's file and its thumbnail


async def test_anonymous_callers_read_public_files(app: Quart, world: ApiWorld) -> None:
    created = await (
        await post_file(app, world.auth("member"), png_bytes(), "a.png", key="PUB-1")
    ).get_json()
    response = await app.test_client().get(created["url"])
    assert response.status_code == 200


async def test_a_read_only_token_cannot_upload(app: Quart, world: ApiWorld) -> None:
    response = await post_file(app, {"Authorization": f"Bearer {world.read_token}"}, b"x", "a.txt")
    assert response.status_code == 403
    assert stored_files(app) == []


async def test_too_large_is_413_with_a_clear_message(app: Quart, world: ApiWorld) -> None:
    response = await post_file(app, world.auth("member"), b"z" * (LIMIT + 1), "big.bin")
    assert response.status_code == 413
    error = (await response.get_json())["error"]
    assert error["code"] == "too_large" and "at most 32 KiB" in error["message"]
    assert stored_files(app) == []


async def test_a_request_without_a_file_is_400(app: Quart, world: ApiWorld) -> None:
    response = await app.test_client().post(
        "/api/v1/issues/WEB-1/attachments", form={"x": "1"}, headers=world.auth("member")
    )
    assert response.status_code == 400


async def test_the_openapi_document_describes_the_endpoints(app: Quart) -> None:
    spec = await (await app.test_client().get("/api/v1/openapi.json")).get_json()
    paths = spec["paths"]
    upload = paths["/api/v1/issues/{key}/attachments"]["post"]
    body = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body.get("$ref") or body.get("properties")
    assert "201" in upload["responses"] and "413" in upload["responses"]
    assert "get" in paths["/api/v1/issues/{key}/attachments"]
    assert set(paths["/api/v1/attachments/{attachment_id}"]) == {"get", "delete"}
    assert "get" in paths["/api/v1/attachments/{attachment_id}/content"]
