"""Attachments on the local disk: one file per key under a root folder."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from app.storage import CHUNK_BYTES


class LocalStorage:
    """Files under `root`; uploads are staged in `root/.staging` (the same file system, so
    that putting one is an atomic rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / ".staging"

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"Not a storage key: {key!r}")
        return self.root / key

    async def put(self, key: str, source: Path, content_type: str) -> None:
        await asyncio.to_thread(self._put, self._path(key), source)

    @staticmethod
    def _put(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        # The rename itself must survive a crash: sync the folder that holds the new name.
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self._path(key), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)
