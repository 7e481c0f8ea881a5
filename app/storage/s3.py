"""Attachments in an S3-compatible object store, through boto3 in worker threads.

boto3 rather than aiobotocore (decision 0020): each call here is one request whose latency
is the store's, so a thread per call costs nothing that matters, and boto3's upload_file
streams a file from disk in parts; aiobotocore pins exact botocore versions and brings
aiohttp, which nothing else here uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from app.storage import CHUNK_BYTES


class S3Storage:
    """Objects in `bucket`; credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY) or the machine's role, as boto3 finds them."""

    def __init__(
        self, *, bucket: str, endpoint_url: str | None, region: str | None, staging_dir: Path
    ) -> None:
        if not bucket:
            raise ValueError("ATTACHMENT_STORAGE=s3 needs ATTACHMENT_S3_BUCKET")
        self.bucket = bucket
        self.staging_dir = staging_dir
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region
        )

    async def put(self, key: str, source: Path, content_type: str) -> None:
        try:
            await asyncio.to_thread(
                self._client.upload_file,
                str(source),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
            )
        finally:
            await asyncio.to_thread(source.unlink, missing_ok=True)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from error
            raise
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True
