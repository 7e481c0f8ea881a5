"""The S3 backend against a real S3-compatible server (moto's, in server mode on a free port):
the storage's own calls, and an upload, download and delete through the API end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from io import BytesIO
from pathlib import Path

import boto3
import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer
from quart import Quart
from quart.datastructures import FileStorage

from app.storage import Spool, storage_from_config
from app.storage.s3 import S3Storage
from tests.api.conftest import bearer
from tests.attachment_fixtures import attachments_app
from tests.factories import make_issue, make_project, make_user, png_bytes
from tests.mailcatcher import MailCatcher
from tests.servers import free_port

BUCKET = "issues-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket; boto3 finds its credentials in the usual variables."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if BUCKET in existing:
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        client.create_bucket(Bucket=BUCKET)
    return BUCKET


def objects(endpoint: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def settings(endpoint: str, tmp_path: Path) -> dict[str, str]:
    return {
        "ATTACHMENT_STORAGE": "s3",
        "ATTACHMENT_S3_BUCKET": BUCKET,
        "ATTACHMENT_S3_ENDPOINT_URL": endpoint,
        "ATTACHMENT_S3_REGION": "us-east-1",
        "ATTACHMENT_STAGING_DIR": str(tmp_path / "staging"),
    }


async def test_put_stream_and_delete_against_the_server(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    storage = storage_from_config(settings(s3_endpoint, tmp_path), str(tmp_path))
    assert isinstance(storage, S3Storage)
    data = bytes(range(256)) * 1000  # several chunks
    spool = Spool(storage.staging_dir, limit=len(data))
    spool.write(data)
    source = spool.finish()
    await storage.put("1/abc", source, "application/octet-stream")
    assert not source.exists()  # uploaded, then the staging file is gone
    assert await storage.exists("1/abc")
    assert b"".join([chunk async for chunk in storage.stream("1/abc")]) == data
    await storage.delete("1/abc")
    assert not await storage.exists("1/abc")
    with pytest.raises(FileNotFoundError):
        await anext(storage.stream("1/abc"))
    await storage.delete("1/abc")  # twice is harmless


@pytest_asyncio.fixture
async def s3_app(
    database_url: str, mailbox: MailCatcher, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> AsyncIterator[Quart]:
    async with attachments_app(
        database_url, mailbox, tmp_path, **settings(s3_endpoint, tmp_path)
    ) as made:
        yield made


async def test_an_api_upload_lives_in_the_bucket_until_deleted(
    s3_app: Quart, s3_endpoint: str
) -> None:
    from app.services import api_tokens

    async with s3_app.extensions["database"].sessionmaker() as session:
        ann = await make_user(session)
        project = await make_project(session, ann, key="WEB")
        await make_issue(session, ann, project)
        token = (await api_tokens.create_token(session, ann, name="t", scope="write")).secret
    client = s3_app.test_client()
    data = png_bytes(600, 400)
    response = await client.post(
        "/api/v1/issues/WEB-1/attachments",
        files={"file": FileStorage(BytesIO(data), filename="shot.png")},
        headers=bearer(token),
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    answer = await response.get_json()
    keys = await asyncio.to_thread(objects, s3_endpoint)
    assert len(keys) == 2 and keys[1].endswith(".thumb.png")  # the file and its thumbnail
    download = await client.get(answer["url"], headers=bearer(token))
    assert await download.get_data() == data
    assert download.headers["Content-Type"] == "image/png"
    deleted = await client.delete(f"/api/v1/attachments/{answer['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    await s3_app.extensions["attachment_remover"].drain()
    assert await asyncio.to_thread(objects, s3_endpoint) == []
