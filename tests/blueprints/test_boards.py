"""The board's routes: a move names its board, and only that board's cards move on it; a long
column's cards come a page at a time, under the board's filters, to its readers only."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import pytest
from quart import Quart
from sqlalchemy import select

from app.models import Issue, User
from app.services import issues, projects
from tests.factories import make_issue, make_project, make_user
from tests.pages import PASSWORD, log_in, submit, text_of

if TYPE_CHECKING:  # as a module name, pytest would try to collect it as a test class
    from quart.typing import TestClientProtocol

KEY = re.compile(r'data-key="(WEB-[0-9]+)"')


async def test_a_card_of_another_project_cannot_be_moved_on_this_board(
    app: Quart, client: TestClientProtocol
) -> None:
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(
            session, email="owner@example.com", password_hash=await hasher.hash(PASSWORD)
        )
        web = await make_project(session, owner, key="WEB")
        api = await make_project(session, owner, key="API")
        await make_issue(session, owner, web)
        elsewhere = await make_issue(session, owner, api)
        done = (await projects.workflow(session, api.id))[-1]
        web_done = (await projects.workflow(session, web.id))[-1]
    await log_in(client, "owner@example.com")

    form = {"issue": str(elsewhere.id), "status": str(done.id), "version": "1"}
    refused = await submit(client, "/p/WEB/board/moves", form)
    assert refused.status_code == 404
    async with app.extensions["database"].sessionmaker() as session:
        unchanged = await session.scalar(select(Issue).where(Issue.id == elsewhere.id))
        assert (unchanged.status_id, unchanged.version) == (elsewhere.status_id, 1)

    # On its own board the same move goes through (so the refusal above is the board's rule).
    moved = await submit(client, "/p/API/board/moves", form, headers={"Accept": "application/json"})
    assert moved.status_code == 200, await moved.get_data(as_text=True)
    assert (await moved.get_json())["status_id"] == done.id != web_done.id


async def a_long_board(app: Quart, cards: int) -> tuple[int, int]:
    """WEB, a private project of owner@example.com with `cards` issues in its first column;
    outsider@example.com may sign in too. Returns the first and last columns' ids."""
    hasher = app.extensions["account_settings"].hasher
    async with app.extensions["database"].sessionmaker() as session:
        owner = await make_user(
            session, email="owner@example.com", password_hash=await hasher.hash(PASSWORD)
        )
        await make_user(
            session, email="outsider@example.com", password_hash=await hasher.hash(PASSWORD)
        )
        web = await make_project(session, owner, key="WEB")
        for n in range(cards):
            await issues.create_issue(
                session, owner, web.id, title=f"Card {n}", type="bug" if n % 2 else "task"
            )
        workflow = await projects.workflow(session, web.id)
    return workflow[0].id, workflow[-1].id


FRAGMENT = {"HX-Request": "true"}
NEXT = re.compile(r'data-more-cards href="([^"]+)"')


async def test_a_long_column_shows_its_first_cards_then_loads_the_rest_a_page_at_a_time(
    app: Quart, client: TestClientProtocol
) -> None:
    first, _ = await a_long_board(app, 120)
    await log_in(client, "owner@example.com")
    page = await text_of(await client.get("/p/WEB/board"))
    assert page.count('class="card board-card"') == 32  # boards.first_page_size of 5 columns
    assert f'data-count-for="{first}">120<' in page
    seen = KEY.findall(page)

    link = html.unescape(NEXT.search(page)[1])
    while link:
        answer = await client.get(link, headers=FRAGMENT)
        assert answer.status_code == 200
        assert "HX-Request" in answer.headers["Vary"]
        fragment = await text_of(answer)
        assert "<html" not in fragment and f'data-page-of="{first}"' in fragment
        seen += KEY.findall(fragment)
        found = NEXT.search(fragment)
        link = html.unescape(found[1]) if found else ""
    assert seen == [f"WEB-{n}" for n in range(1, 121)]


async def test_without_javascript_more_cards_is_a_page_with_a_link_to_the_next(
    app: Quart, client: TestClientProtocol
) -> None:
    await a_long_board(app, 60)
    await log_in(client, "owner@example.com")
    board = await text_of(await client.get("/p/WEB/board?type=bug"))
    assert board.count('class="card board-card"') == 30  # the filter is the server's
    assert "data-more-cards" not in board  # 30 bugs: shown whole
    board = await text_of(await client.get("/p/WEB/board"))
    page = await text_of(await client.get(html.unescape(NEXT.search(board)[1])))
    assert "<html" in page and "Back to the board" in page
    assert KEY.findall(page) == [f"WEB-{n}" for n in range(33, 61)]
    assert "data-more-cards" not in page  # the column's last page


async def test_more_cards_keep_the_board_s_filters(app: Quart, client: TestClientProtocol) -> None:
    first, _ = await a_long_board(app, 130)
    await log_in(client, "owner@example.com")
    board = await text_of(await client.get("/p/WEB/board?type=bug&text=card"))
    assert f'data-count-for="{first}">65<' in board
    link = html.unescape(NEXT.search(board)[1])
    assert "type=bug" in link and "text=card" in link
    fragment = await text_of(await client.get(link, headers=FRAGMENT))
    assert KEY.findall(fragment) == [f"WEB-{n}" for n in range(66, 131, 2)]  # after 32 bugs
    counts = await (await client.get("/p/WEB/board/counts?type=bug")).get_json()
    assert counts["counts"][str(first)] == 65 and isinstance(counts["seq"], int)


async def test_a_page_of_cards_is_new_as_soon_as_the_project_changes(
    app: Quart, client: TestClientProtocol
) -> None:
    first, done = await a_long_board(app, 60)
    await log_in(client, "owner@example.com")
    link = f"/p/WEB/board/columns/{first}?after=51200:50"  # after WEB-50, at 50 * 1024
    assert KEY.findall(await text_of(await client.get(link, headers=FRAGMENT)))[0] == "WEB-51"
    async with app.extensions["database"].sessionmaker() as session:
        moved = await session.scalar(select(Issue).where(Issue.number == 51))
        owner = await session.scalar(select(User).where(User.email == "owner@example.com"))
        session.expunge(owner)
        await issues.move_issue(
            session, owner, moved.id, status_id=done, before_id=None, expected_version=1
        )
    assert KEY.findall(await text_of(await client.get(link, headers=FRAGMENT)))[0] == "WEB-52"


@pytest.mark.parametrize(
    "after", ["nonsense", "1:2:3:4", "99999999999:1", "5:0", "%00", "1.5:2", "1:2147483648"]
)
async def test_a_bad_cursor_is_a_clear_400(
    app: Quart, client: TestClientProtocol, after: str
) -> None:
    first, _ = await a_long_board(app, 3)
    await log_in(client, "owner@example.com")
    answer = await client.get(f"/p/WEB/board/columns/{first}?after={after}", headers=FRAGMENT)
    assert answer.status_code == 400
    assert "not a place on this board" in await text_of(answer)


async def test_a_bad_filter_is_a_clear_400(app: Quart, client: TestClientProtocol) -> None:
    first, _ = await a_long_board(app, 3)
    await log_in(client, "owner@example.com")
    for path in ("/p/WEB/board", f"/p/WEB/board/columns/{first}", "/p/WEB/board/counts"):
        answer = await client.get(f"{path}?type=epic")
        assert answer.status_code == 400, path


async def test_a_private_board_s_cards_and_counts_are_not_found_to_outsiders(
    app: Quart, client: TestClientProtocol
) -> None:
    first, _ = await a_long_board(app, 60)
    await log_in(client, "outsider@example.com")
    for path in (
        f"/p/WEB/board/columns/{first}",
        f"/p/WEB/board/columns/{first}?after=51200:50",
        "/p/WEB/board/counts",
    ):
        answer = await client.get(path, headers=FRAGMENT)
        assert answer.status_code == 404, path
        assert "WEB-" not in await text_of(answer)


async def test_another_project_s_column_is_not_found_on_this_board(
    app: Quart, client: TestClientProtocol
) -> None:
    await a_long_board(app, 3)
    async with app.extensions["database"].sessionmaker() as session:
        owner = await session.scalar(select(User).where(User.email == "owner@example.com"))
        session.expunge(owner)
        api = await make_project(session, owner, key="API")
        their_column = (await projects.workflow(session, api.id))[0]
    await log_in(client, "owner@example.com")
    answer = await client.get(f"/p/WEB/board/columns/{their_column.id}", headers=FRAGMENT)
    assert answer.status_code == 404
