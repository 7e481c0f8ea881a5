"""Board cards are rendered once per state of an issue, and never shown stale."""

from __future__ import annotations

import pytest
from quart import Quart
from sqlalchemy import update

from app.models import Issue
from app.services import accounts, boards, issue_views, issues, projects
from app.services.issues import IssueChanges
from tests.live.test_stream import session_of, team


async def test_a_card_is_rendered_once_until_something_it_shows_changes(app: Quart) -> None:
    t = await team(app)
    cards = app.extensions["cards"]
    async with await session_of(app) as session:
        bug = await projects.save_label(session, t.owner, t.project_id, name="bug", color="#ff0000")
        first = await issues.create_issue(session, t.owner, t.project_id, title="Checkout fails")
        await issues.create_issue(session, t.owner, t.project_id, title="Slow search")
        await issues.update_issue(
            session,
            t.owner,
            first.id,
            IssueChanges(label_ids=[bug.id], assignee_id=t.member.id),
            expected_version=first.version,
        )
    board = await t.owner_client.get("/p/LIVE/board")
    assert board.status_code == 200
    rendered = cards.renders
    assert rendered == 2
    assert (await t.owner_client.get("/p/LIVE/board")).status_code == 200
    assert cards.renders == rendered  # the second view renders nothing again

    # Changes made elsewhere than on the issue show on the next view.
    async with await session_of(app) as session:
        await projects.save_label(
            session, t.owner, t.project_id, name="defect", color="#00ff00", label_id=bug.id
        )
        await accounts.change_display_name(session, t.member.id, "Mem Ber")
    page = await (await t.owner_client.get("/p/LIVE/board")).get_data(as_text=True)
    assert "defect" in page and ">bug<" not in page
    assert 'title="Mem Ber"' in page
    assert cards.renders == rendered + 1  # only the card that shows them


async def test_a_long_column_shows_its_first_cards_and_counts_them_all(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = await team(app)
    async with await session_of(app) as session:
        for n in range(5):
            await issues.create_issue(session, t.owner, t.project_id, title=f"Card {n}")
        columns = (await boards.board(session, t.owner, t.project_id, per_column=3)).columns
    first = columns[0]
    assert first.total == 5
    assert [card.number for card in first.cards] == [1, 2, 3]  # in board order
    assert all(column.total == 0 and column.cards == [] for column in columns[1:])

    monkeypatch.setattr(boards, "BOARD_PAGE", 3)
    page = await (await t.owner_client.get("/p/LIVE/board")).get_data(as_text=True)
    assert page.count('class="card board-card"') == 3
    assert 'data-count-for="' in page and ">5</span>" in page
    assert page.count("data-more-cards") == 1  # the first column's link to its next cards


async def test_a_card_moved_by_a_renumbering_shows_its_new_position(app: Quart) -> None:
    # Making room in a column renumbers its cards without a new version (issues.py).
    t = await team(app)
    async with await session_of(app) as session:
        first = await issues.create_issue(session, t.owner, t.project_id, title="First")
    assert f'data-position="{first.position}"' in await board_page(t)
    async with await session_of(app) as session:
        await session.execute(update(Issue).where(Issue.id == first.id).values(position=7))
        await session.commit()
    # A real renumbering happens inside a move, which bumps the project's counter and so makes
    # the board's kept part again; this one changes the row alone, to test the cards below it.
    app.extensions["page_cache"].clear()
    assert 'data-position="7"' in await board_page(t)


async def board_page(t) -> str:
    return await (await t.owner_client.get("/p/LIVE/board")).get_data(as_text=True)


async def test_a_board_row_and_a_loaded_issue_make_the_same_card(app: Quart) -> None:
    t = await team(app)
    async with await session_of(app) as session:
        zebra = await projects.save_label(
            session, t.owner, t.project_id, name="zebra", color="#000000"
        )
        alpha = await projects.save_label(
            session, t.owner, t.project_id, name="alpha", color="#ffffff"
        )
        made = await issues.create_issue(
            session, t.owner, t.project_id, title="Tabs & <spaces>", priority="high", type="bug"
        )
        await issues.update_issue(
            session,
            t.owner,
            made.id,
            IssueChanges(label_ids=[zebra.id, alpha.id], assignee_id=t.member.id),
            expected_version=made.version,
        )
        columns = (await boards.board(session, t.owner, t.project_id)).columns
        loaded = await issue_views.get_issue(session, t.owner, t.project_id, made.number)
    cards = app.extensions["cards"]
    from_row = cards.for_board("LIVE", columns)[made.id]
    cards.cards.clear()
    from_issue = await cards.render(loaded)
    assert from_row == from_issue
    assert "Tabs &amp; &lt;spaces&gt;" in from_row and "<spaces>" not in from_row
    assert from_row.index("alpha") < from_row.index("zebra")
    assert 'title="Member"' in from_row and ">High<" in from_row
