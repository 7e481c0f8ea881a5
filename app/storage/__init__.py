"""Where attachments' bytes live: a small interface, a disk backend and an S3 backend.

Uploads are spooled to a temporary file as they arrive (`Spool`: counted against the size
limit, hashed, the first bytes kept for sniffing), then handed to `put`, which renames it
into place (disk) or uploads it (S3). Nothing holds a whole file in memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from app.errors import TooLarge

CHUNK_BYTES = 64 * 1024
# Enough of a file's start for any signature the sniffer knows.
HEAD_BYTES = 8 * 1024


class AttachmentStorage(Protocol):
    """The bytes of attachments, by storage key. Keys are made by the app (never from a file
    name): letters, digits, '/', '.' and '-' only."""

    staging_dir: Path

    async def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the finished file at `source` under `key`; `source` is gone afterwards."""

    def stream(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, a chunk at a time. Raises FileNotFoundError for an unknown key."""

    async def delete(self, key: str) -> None:
        """Remove the bytes; an unknown key is not an error (deleting twice is harmless)."""

    async def exists(self, key: str) -> bool: ...


def human_size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024  # type: ignore[assignment]
    raise AssertionError


class Spool:
    """A temporary file in the staging folder that an upload is written to as it streams in:
    refuses with TooLarge past `limit` bytes, hashes with SHA-256 and keeps the first
    HEAD_BYTES. Quart's form parser writes file parts into it (a stream factory)."""

    def __init__(self, staging_dir: Path, limit: int) -> None:
        staging_dir.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=staging_dir, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(descriptor, "w+b")
        self.limit = limit
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            self.discard()
            raise TooLarge(f"A file may be at most {human_size(self.limit)}.", field="file")
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self._hash.update(data)
        return self._file.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def finish(self) -> Path:
        """Flush and fsync the file and close it: it is ready for `put`."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self.path

    def discard(self) -> None:
        """Close and remove the file (a refused or failed upload leaves nothing behind)."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)

    # What Quart's parser and werkzeug's FileStorage call on a stream.
    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence) if not self._file.closed else 0

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed


def storage_from_config(config: Mapping[str, Any], instance_path: str) -> AttachmentStorage:
    """The backend ATTACHMENT_STORAGE names: "local" (files under ATTACHMENT_DIR, by default
    instance/attachments) or "s3" (ATTACHMENT_S3_BUCKET at ATTACHMENT_S3_ENDPOINT_URL)."""
    kind = config["ATTACHMENT_STORAGE"]
    if kind == "s3":
        from app.storage.s3 import S3Storage

        return S3Storage(
            bucket=config["ATTACHMENT_S3_BUCKET"],
            endpoint_url=config["ATTACHMENT_S3_ENDPOINT_URL"] or None,
            region=config["ATTACHMENT_S3_REGION"] or None,
            staging_dir=Path(config["ATTACHMENT_STAGING_DIR"] or tempfile.gettempdir())
            / "issues-uploads",
        )
    from app.storage.local import LocalStorage

    root = Path(config["ATTACHMENT_DIR"] or Path(instance_path) / "attachments")
    return LocalStorage(root)
