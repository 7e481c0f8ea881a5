"""The board's read model: columns read a page at a time, in board order, with whole counts."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid, NotFound
from app.models import Issue, Project, User
from app.services import boards, issues, projects
from app.services.boards import BOARD_PAGE, BoardFilters, CardCursor, first_page_size
from tests.factories import add_member, make_project, make_user


async def a_project_with(
    session: AsyncSession, count: int, **issue_fields: object
) -> tuple[User, Project]:
    owner = await make_user(session)
    project = await make_project(session, owner, key="WEB")
    for n in range(count):
        await issues.create_issue(session, owner, project.id, title=f"Card {n}", **issue_fields)
    return owner, project


async def whole_column(
    session: AsyncSession, viewer: User, project: Project, filters: BoardFilters = boards.NO_FILTERS
) -> list[list[int]]:
    """The first column page by page, as the board loads it: each page's issue numbers."""
    board = await boards.board(session, viewer, project.id, filters=filters)
    column = board.columns[0]
    pages = [[card.number for card in column.cards]]
    while column.after is not None:
        following, total = column.following, column.total
        column = await boards.column_page(
            session, viewer, project.id, column.status.id, after=column.after, filters=filters
        )
        assert column.cards[0].cursor == following  # the card a drop below the page goes above
        assert column.total == total  # every page counts the whole column
        pages.append([card.number for card in column.cards])
    return pages


async def test_a_column_shows_its_first_cards_and_continues_with_no_card_twice_or_missed(
    session: AsyncSession,
) -> None:
    owner, project = await a_project_with(session, 2 * BOARD_PAGE + 7)
    # Cards that share a position (concurrent creates can) across the first page's end.
    await session.execute(
        update(Issue)
        .where(Issue.project_id == project.id, Issue.number.between(45, 56))
        .values(position=45 * 1024)
    )
    await session.commit()

    board = await boards.board(session, owner, project.id)
    first, shown = board.columns[0], first_page_size(len(board.columns))
    assert shown == 32  # of five columns; later pages are of BOARD_PAGE
    assert len(first.cards) == shown and first.total == 2 * BOARD_PAGE + 7
    assert first.following is not None and first.after == first.cards[-1].cursor
    assert all(column.total == 0 and column.after is None for column in board.columns[1:])

    pages = await whole_column(session, owner, project)
    assert [len(page) for page in pages] == [shown, BOARD_PAGE, BOARD_PAGE + 7 - shown]
    assert [n for page in pages for n in page] == list(range(1, 2 * BOARD_PAGE + 8))


async def test_the_counts_are_whole_and_later_pages_are_filtered_too(
    session: AsyncSession,
) -> None:
    owner = await make_user(session)
    bob = await make_user(session, email="bob@example.com")
    project = await make_project(session, owner, key="WEB")
    await add_member(session, project, bob)
    ui = await projects.save_label(session, owner, project.id, name="UI", color="#123456")
    for n in range(130):
        await issues.create_issue(
            session,
            owner,
            project.id,
            title=f"{'Checkout' if n % 2 else 'Search'} card {n}",
            type="bug" if n % 2 else "task",
            assignee_id=bob.id if n % 5 == 0 else None,
            label_ids=[ui.id] if n % 3 == 0 else [],
        )
    bugs = BoardFilters.from_args({"type": "bug"})
    pages = await whole_column(session, owner, project, bugs)
    numbers = [n for page in pages for n in page]
    assert [len(page) for page in pages] == [32, 33]
    assert numbers == [n + 1 for n in range(130) if n % 2]
    board = await boards.board(session, owner, project.id, filters=bugs)
    assert board.columns[0].total == 65

    # Every filter, with its rules: text in the key or title, any case; the start of a handle
    # (an @ may lead); a label's whole name, any case.
    cases = {
        "text": ({"text": "CHECKOUT"}, lambda n: n % 2 == 1),
        "key": ({"text": "web-12"}, lambda n: str(n + 1).startswith("12")),
        "assignee": ({"assignee": f"@{bob.handle[:3]}"}, lambda n: n % 5 == 0),
        "label": ({"label": "ui"}, lambda n: n % 3 == 0),
        "all": ({"type": "task", "label": "UI", "text": "search"}, lambda n: n % 6 == 0),
    }
    for name, (args, wanted) in cases.items():
        filters = BoardFilters.from_args(args)
        expected = [n + 1 for n in range(130) if wanted(n)]
        numbers = [n for page in await whole_column(session, owner, project, filters) for n in page]
        assert numbers == expected, name
        counts, _ = await boards.column_counts(session, owner, project.id, filters)
        assert next(iter(counts.values())) == len(expected), name


async def test_a_page_after_a_renumbered_column_continues_from_its_last_card(
    session: AsyncSession,
) -> None:
    owner, project = await a_project_with(session, BOARD_PAGE + 10)
    first = (await boards.board(session, owner, project.id)).columns[0]
    # A move with no room left renumbers the column (issues._position_before): every card's
    # position changes, none's order. Here they shrink far below the cursor's position.
    await session.execute(
        update(Issue).where(Issue.project_id == project.id).values(position=Issue.number)
    )
    await session.commit()
    page = await boards.column_page(session, owner, project.id, first.status.id, after=first.after)
    assert [card.number for card in page.cards] == list(
        range(len(first.cards) + 1, BOARD_PAGE + 11)
    )


async def test_a_card_moved_away_leaves_the_next_page_where_it_was(
    session: AsyncSession,
) -> None:
    owner, project = await a_project_with(session, BOARD_PAGE + 10)
    first = (await boards.board(session, owner, project.id)).columns[0]
    last_shown = await session.get(Issue, first.cards[-1].id)
    done = (await projects.workflow(session, project.id))[-1]
    await issues.move_issue(
        session, owner, last_shown.id, status_id=done.id, before_id=None, expected_version=1
    )
    page = await boards.column_page(session, owner, project.id, first.status.id, after=first.after)
    assert [card.number for card in page.cards] == list(
        range(len(first.cards) + 1, BOARD_PAGE + 11)
    )
    assert page.total == BOARD_PAGE + 9


async def test_a_page_after_its_last_card_moved_down_the_column_continues_where_it_was(
    session: AsyncSession,
) -> None:
    """The cursor's card moved within its own column (to its end): the next page starts where
    that card was, not after its new place (which would hide every card between)."""
    owner, project = await a_project_with(session, BOARD_PAGE + 10)
    first = (await boards.board(session, owner, project.id)).columns[0]
    last_shown = first.cards[-1]
    await issues.move_issue(
        session,
        owner,
        last_shown.id,
        status_id=first.status.id,
        before_id=None,
        expected_version=last_shown.version,
    )
    page = await boards.column_page(session, owner, project.id, first.status.id, after=first.after)
    shown = len(first.cards)
    # Every card after the first page, then the moved one at the column's end.
    assert [card.number for card in page.cards] == [*range(shown + 1, BOARD_PAGE + 11), shown]


@pytest.mark.parametrize(
    "text",
    ["", "12", "a:1", "1:b", "1:2:x", "1:2:3:4", "1:0", "1:-2", "99999999999:1", "2147483648:1"],
)
def test_a_cursor_is_a_position_and_an_id_or_refused(text: str) -> None:
    with pytest.raises(Invalid):
        CardCursor.parse(text)


def test_a_cursor_reads_back_what_it_wrote() -> None:
    for cursor in (
        CardCursor(-2048, 7),
        CardCursor(0, 1),
        CardCursor(2**31 - 1, 2**31 - 1),
        CardCursor(1024, 3, 5),
    ):
        assert CardCursor.parse(str(cursor)) == cursor


def test_an_unknown_type_is_refused_as_a_filter() -> None:
    with pytest.raises(Invalid):
        BoardFilters.from_args({"type": "epic"})


async def test_a_private_board_and_another_project_s_column_are_not_found(
    session: AsyncSession,
) -> None:
    owner, project = await a_project_with(session, 3)
    stranger = await make_user(session)
    other = await make_project(session, stranger, key="API")
    their_column = (await projects.workflow(session, other.id))[0]
    with pytest.raises(NotFound):
        await boards.column_page(session, owner, project.id, their_column.id, after=None)
    own_column = (await projects.workflow(session, project.id))[0]
    for read in (
        boards.board(session, stranger, project.id),
        boards.column_page(session, stranger, project.id, own_column.id, after=None),
        boards.column_counts(session, stranger, project.id, boards.NO_FILTERS),
    ):
        with pytest.raises(NotFound):
            await read
