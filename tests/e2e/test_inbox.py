"""The inbox in two browsers: Bob assigns Ann an issue, her header badge counts it without a
reload; opening it from her inbox clears the badge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from sqlalchemy import select

from app.models import Project, User
from app.services import issues
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_board import shared_board
from tests.e2e.test_tracker import log_in, watch_for_problems
from tests.waiting import eventually

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture(autouse=True)
async def close_the_browsers(browser: Browser) -> AsyncIterator[None]:
    """Each test's pages close with it (an open page keeps calling its stopped server)."""
    yield
    for context in list(browser.contexts):
        await context.close()


async def test_the_badge_counts_a_new_assignment_live_and_clears_when_opened(
    browser: Browser, live_server: LiveServer, backend: str
) -> None:
    await shared_board(live_server)
    ann = await (await browser.new_context()).new_page()
    bob = await (await browser.new_context()).new_page()
    problems = watch_for_problems(ann)
    await log_in(ann, live_server, "ann@example.com")
    await log_in(bob, live_server, "bob@example.com")
    await ann.goto(live_server.url + "/p/WEB/board")
    badge = ann.locator("[data-inbox-badge]")
    await expect(badge).to_have_attribute("aria-label", "Inbox, no unread")
    await expect(badge.locator("[data-inbox-count]")).to_be_hidden()
    # The count stream is open before Bob acts (the page's own request for it has an answer).
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann_id = await session.scalar(select(User.id).where(User.email == "ann@example.com"))
    broker = live_server.app.extensions["inbox_broker"]
    assert await eventually(lambda: ann_id in broker.streams)

    await ann.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
    await bob.goto(live_server.url + "/p/WEB/issues/new")
    await bob.get_by_label("Title").fill("Renew the certificate")
    await bob.get_by_label("Assignee").select_option(label="Ann Example")
    await bob.get_by_role("button", name="Create the issue").click()
    await expect(bob.locator("h1", has_text="Renew the certificate")).to_be_visible()

    # No reload: the badge changes in place.
    await expect(badge).to_have_attribute("aria-label", "Inbox, 1 unread", timeout=5000)
    await expect(badge.locator("[data-inbox-count]")).to_have_text("1")
    assert await ann.evaluate("window.stillTheSamePage") is True
    await ann.screenshot(path=screenshot_path("inbox-badge"))

    await badge.click()
    entry = ann.locator(".inbox-entry", has_text="Renew the certificate")
    await expect(entry).to_contain_text("assigned to you")
    await entry.get_by_role("link", name="Renew the certificate").click()
    await expect(ann.locator("h1", has_text="Renew the certificate")).to_be_visible()
    await expect(ann.locator("[data-inbox-badge]")).to_have_attribute(
        "aria-label", "Inbox, no unread"
    )
    await expect(ann.locator("[data-inbox-count]")).to_be_hidden()
    assert problems == []


async def test_done_and_mark_read_work_in_place_and_the_badge_follows(
    browser: Browser, live_server: LiveServer, backend: str
) -> None:
    await shared_board(live_server)
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        bob = await session.scalar(select(User).where(User.email == "bob@example.com"))
        project_id = await session.scalar(select(Project.id).where(Project.key == "WEB"))
        session.expunge_all()
        for title in ("Rotate the keys", "Update the docs"):
            await issues.create_issue(session, bob, project_id, title=title, assignee_id=ann.id)
    page = await (await browser.new_context()).new_page()
    problems = watch_for_problems(page)
    await log_in(page, live_server, "ann@example.com")
    await page.goto(live_server.url + "/inbox/")
    badge = page.locator("[data-inbox-badge]")
    await expect(badge).to_have_attribute("aria-label", "Inbox, 2 unread")
    await page.evaluate("window.stillTheSamePage = true")

    keys = page.locator(".inbox-entry", has_text="Rotate the keys")
    await keys.get_by_role("button", name="Done").click()
    await expect(keys).to_have_count(0)  # gone in place
    await expect(badge).to_have_attribute("aria-label", "Inbox, 1 unread")
    docs = page.locator(".inbox-entry", has_text="Update the docs")
    await docs.get_by_role("button", name="Mark read").click()
    await expect(docs).to_have_count(0)  # read: off the Unread tab
    await expect(badge).to_have_attribute("aria-label", "Inbox, no unread")
    assert await page.evaluate("window.stillTheSamePage") is True  # htmx, no reload

    await page.get_by_role("link", name="Done", exact=True).click()
    await expect(page.locator(".inbox-entry", has_text="Rotate the keys")).to_be_visible()
    await page.get_by_role("link", name="All", exact=True).click()
    await expect(page.locator(".inbox-entry", has_text="Update the docs")).to_be_visible()
    await expect(page.locator(".inbox-entry", has_text="Rotate the keys")).to_have_count(0)
    assert problems == []
