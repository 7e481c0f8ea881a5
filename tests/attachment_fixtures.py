"""An app whose attachments go to the test's own folder, so that a test can look at them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from quart import Quart

from app import create_app
from app.storage.local import LocalStorage
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher


@asynccontextmanager
async def attachments_app(
    database_url: str, mailbox: MailCatcher, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Quart]:
    """A test app (as tests/conftest.py's `app`) storing attachments under tmp_path/files."""
    settings = app_settings(
        database_url, mailbox, ATTACHMENT_DIR=str(tmp_path / "files"), **overrides
    )
    app = create_app("testing", **settings)
    async with app.test_app() as test_app:
        yield test_app.app


def stored_files(app: Quart) -> list[str]:
    """The keys of every stored file (staging leftovers are listed too, as '.staging/...')."""
    storage: LocalStorage = app.extensions["attachment_storage"]
    if not storage.root.exists():
        return []
    return sorted(
        str(path.relative_to(storage.root)) for path in storage.root.rglob("*") if path.is_file()
    )
