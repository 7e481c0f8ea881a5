"""Two people on one board in two browsers: a move by one shows up for the other, live."""

from __future__ import annotations

import time

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from app.models import Role, User
from app.services import issues, projects
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_tracker import log_in, make_account

pytestmark = pytest.mark.browser


async def shared_board(server: LiveServer) -> None:
    await make_account(server, "ann@example.com", "Ann Example")
    await make_account(server, "bob@example.com", "Bob Builder")
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        bob = await session.scalar(select(User).where(User.email == "bob@example.com"))
        session.expunge_all()
        project = await projects.create_project(session, ann, key="WEB", name="Website")
        await projects.add_member(session, ann, project.id, email=bob.email, role=Role.MEMBER.value)
        for title in ("Checkout fails", "Slow search", "Dark theme"):
            await issues.create_issue(session, ann, project.id, title=title)


async def test_a_move_in_one_browser_appears_in_the_other_within_a_second(
    browser: Browser, live_server: LiveServer, backend: str
) -> None:
    await shared_board(live_server)
    ann = await (await browser.new_context()).new_page()
    bob = await (await browser.new_context()).new_page()
    for page, email in ((ann, "ann@example.com"), (bob, "bob@example.com")):
        await log_in(page, live_server, email)
        await page.goto(live_server.url + "/p/WEB/board")
        await expect(page.locator("#board[data-live='open']")).to_be_visible()

    columns = bob.locator(".board-column")
    await expect(columns.nth(0).locator(".board-card")).to_have_count(3)
    # Ann moves WEB-1 one column right with the keyboard.
    card = ann.locator("#board .board-card", has_text="Checkout fails")
    await card.focus()
    started = time.monotonic()
    await card.press("Shift+ArrowRight")
    await expect(columns.nth(1).locator(".board-card", has_text="Checkout fails")).to_be_visible(
        timeout=1000
    )
    elapsed = time.monotonic() - started
    await expect(columns.nth(1).locator("[data-count]")).to_have_text("1")
    await expect(columns.nth(0).locator("[data-count]")).to_have_text("2")

    # Bob drags WEB-2 into the third column with the mouse; Ann sees it.
    await bob.locator(".board-card", has_text="Slow search").drag_to(
        bob.locator(".column-cards").nth(2)
    )
    await expect(
        ann.locator(".board-column").nth(2).locator(".board-card", has_text="Slow search")
    ).to_be_visible(timeout=2000)
    await bob.screenshot(path=screenshot_path(f"board-{backend}"), full_page=True)
    print(f"live board: the move reached the other browser in {elapsed * 1000:.0f} ms")


async def test_a_page_that_was_offline_catches_up_on_every_change(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    bob = await (await browser.new_context()).new_page()
    await log_in(bob, live_server, "bob@example.com")
    await bob.goto(live_server.url + "/p/WEB/board")
    await expect(bob.locator("#board[data-live='open']")).to_be_visible()
    # The network drops: the stream's requests fail until it comes back.
    await bob.route("**/p/WEB/events*", lambda route: route.abort())
    await bob.evaluate("document.dispatchEvent(new Event('issues:drop'))")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        columns = await projects.workflow(session, 1)
        for number, column in ((1, columns[3]), (2, columns[4])):
            issue = await issues.get_issue(session, ann, 1, number)
            await issues.move_issue(
                session,
                ann,
                issue.id,
                status_id=column.id,
                before_id=None,
                expected_version=issue.version,
            )
    await bob.unroute("**/p/WEB/events*")
    board = bob.locator(".board-column")
    await expect(board.nth(3).locator(".board-card", has_text="Checkout fails")).to_be_visible(
        timeout=15000
    )
    await expect(board.nth(4).locator(".board-card", has_text="Slow search")).to_be_visible()
