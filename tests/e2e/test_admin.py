"""An admin deactivates a person in one browser while that person has a board open in
another: their live stream ends at once and their next request finds them logged out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from sqlalchemy import select, update

from app.models import User
from app.services import projects
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_board import open_page
from tests.e2e.test_tracker import log_in, make_account

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture(autouse=True)
async def close_the_browsers(browser: Browser) -> AsyncIterator[None]:
    yield
    for context in list(browser.contexts):
        await context.close()


async def test_an_admin_deactivates_a_person_whose_open_page_is_then_refused(
    browser: Browser, live_server: LiveServer
) -> None:
    await make_account(live_server, "root@example.com", "Root Admin")
    await make_account(live_server, "bob@example.com", "Bob Builder")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        await session.execute(
            update(User).where(User.email == "root@example.com").values(is_admin=True)
        )
        await session.commit()
        bob = await session.scalar(select(User).where(User.email == "bob@example.com"))
        session.expunge_all()
        await projects.create_project(session, bob, key="WEB", name="Website")
    bob_page, _ = await open_page(browser, live_server, "bob@example.com", "/p/WEB/board")

    admin_page = await (await browser.new_context()).new_page()
    await log_in(admin_page, live_server, "root@example.com")
    await admin_page.get_by_role("link", name="Admin", exact=True).click()
    await expect(admin_page.get_by_role("heading", name="Admin console")).to_be_visible()
    await (
        admin_page.get_by_role("navigation", name="Admin console")
        .get_by_role("link", name="People")
        .click()
    )
    await admin_page.get_by_label("Address, name or handle").fill("bob")
    await admin_page.get_by_role("button", name="Search").click()
    await admin_page.get_by_role("link", name="Bob Builder").click()
    await admin_page.get_by_role("button", name="Deactivate").click()
    await expect(admin_page.locator(".flash")).to_contain_text("Deactivated")
    await expect(admin_page.locator("[data-state]")).to_contain_text("Deactivated since")
    await admin_page.screenshot(path=screenshot_path("admin-person-deactivated"), full_page=True)

    # The open board's stream ends at once (the periodic check is 30 s away)...
    await expect(bob_page.locator("#live[data-state='closed']")).to_be_attached(timeout=3000)
    # ...and the next request is a logged-out one.
    await bob_page.reload()
    await expect(bob_page).to_have_url(f"{live_server.url}/auth/login?next=/p/WEB/board")
    await bob_page.get_by_label("Email address").fill("bob@example.com")
    await bob_page.get_by_label("Password").fill("correct horse battery")
    await bob_page.get_by_role("button", name="Log in").click()
    await expect(bob_page.get_by_text("This account is deactivated. Ask an admin.")).to_be_visible()
