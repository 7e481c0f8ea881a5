"""A person signs in through the OpenID provider in a real browser: the button on the login
page, the provider's own login and consent pages (oidc-provider on Node), and back signed in."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import hypercorn.asyncio
import hypercorn.config
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import select

from app import create_app
from app.models import ExternalIdentity, User
from tests.conftest import app_settings
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.mailcatcher import MailCatcher, free_port
from tests.oidc_provider import OidcProvider, start_provider

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_port() -> int:
    """The app's port, known before the provider registers its callback."""
    return free_port()


@pytest.fixture(scope="module")
def browser_provider(app_port: int) -> Iterator[OidcProvider]:
    provider = start_provider([f"http://127.0.0.1:{app_port}/auth/oidc/callback"])
    yield provider
    provider.stop()


@pytest_asyncio.fixture
async def sso_server(
    database_url: str, mailbox: MailCatcher, browser_provider: OidcProvider, app_port: int
) -> AsyncIterator[LiveServer]:
    url = f"http://127.0.0.1:{app_port}"
    app = create_app(
        "testing",
        **app_settings(database_url, mailbox, BASE_URL=url, **browser_provider.app_settings()),
    )
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{app_port}"]
    config.graceful_timeout = 1
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(hypercorn.asyncio.serve(app, config, shutdown_trigger=stop.wait))
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", app_port), timeout=0.1):
                break
        except OSError:
            await asyncio.sleep(0.05)
    yield LiveServer(app, url)
    stop.set()
    await asyncio.wait_for(server, 10)


async def test_sign_in_through_the_openid_provider_and_land_signed_in(
    page: Page, sso_server: LiveServer, backend: str
) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    await page.goto(sso_server.url + "/auth/login")
    await page.screenshot(path=screenshot_path(f"sso-login-page-{backend}"), full_page=True)
    await page.get_by_role("link", name="Sign in with Test ID").click()

    # The provider's own pages: any login is an account there, with a verified address.
    await page.wait_for_url(f"{sso_server.app.config['OIDC_ISSUER']}/interaction/**")
    await page.get_by_placeholder("Enter any login").fill("grace.hopper@example.com")
    await page.get_by_placeholder("and password").fill("any password")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()

    await page.wait_for_url(sso_server.url + "/")
    await expect(page.locator(".user-chip")).to_contain_text("grace hopper")
    await page.screenshot(path=screenshot_path(f"sso-signed-in-{backend}"), full_page=True)
    assert problems == []

    async with sso_server.app.extensions["database"].sessionmaker() as session:
        user = await session.scalar(select(User))
        link = await session.scalar(select(ExternalIdentity))
    assert user is not None and user.email == "grace.hopper@example.com"
    assert link is not None and link.user_id == user.id


async def test_cancelling_at_the_provider_comes_back_to_a_clear_page(
    page: Page, sso_server: LiveServer
) -> None:
    await page.goto(sso_server.url + "/auth/login")
    await page.get_by_role("link", name="Sign in with Test ID").click()
    await page.get_by_placeholder("Enter any login").fill("ann@example.com")
    await page.get_by_placeholder("and password").fill("any password")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("link", name="[ Cancel ]").click()

    await expect(page.get_by_role("alert")).to_contain_text("You cancelled signing in with Test ID")
    await page.get_by_role("link", name="Back to the login page").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
