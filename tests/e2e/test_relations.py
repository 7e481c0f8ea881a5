"""Sub-issues live: two people on a parent's page; one adds a sub-issue from it and closes
another, and the other sees the progress change without reloading."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from app.services import issue_views, issues, projects
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_board import open_page, shared_board

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture(autouse=True)
async def close_the_browsers(browser: Browser) -> AsyncIterator[None]:
    yield
    for context in list(browser.contexts):
        await context.close()


async def test_a_sub_issue_added_in_one_browser_moves_the_progress_in_the_other(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/WEB-1")
    bob, _ = await open_page(browser, live_server, "bob@example.com", "/WEB-1")
    await expect(ann.locator("#sub-issues")).to_contain_text("No sub-issues.")

    # Bob makes a sub-issue from the parent's page, in one step.
    await bob.get_by_label("Title of the new sub-issue").fill("Write the release notes")
    await bob.get_by_role("button", name="Add a sub-issue").click()
    await expect(bob.locator(".sub-issue-progress")).to_have_text("0 of 1 done")
    # Ann's page, untouched, shows it live.
    await expect(ann.locator(".sub-issue-list")).to_contain_text(
        "Write the release notes", timeout=3000
    )
    await expect(ann.locator(".sub-issue-progress")).to_have_text("0 of 1 done")
    board, _ = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    parent_card = board.locator("#board .board-card", has_text="Checkout fails")
    await expect(parent_card.locator(".sub-issue-progress")).to_have_text("0/1")

    # Someone closes the sub-issue elsewhere: both parents' pages move to 1 of 1.
    async with live_server.app.extensions["database"].sessionmaker() as session:
        bob_user = await _user(session, "bob@example.com")
        child = await issue_views.issue_heading(session, bob_user, "WEB-4")
        done = (await projects.workflow(session, child.project.id))[-1]
        await issues.update_issue(
            session,
            bob_user,
            child.id,
            issues.IssueChanges(status_id=done.id),
            expected_version=None,
        )
    await expect(ann.locator(".sub-issue-progress")).to_have_text("1 of 1 done", timeout=3000)
    await expect(bob.locator(".sub-issue-progress")).to_have_text("1 of 1 done", timeout=3000)
    # The parent's card on an open board shows the new progress too (its marks, swapped live).
    await expect(parent_card.locator(".sub-issue-progress")).to_have_text("1/1", timeout=3000)
    await ann.screenshot(path=screenshot_path("sub-issues-live"), full_page=True)
    assert problems == []


async def _user(session, email: str):
    from sqlalchemy import select

    from app.models import User

    user = await session.scalar(select(User).where(User.email == email))
    session.expunge(user)
    return user
