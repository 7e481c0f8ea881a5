"""Removing stored files once the rows that named them are gone (an after-commit hook)."""

from __future__ import annotations

import asyncio
import logging

from app.storage import AttachmentStorage

log = logging.getLogger(__name__)

ATTEMPTS = 3
FIRST_RETRY_SECONDS = 0.5


class FileRemover:
    """Deletes stored files in the background, told by the after-commit hook. The rows were
    committed away first, so a failure here leaves an unreferenced file (logged), never a row
    that names a missing one."""

    def __init__(self, storage: AttachmentStorage) -> None:
        self.storage = storage
        self._pending: set[asyncio.Task[None]] = set()

    def release(self, keys: list[str]) -> None:
        """Schedule the removal of these keys (cheap, callable from a sync hook)."""
        task = asyncio.get_running_loop().create_task(self._remove(keys))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _remove(self, keys: list[str]) -> None:
        for key in keys:
            for attempt in range(ATTEMPTS):
                try:
                    await self.storage.delete(key)
                    break
                except Exception:  # a store's failure of any kind is retried
                    if attempt == ATTEMPTS - 1:
                        log.exception("could not remove stored file %s (now unreferenced)", key)
                    else:
                        await asyncio.sleep(FIRST_RETRY_SECONDS * 2**attempt)

    async def drain(self) -> None:
        """Wait for the removals scheduled so far (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
