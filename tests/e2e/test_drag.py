"""Dragging cards with the mouse: a card lands where it was dropped, in the dragger's browser,
live in someone else's and in the database; a drag made on an old version is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.live.broker import Subscriber
from app.models import Issue, Role, User, WorkflowStatus
from app.services import issue_views, issues, projects
from tests.e2e.conftest import LiveServer
from tests.e2e.test_tracker import log_in, make_account, watch_for_problems
from tests.waiting import eventually

pytestmark = pytest.mark.browser

MOVES = "**/p/WEB/board/moves"
BACKLOG = ["Checkout fails", "Slow search", "Dark theme"]  # WEB-1, WEB-2, WEB-3


async def team_board(server: LiveServer) -> None:
    """Ann's project WEB, with Bob as a member and three cards in Backlog."""
    await make_account(server, "ann@example.com", "Ann Example")
    await make_account(server, "bob@example.com", "Bob Builder")
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await ann_in(session)
        project = await projects.create_project(session, ann, key="WEB", name="Website")
        await projects.add_member(
            session, ann, project.id, email="bob@example.com", role=Role.MEMBER.value
        )
        for title in BACKLOG:
            await issues.create_issue(session, ann, project.id, title=title)


async def ann_in(session: AsyncSession) -> User:
    ann = await session.scalar(select(User).where(User.email == "ann@example.com"))
    session.expunge(ann)  # as the request's user is: usable after the use case's commit
    return ann


async def board_page(browser: Browser, server: LiveServer, email: str) -> tuple[Page, list[str]]:
    """A browser of its own, logged in, on the live board; and the page's script errors."""
    page = await (await browser.new_context()).new_page()
    problems = watch_for_problems(page)
    await log_in(page, server, email)
    await page.goto(server.url + "/p/WEB/board")
    await expect(page.locator("#live[data-state='open']")).to_be_attached()
    return page, problems


def card(page: Page, title: str) -> Locator:
    return page.locator("#board .board-card", has_text=title)


def cards_of(page: Page, column_name: str) -> Locator:
    """A column's list of cards (what a card is dropped into)."""
    return page.locator(f"#board .column-cards[aria-label='{column_name}']")


def titles_in(page: Page, column_name: str) -> Locator:
    return cards_of(page, column_name).locator(".board-card .card-title")


async def drag(
    page: Page,
    dragged: Locator,
    onto: Locator,
    *,
    while_held: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Drag a card with the mouse as a person does: press on it, move in small steps to `onto`
    (a card: to go above it; a column's list: to go at its end), and let go once the board
    shows the card there (after `while_held`, if given).

    SortableJS ignores a press on a card still sliding after the last drop, starts a drag only
    once the pointer moves, and moves the card as the pointer passes over lists and cards (not
    while they slide): so the press waits until the card stands still, and the pointer stays
    over the target, moving a little, until the card shows there, as a person's hand would."""
    held, target = await dragged.element_handle(), await onto.element_handle()
    onto_a_card = await target.evaluate("element => element.matches('.board-card')")
    await dragged.hover()  # waits until the card stands still
    start = await dragged.bounding_box()
    assert start is not None
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    await page.mouse.down()
    await page.mouse.move(x + 5, y + 5, steps=5)
    await page.mouse.move(*await aim_at(onto, onto_a_card), steps=20)
    for nudge in range(50):
        if await held.evaluate(LANDED, [target, onto_a_card]):
            break
        # Aimed again each time: a notice coming or going above the board moves it.
        x, y = await aim_at(onto, onto_a_card)
        await page.mouse.move(x + nudge % 2, y, steps=2)
        await page.wait_for_timeout(20)
    else:
        where = await held.evaluate(WHERE)
        raise AssertionError(f"the dragged card never showed where it was dropped: {where}")
    if while_held is not None:
        await while_held()
    await page.mouse.up()


async def aim_at(onto: Locator, onto_a_card: bool) -> tuple[float, float]:
    """Where the pointer goes: a card's upper part (to go above it), a list's bottom."""
    box = await onto.bounding_box()
    assert box is not None
    x = box["x"] + box["width"] / 2
    return x, box["y"] + (box["height"] * 0.25 if onto_a_card else box["height"] - 4)


# Whether the dragged card is where it goes: just above the card, or last in the list.
LANDED = """(card, [onto, ontoACard]) => ontoACard
    ? card.nextElementSibling === onto
    : card.parentElement === onto && !card.nextElementSibling"""
# Where it is instead, and whether SortableJS took hold of it.
WHERE = """card => `${card.isConnected ? "in " + card.parentElement.getAttribute("aria-label")
    : "no longer on the page"}, ${card.matches(".sortable-chosen") ? "held" : "not picked up"}`"""


async def saved_board(server: LiveServer) -> dict[str, list[str]]:
    """Each column's card titles in board order, as the database has them."""
    async with server.app.extensions["database"].sessionmaker() as session:
        rows = await session.execute(
            select(WorkflowStatus.name, Issue.title)
            .join(Issue, Issue.status_id == WorkflowStatus.id)
            .order_by(WorkflowStatus.position, Issue.position, Issue.id)
        )
        board: dict[str, list[str]] = {}
        for status, title in rows:
            board.setdefault(status, []).append(title)
        return board


async def test_a_card_dragged_up_or_down_its_column_stays_there_for_everyone(
    browser: Browser, live_server: LiveServer
) -> None:
    await team_board(live_server)
    ann, problems = await board_page(browser, live_server, "ann@example.com")
    bob, _ = await board_page(browser, live_server, "bob@example.com")
    await expect(titles_in(ann, "Backlog")).to_have_text(BACKLOG)

    # Up: Dark theme above Checkout fails.
    async with ann.expect_response(MOVES) as move:
        await drag(ann, card(ann, "Dark theme"), card(ann, "Checkout fails"))
    assert (await move.value).ok
    order = ["Dark theme", "Checkout fails", "Slow search"]
    await expect(titles_in(ann, "Backlog")).to_have_text(order)
    await expect(titles_in(bob, "Backlog")).to_have_text(order, timeout=2000)
    assert await saved_board(live_server) == {"Backlog": order}

    # Down: Checkout fails to the bottom.
    async with ann.expect_response(MOVES) as move:
        await drag(ann, card(ann, "Checkout fails"), cards_of(ann, "Backlog"))
    assert (await move.value).ok
    order = ["Dark theme", "Slow search", "Checkout fails"]
    await expect(titles_in(ann, "Backlog")).to_have_text(order)
    await expect(titles_in(bob, "Backlog")).to_have_text(order, timeout=2000)
    assert await saved_board(live_server) == {"Backlog": order}

    # A fresh page draws the board from the saved positions.
    await bob.reload()
    await expect(titles_in(bob, "Backlog")).to_have_text(order)
    assert problems == []


async def test_cards_dragged_across_columns_land_where_they_were_dropped_for_everyone(
    browser: Browser, live_server: LiveServer
) -> None:
    await team_board(live_server)
    async with live_server.app.extensions["database"].sessionmaker() as session:
        ann = await ann_in(session)
        in_progress = (await projects.workflow(session, 1))[2]
        checkout = await issue_views.get_issue(session, ann, 1, 1)
        await issues.move_issue(
            session,
            ann,
            checkout.id,
            status_id=in_progress.id,
            before_id=None,
            expected_version=checkout.version,
        )
    ann, problems = await board_page(browser, live_server, "ann@example.com")
    bob, _ = await board_page(browser, live_server, "bob@example.com")
    await expect(titles_in(ann, "In progress")).to_have_text(["Checkout fails"])

    # Two columns right, above the card there; then into an empty column.
    async with ann.expect_response(MOVES) as move:
        await drag(ann, card(ann, "Slow search"), card(ann, "Checkout fails"))
    assert (await move.value).ok
    async with ann.expect_response(MOVES) as move:
        await drag(ann, card(ann, "Dark theme"), cards_of(ann, "Done"))
    assert (await move.value).ok

    for page in (ann, bob):
        await expect(titles_in(page, "In progress")).to_have_text(
            ["Slow search", "Checkout fails"], timeout=2000
        )
        await expect(titles_in(page, "Done")).to_have_text(["Dark theme"])
        await expect(titles_in(page, "Backlog")).to_have_count(0)
        await expect(page.locator("#board [data-count-for]")).to_have_text(
            ["0", "0", "2", "0", "1"]
        )
    assert await saved_board(live_server) == {
        "In progress": ["Slow search", "Checkout fails"],
        "Done": ["Dark theme"],
    }
    assert problems == []


async def ann_raises_the_priority_of_web_1(server: LiveServer) -> int:
    """Ann changes WEB-1 (not where it is); returns the version it had before."""
    async with server.app.extensions["database"].sessionmaker() as session:
        ann = await ann_in(session)
        checkout = await issue_views.get_issue(session, ann, 1, 1)
        version = checkout.version
        await issues.update_issue(
            session,
            ann,
            checkout.id,
            issues.IssueChanges(priority="high"),
            expected_version=version,
        )
    return version


async def lose_the_stream(page: Page, server: LiveServer, email: str) -> None:
    """The page stops hearing the board (its network drops): the server ends the person's
    streams and the browser's attempts to come back hang, so its cards keep the versions they
    have. (Chromium's offline mode would leave an open stream delivering: STACK.md, pitfall
    26.)"""
    await page.route("**/p/WEB/events*", lambda route: None)  # never answered
    async with server.app.extensions["database"].sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.email == email))
    broker = server.app.extensions["broker"]

    def streams() -> list[Subscriber]:
        return [s for f in broker.feeds.values() for s in f.subscribers if s.user_id == user_id]

    # The page is "open" at the stream's headers, a moment before the stream joins the broker.
    assert await eventually(streams), f"no stream of {email} reached the broker"
    for stream in streams():
        stream.close()  # as the periodic access check ends one
    await expect(page.locator("#live[data-state='closed']")).to_be_attached()


async def expect_refused_and_back(page: Page, server: LiveServer) -> None:
    """The drop of WEB-1 into To do was refused: the page says why, and shows the card where
    it is and as it is now; nothing moved in the database."""
    notice = page.locator("#live-notice")
    await expect(notice).to_contain_text("WEB-1 changed while you were editing")
    await expect(notice).to_contain_text("Ann Example changed priority from none to high")
    await expect(notice).to_contain_text("Nothing of yours was saved")
    await expect(titles_in(page, "Backlog")).to_have_text(BACKLOG)
    await expect(titles_in(page, "To do")).to_have_count(0)
    await expect(card(page, "Checkout fails").locator(".priority-high")).to_be_visible()
    assert await saved_board(server) == {"Backlog": BACKLOG}


def complaints(problems: list[str], *expected: str) -> list[str]:
    """The console's errors, but for the expected ones (which contain one of `expected`)."""
    return [problem for problem in problems if not any(text in problem for text in expected)]


async def test_a_drag_of_a_card_someone_changed_meanwhile_is_refused_and_it_goes_back(
    browser: Browser, live_server: LiveServer
) -> None:
    await team_board(live_server)
    bob, problems = await board_page(browser, live_server, "bob@example.com")
    await lose_the_stream(bob, live_server, "bob@example.com")
    seen_by_bob = await ann_raises_the_priority_of_web_1(live_server)
    stale = card(bob, "Checkout fails")
    await expect(stale).to_have_attribute("data-version", str(seen_by_bob))

    async with bob.expect_response(MOVES) as move:
        await drag(bob, stale, cards_of(bob, "To do"))
    assert (await move.value).status == 409
    await expect_refused_and_back(bob, live_server)

    # On the board as it now is, the same drag is saved.
    async with bob.expect_response(MOVES) as move:
        await drag(bob, card(bob, "Checkout fails"), cards_of(bob, "To do"))
    assert (await move.value).ok
    await expect(titles_in(bob, "To do")).to_have_text(["Checkout fails"])
    assert await saved_board(live_server) == {
        "Backlog": ["Slow search", "Dark theme"],
        "To do": ["Checkout fails"],
    }
    assert complaints(problems, "status of 409") == []


async def test_a_card_changed_while_it_is_being_dragged_is_refused_when_dropped(
    browser: Browser, live_server: LiveServer
) -> None:
    await team_board(live_server)
    bob, problems = await board_page(browser, live_server, "bob@example.com")

    # Ann's change reaches Bob's page while he holds the card: the page draws the card anew
    # in its column, and the drop, made with the version the drag began with, is refused.
    async def ann_changes_it_and_bob_sees_that() -> None:
        await ann_raises_the_priority_of_web_1(live_server)
        await expect(card(bob, "Checkout fails").locator(".priority-high")).to_be_attached()

    async with bob.expect_response(MOVES) as move:
        await drag(
            bob,
            card(bob, "Checkout fails"),
            cards_of(bob, "To do"),
            while_held=ann_changes_it_and_bob_sees_that,
        )
    assert (await move.value).status == 409
    await expect_refused_and_back(bob, live_server)
    assert complaints(problems, "status of 409") == []
