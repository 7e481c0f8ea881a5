"""Two people on one board in two browsers: a move by one shows up for the other, live."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect
from sqlalchemy import select

from app.models import Role, User
from app.services import issue_views, issues, projects
from tests.e2e.conftest import LiveServer, screenshot_path
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems

pytestmark = pytest.mark.browser

EVENTS = "**/p/WEB/events*"


@pytest_asyncio.fixture(autouse=True)
async def close_the_browsers(browser: Browser) -> AsyncIterator[None]:
    """Each test's pages close with it: left open, a page whose server has stopped calls it
    again every few seconds (its `retry:`) for the rest of the run, and slows the later tests."""
    yield
    for context in list(browser.contexts):
        await context.close()


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


async def cut_the_stream(page: Page, server: LiveServer, email: str) -> asyncio.Queue[float]:
    """The network drops under an open page: the server ends the person's streams and the
    browser's attempts to come back fail until `page.unroute(EVENTS)`. Returns when the page
    has noticed, with a queue that gets the time of each refused attempt. (Chromium's offline
    mode would leave an open stream delivering: ../shared/STACK.md, pitfall 26.)"""
    attempts: asyncio.Queue[float] = asyncio.Queue()

    async def refuse(route: Route) -> None:
        attempts.put_nowait(time.monotonic())
        await route.abort()

    await page.route(EVENTS, refuse)
    async with server.app.extensions["database"].sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.email == email))
    broker = server.app.extensions["broker"]
    # The page is "open" at the response's headers, a moment before its stream joins the broker.
    for _ in range(100):
        streams = [s for f in broker.feeds.values() for s in f.subscribers if s.user_id == user_id]
        if streams:
            break
        await asyncio.sleep(0.05)
    assert streams, f"no stream of {email} reached the broker"
    for stream in streams:
        stream.close()  # as the periodic access check ends a stream
    await expect(page.locator("#live[data-state='closed']")).to_be_attached()
    return attempts


async def test_a_move_in_one_browser_appears_in_the_other_within_a_second(
    browser: Browser, live_server: LiveServer, backend: str
) -> None:
    await shared_board(live_server)
    ann = await (await browser.new_context()).new_page()
    bob = await (await browser.new_context()).new_page()
    for page, email in ((ann, "ann@example.com"), (bob, "bob@example.com")):
        await log_in(page, live_server, email)
        await page.goto(live_server.url + "/p/WEB/board")
        await expect(page.locator("#live[data-state='open']")).to_be_attached()

    columns = bob.locator(".board-column")
    await expect(columns.nth(0).locator(".board-card")).to_have_count(3)
    # Ann moves WEB-1 one column right with the keyboard.
    card = ann.locator("#board .board-card", has_text="Checkout fails")
    await card.focus()
    started = time.monotonic()
    await card.press("Shift+ArrowRight")
    await expect(columns.nth(1).locator(".board-card", has_text="Checkout fails")).to_be_visible(
        timeout=5000
    )
    elapsed = time.monotonic() - started
    await expect(columns.nth(1).locator("[data-count-for]")).to_have_text("1")
    await expect(columns.nth(0).locator("[data-count-for]")).to_have_text("2")

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
    await expect(bob.locator("#live[data-state='open']")).to_be_attached()
    await cut_the_stream(bob, live_server, "bob@example.com")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        columns = await projects.workflow(session, 1)
        for number, column in ((1, columns[3]), (2, columns[4])):
            issue = await issue_views.get_issue(session, ann, 1, number)
            await issues.move_issue(
                session,
                ann,
                issue.id,
                status_id=column.id,
                before_id=None,
                expected_version=issue.version,
            )
    await bob.unroute(EVENTS)
    board = bob.locator(".board-column")
    await expect(board.nth(3).locator(".board-card", has_text="Checkout fails")).to_be_visible(
        timeout=15000
    )
    await expect(board.nth(4).locator(".board-card", has_text="Slow search")).to_be_visible()


async def open_page(browser: Browser, server: LiveServer, email: str, path: str):
    page = await (await browser.new_context()).new_page()
    problems = watch_for_problems(page)
    await log_in(page, server, email)
    await page.goto(server.url + path)
    await expect(page.locator("#live[data-state='open']")).to_be_attached()
    return page, problems


async def test_a_dropped_page_tries_again_as_often_as_the_server_s_retry_hint_says(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    # Every new stream sends the hint it finds here; a short one keeps the test short (the
    # browser's own default, and this app's, is three seconds).
    live_server.app.config["SSE_RETRY_MILLISECONDS"] = 200
    bob, _ = await open_page(browser, live_server, "bob@example.com", "/p/WEB/board")
    attempts = await cut_the_stream(bob, live_server, "bob@example.com")
    # Four attempts 0.2 s apart; backing off on its own from half a second, a page needs 7 s.
    times: list[float] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2.5):
            while len(times) < 4:
                times.append(await attempts.get())
    gaps = [round(later - earlier, 2) for earlier, later in itertools.pairwise(times)]
    assert len(times) == 4, f"{len(times)} attempts in 2.5 s, {gaps} s apart"
    assert min(gaps) >= 0.1, f"not waiting for the hint: {gaps} s apart"
    await bob.unroute(EVENTS)
    await expect(bob.locator("#live[data-state='open']")).to_be_attached(timeout=5000)
    await expect(bob.locator("#live-status")).to_be_hidden()


async def test_the_board_shows_who_else_is_looking(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    presence = ann.locator("#presence")
    await expect(presence).to_be_hidden()  # nobody else yet, and never herself
    bob, _ = await open_page(browser, live_server, "bob@example.com", "/p/WEB/board")
    await expect(presence.locator("[data-viewer]")).to_have_attribute("title", "Bob Builder")
    await expect(bob.locator("#presence [data-viewer]")).to_have_attribute("title", "Ann Example")
    # Bob on an issue page is not on the board.
    await bob.goto(live_server.url + "/WEB-1")
    await expect(bob.locator("#live[data-state='open']")).to_be_attached()
    await expect(presence).to_be_hidden()
    await bob.context.close()
    assert problems == []


async def test_a_card_s_menu_moves_it_with_the_keyboard_alone(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    bob, _ = await open_page(browser, live_server, "bob@example.com", "/p/WEB/board")
    menu_button = ann.get_by_role("button", name="Move WEB-2")
    await menu_button.focus()
    await ann.keyboard.press("Enter")
    menu = ann.get_by_role("menu", name="Move WEB-2")
    await expect(menu).to_be_visible()
    await expect(menu.get_by_role("menuitem", name="Move up")).to_be_focused()
    for _ in range(2):  # past "Move down", to the first other column
        await ann.keyboard.press("ArrowDown")
    await expect(menu.get_by_role("menuitem").nth(2)).to_be_focused()
    target = await menu.get_by_role("menuitem").nth(2).text_content()
    await ann.keyboard.press("Enter")
    column_name = target.removeprefix("Move to ")
    bob_column = bob.locator(
        ".board-column", has=bob.locator(f"[data-column-name='{column_name}']")
    )
    await expect(bob_column.locator(".board-card", has_text="Slow search")).to_be_visible(
        timeout=5000
    )
    # Escape closes a menu and gives the focus back to its button.
    await menu_button.focus()
    await ann.keyboard.press("Enter")
    await ann.keyboard.press("Escape")
    await expect(ann.get_by_role("menu")).to_have_count(0)
    await expect(menu_button).to_be_focused()
    assert problems == []


async def test_a_stale_move_is_refused_and_the_card_goes_back(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    live_server.app.config["SSE_RETRY_MILLISECONDS"] = 200  # her page keeps trying, quickly
    ann, _ = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    # Someone edits WEB-1 while Ann's stream is cut, so her board still shows the old version.
    attempts = await cut_the_stream(ann, live_server, "ann@example.com")
    async with live_server.app.extensions["database"].sessionmaker() as session:
        bob = await session.scalar(select(User).where(User.email == "bob@example.com"))
        session.expunge(bob)
        issue = await issue_views.get_issue(session, bob, 1, 1)
        columns = await projects.workflow(session, 1)
        await issues.move_issue(
            session, bob, issue.id, status_id=columns[2].id, before_id=None, expected_version=1
        )
    card = ann.locator("#board .board-card", has_text="Checkout fails")
    await card.focus()
    await card.press("Shift+ArrowRight")
    await expect(ann.locator("#live-notice")).to_contain_text("changed", ignore_case=True)
    # The stream keeps failing meanwhile: its "Reconnecting…" stands beside the notice, and
    # does not write over it.
    while not attempts.empty():
        attempts.get_nowait()
    await asyncio.wait_for(attempts.get(), 5)
    await asyncio.wait_for(attempts.get(), 5)
    await expect(ann.locator("#live-status")).to_have_text("Reconnecting…")
    await expect(ann.locator("#live-notice")).to_contain_text("changed", ignore_case=True)
    # The board now shows the card where the server has it.
    await expect(
        ann.locator(".board-column").nth(2).locator(".board-card", has_text="Checkout fails")
    ).to_be_visible()
    await expect(ann.locator(".board-column").nth(1).locator(".board-card")).to_have_count(0)


async def test_swimlanes_by_assignee_follow_live_changes(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    ann, problems = await open_page(
        browser, live_server, "ann@example.com", "/p/WEB/board?lanes=assignee"
    )
    await expect(ann.locator(".lane")).to_have_count(1)  # everything unassigned
    async with live_server.app.extensions["database"].sessionmaker() as session:
        bob = await session.scalar(select(User).where(User.email == "bob@example.com"))
        session.expunge(bob)
        issue = await issue_views.get_issue(session, bob, 1, 3)
        await issues.update_issue(
            session, bob, issue.id, issues.IssueChanges(assignee_id=bob.id), expected_version=1
        )
    bob_lane = ann.locator(".lane[data-lane='bob']")
    await expect(bob_lane.locator(".board-card", has_text="Dark theme")).to_be_visible()
    await expect(bob_lane.locator(".lane-head")).to_contain_text("Bob Builder")
    await expect(ann.locator(".lane[data-lane=''] .board-card")).to_have_count(2)
    await expect(ann.locator("[data-count-for]").first).to_have_text("3")
    # Within a lane, the card menu offers the lane's columns.
    await bob_lane.get_by_role("button", name="Move WEB-3").click()
    await ann.get_by_role("menuitem").nth(2).click()
    await expect(bob_lane.locator(".column-cards").nth(1).locator(".board-card")).to_have_count(1)
    await ann.screenshot(path=screenshot_path("board-swimlanes"), full_page=True)
    assert problems == []


async def test_a_comment_and_an_edit_appear_on_an_issue_page_someone_has_open(
    browser: Browser, live_server: LiveServer
) -> None:
    await shared_board(live_server)
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/WEB-1")
    bob, _ = await open_page(browser, live_server, "bob@example.com", "/WEB-1")
    await expect(ann.locator("#presence [data-viewer]")).to_have_attribute("title", "Bob Builder")
    await bob.get_by_label("Add a comment").fill("Reproduced on **staging**")
    await bob.get_by_role("button", name="Comment").click()
    comment = ann.locator(".timeline-comment", has_text="Reproduced on staging")
    await expect(comment).to_be_visible(timeout=2000)
    await expect(comment.locator(".markdown strong")).to_have_text("staging")
    await bob.get_by_label("Priority").select_option("high")
    await expect(ann.locator(".issue-badges")).to_contain_text("High", timeout=2000)
    await expect(ann.get_by_label("Priority")).to_have_value("high")
    # Ann's forms now carry the new version: her own edit is not refused as stale.
    await ann.get_by_label("Type").select_option("bug")
    await expect(bob.locator(".issue-badges")).to_contain_text("Bug", timeout=2000)
    await expect(ann.locator(".alert")).to_have_count(0)
    await ann.screenshot(path=screenshot_path("issue-live"), full_page=True)
    assert problems == []


async def long_board(server: LiveServer, todo: int) -> None:
    """The shared board, with `todo` more cards in its second column (WEB-4 on)."""
    await shared_board(server)
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
        session.expunge(ann)
        second = (await projects.workflow(session, 1))[1]
        for n in range(todo):
            await issues.create_issue(
                session, ann, 1, title=f"Planned {n + 4}", status_id=second.id
            )


async def scroll_to_the_end(page: Page) -> None:
    """Scroll the board's area down as a person does, with the mouse wheel."""
    await page.locator("#board").hover()
    for _ in range(3):
        await page.mouse.wheel(0, 20000)


async def test_a_long_column_shows_its_first_cards_and_more_as_it_is_scrolled(
    browser: Browser, live_server: LiveServer
) -> None:
    await long_board(live_server, 120)
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    todo = ann.locator(".board-column").nth(1)
    await expect(todo.locator(".board-card")).to_have_count(32)  # 160 cards over 5 columns
    await expect(todo.locator("[data-count-for]")).to_have_text("120")
    for shown in (82, 120):
        await scroll_to_the_end(ann)
        await expect(todo.locator(".board-card")).to_have_count(shown)
    await expect(todo.locator("[data-more-cards]")).to_have_count(0)  # the column is whole
    keys = await todo.locator(".board-card").evaluate_all("cards => cards.map(c => c.dataset.key)")
    assert keys == [f"WEB-{n}" for n in range(4, 124)]
    await expect(todo.locator("[data-count-for]")).to_have_text("120")
    assert problems == []


async def test_a_live_move_beyond_the_loaded_cards_counts_but_shows_only_when_scrolled_to(
    browser: Browser, live_server: LiveServer
) -> None:
    await long_board(live_server, 60)  # Backlog: WEB-1 to 3; Todo: WEB-4 to 63
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    bob, _ = await open_page(browser, live_server, "bob@example.com", "/p/WEB/board")
    ann_columns, bob_columns = ann.locator(".board-column"), bob.locator(".board-column")
    await scroll_to_the_end(bob)  # Bob sees the whole of Todo, Ann its first 32
    await expect(bob_columns.nth(1).locator(".board-card")).to_have_count(60)
    await expect(ann_columns.nth(1).locator(".board-card")).to_have_count(32)

    # Bob moves WEB-1 to the bottom of Todo: past the cards Ann has loaded.
    checkout = bob.locator("#board .board-card", has_text="Checkout fails")
    await checkout.focus()
    await checkout.press("Shift+ArrowRight")
    await expect(ann_columns.nth(1).locator("[data-count-for]")).to_have_text("61")
    await expect(ann_columns.nth(0).locator("[data-count-for]")).to_have_text("2")
    await expect(ann.locator("#board .board-card", has_text="Checkout fails")).to_have_count(0)
    await expect(ann_columns.nth(1).locator(".board-card")).to_have_count(32)

    # Bob moves WEB-60, which Ann has not loaded, back to Backlog: her counts come from the
    # server, and the card shows at the bottom of her (whole) Backlog.
    planned = bob.locator("#board .board-card", has_text="Planned 60")
    await planned.focus()
    await planned.press("Shift+ArrowLeft")
    await expect(ann_columns.nth(0).locator(".board-card").last).to_contain_text("Planned 60")
    await expect(ann_columns.nth(0).locator("[data-count-for]")).to_have_text("3")
    await expect(ann_columns.nth(1).locator("[data-count-for]")).to_have_text("60")

    # Scrolled to, Todo's last cards come in board order, WEB-1 at the bottom, none twice.
    await scroll_to_the_end(ann)
    await expect(ann_columns.nth(1).locator(".board-card")).to_have_count(60)
    keys = await (
        ann_columns.nth(1)
        .locator(".board-card")
        .evaluate_all("cards => cards.map(c => c.dataset.key)")
    )
    assert keys == [f"WEB-{n}" for n in range(4, 64) if n != 60] + ["WEB-1"]
    await expect(ann_columns.nth(1).locator("[data-count-for]")).to_have_text("60")
    assert problems == []


async def test_a_filter_finds_cards_the_column_had_not_loaded(
    browser: Browser, live_server: LiveServer
) -> None:
    await long_board(live_server, 60)
    ann, problems = await open_page(browser, live_server, "ann@example.com", "/p/WEB/board")
    todo = ann.locator(".board-column").nth(1)
    await expect(todo.locator(".board-card", has_text="Planned 63")).to_have_count(0)
    await ann.get_by_label("Filter cards by text").fill("planned 6")
    await expect(todo.locator(".board-card")).to_have_count(5)  # Planned 6 and 60 to 63
    await expect(todo.locator("[data-count-for]")).to_have_text("5")
    await expect(todo.locator(".board-card").last).to_contain_text("Planned 63")
    await expect(ann.locator(".board-column").nth(0).locator("[data-count-for]")).to_have_text("0")
    assert "text=planned" in ann.url  # a reload keeps the filter
    await ann.get_by_label("Filter cards by text").fill("")
    await expect(todo.locator("[data-count-for]")).to_have_text("60")
    await expect(todo.locator(".board-card")).to_have_count(32)
    assert problems == []
