"""Browser tests: Debian's Chromium driven by Playwright against the app served by hypercorn.

They run when /usr/bin/chromium exists, and must run (a missing browser fails) when
ISSUES_REQUIRE_BROWSER=1, as in CI. Playwright never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypercorn.asyncio
import hypercorn.config
import pytest
import pytest_asyncio
from quart import Quart

from app import create_app
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher, free_port

CHROMIUM = os.environ.get("ISSUES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # This machine's network is closed: without these Chromium keeps trying to reach Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        message = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("ISSUES_REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@dataclass
class LiveServer:
    app: Quart
    url: str


@asynccontextmanager
async def serving(app: Quart, port: int) -> AsyncIterator[None]:
    """Serve `app` with hypercorn on 127.0.0.1:`port` until the block ends."""
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(hypercorn.asyncio.serve(app, config, shutdown_trigger=stop.wait))
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
        except OSError:
            await asyncio.sleep(0.05)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)


@pytest_asyncio.fixture
async def live_server(database_url: str, mailbox: MailCatcher) -> AsyncIterator[LiveServer]:
    """The app served by hypercorn on a free loopback port, sending mail in the background."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        "testing",
        **app_settings(
            database_url, mailbox, BASE_URL=url, MAIL_SEND_IN_BACKGROUND=True, MAIL_POLL_SECONDS=1
        ),
    )
    async with serving(app, port):
        yield LiveServer(app, url)


async def wait_for_mail(mailbox: MailCatcher, address: str, count: int = 1) -> list:
    for _ in range(200):
        if len(mailbox.to(address)) >= count:
            return mailbox.to(address)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail reached {address}")


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"
