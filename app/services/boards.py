"""The board's read model: a project's columns, each read a page of light rows at a time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import one_snapshot
from app.errors import Invalid, NotFound
from app.models import (
    Issue,
    IssueLabel,
    IssueType,
    Label,
    Project,
    User,
    WorkflowStatus,
)
from app.models.user import initials_of
from app.services.access import (
    readable_project,
)
from app.services.issue_views import ISSUE_DETAILS
from app.services.relation_views import NO_MARKS, CardMarks, card_marks


async def _statuses_in_board_order(session: AsyncSession, project_id: int) -> list[WorkflowStatus]:
    return list(
        await session.scalars(
            select(WorkflowStatus)
            .where(WorkflowStatus.project_id == project_id)
            .order_by(WorkflowStatus.position, WorkflowStatus.id)
        )
    )


async def board_columns(
    session: AsyncSession, viewer: User | None, project_id: int
) -> list[tuple[WorkflowStatus, list[Issue]]]:
    """The project's columns, each with its cards in board order."""
    project = await readable_project(session, viewer, project_id)
    statuses = await _statuses_in_board_order(session, project.id)
    cards = await session.scalars(
        select(Issue)
        .where(Issue.project_id == project.id)
        .options(*ISSUE_DETAILS)
        .order_by(Issue.position, Issue.id)
    )
    by_status: dict[int, list[Issue]] = {status.id: [] for status in statuses}
    for card in cards:
        by_status.setdefault(card.status_id, []).append(card)
    return [(status, by_status[status.id]) for status in statuses]


def _among(session: AsyncSession, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """`column IN ids`, as one array parameter on PostgreSQL: a board's hundreds of ids would
    otherwise be compiled into hundreds of parameters on every view."""
    if session.bind.dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    return column.in_(ids)


# A column loads this many cards each time it is scrolled to its end (or its "More cards" link
# is followed), after its first ones: a board of thousands stays a light page.
BOARD_PAGE = 50
# The first view shows about this many cards in all, shared by the columns (at most BOARD_PAGE
# each, at least 10): a card is about 0.7 KiB, and a board's first view is to stay under
# 150 KiB however many columns it has (bench.boards measures it).
BOARD_FIRST_VIEW = 160


def first_page_size(columns: int) -> int:
    """How many cards each of a board's `columns` shows at first."""
    return min(BOARD_PAGE, max(10, BOARD_FIRST_VIEW // max(columns, 1)))


# Positions and ids are 32-bit integers in the database: a cursor outside that range is no
# cursor of ours (and PostgreSQL would refuse to compare with it).
_INT32 = 2**31
_CURSOR = re.compile(r"(-?[0-9]{1,10}):([0-9]{1,10})(?::([0-9]{1,10}))?")


@dataclass(frozen=True, order=True)
class CardCursor:
    """A place in a column's board order, (position, id): a page continues after it. With the
    card's version, a later page can tell a renumbered column (same version, new position:
    follow the card) from a move of that card (new version: keep the place)."""

    position: int
    id: int
    version: int | None = None

    def __str__(self) -> str:
        place = f"{self.position}:{self.id}"
        return place if self.version is None else f"{place}:{self.version}"

    @classmethod
    def parse(cls, text: str) -> CardCursor:
        """The cursor `str` made; raises Invalid for anything else."""
        found = _CURSOR.fullmatch(text)
        if found is not None:
            position, issue_id = int(found[1]), int(found[2])
            version = int(found[3]) if found[3] is not None else None
            if (
                -_INT32 <= position < _INT32
                and 0 < issue_id < _INT32
                and (version is None or version < _INT32)
            ):
                return cls(position, issue_id, version)
        raise Invalid("That is not a place on this board; reload the board.", field="after")


@dataclass(frozen=True)
class BoardFilters:
    """What the board is narrowed to. `text` is looked for in a card's key and title, any case;
    `assignee` is the start of a handle (an @ may lead); `label` a label's whole name, any case.
    board.js applies the same rules to the cards live events bring."""

    text: str = ""
    type: str = ""
    assignee: str = ""
    label: str = ""
    milestone: str = ""  # a milestone's id, or "none" for the cards in none

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> BoardFilters:
        """The filters of a query string (the board's filter form); raises Invalid."""
        type_ = args.get("type", "").strip().lower()
        if type_ and type_ not in {kind.value for kind in IssueType}:
            raise Invalid("No such issue type.", field="type")
        filters = cls(
            text=args.get("text", "").strip().lower(),
            type=type_,
            assignee=args.get("assignee", "").strip().lower().removeprefix("@"),
            label=args.get("label", "").strip().lower(),
            milestone=args.get("milestone", "").strip().lower(),
        )
        if filters.milestone and not (
            filters.milestone == "none"
            or (filters.milestone.isdigit() and 0 < int(filters.milestone) < _INT32)
        ):
            raise Invalid("No such milestone.", field="milestone")
        if any(len(value) > 200 for value in (filters.text, filters.assignee, filters.label)):
            raise Invalid("That filter is too long.", field="text")
        return filters

    def query_args(self) -> dict[str, str]:
        """The filters as query arguments (those set), for the links that load more cards."""
        return {name: value for name, value in vars(self).items() if value}

    def __bool__(self) -> bool:
        return any(vars(self).values())


NO_FILTERS = BoardFilters()


def _like_pattern(text: str, *, anywhere: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if anywhere else f"{escaped}%"


def _filtered(query: Select[Any], project: Project, filters: BoardFilters) -> Select[Any]:
    """`query` (over Issue) narrowed to the cards the filters let through."""
    if filters.text:
        shown = literal(f"{project.key}-").concat(cast(Issue.number, String)).concat(" ")
        shown = shown.concat(Issue.title)
        query = query.where(
            func.lower(shown).like(_like_pattern(filters.text, anywhere=True), escape="\\")
        )
    if filters.type:
        query = query.where(Issue.type == filters.type)
    if filters.assignee:
        query = query.where(
            Issue.assignee_id.in_(
                select(User.id).where(
                    func.lower(User.handle).like(
                        _like_pattern(filters.assignee, anywhere=False), escape="\\"
                    )
                )
            )
        )
    if filters.label:
        query = query.where(
            exists()
            .where(IssueLabel.c.issue_id == Issue.id)
            .where(IssueLabel.c.label_id == Label.id)
            .where(Label.project_id == project.id, func.lower(Label.name) == filters.label)
        )
    if filters.milestone == "none":
        query = query.where(Issue.milestone_id.is_(None))
    elif filters.milestone:
        query = query.where(Issue.milestone_id == int(filters.milestone))
    return query


@dataclass(frozen=True)
class BoardCard:
    """What the board needs of a card to place it and to know whether its HTML is current;
    read without building ORM objects (a board has hundreds)."""

    id: int
    number: int
    version: int
    status_id: int
    position: int
    title: str
    type: str
    priority: str
    assignee: tuple[str, str, str] | None  # handle, display name, initials
    labels: tuple[tuple[int, str, str], ...]  # id, name, colour
    marks: CardMarks = NO_MARKS  # blocked, sub-issues' progress (services/relations)
    milestone_id: int | None = None

    @property
    def cursor(self) -> CardCursor:
        return CardCursor(self.position, self.id, self.version)


@dataclass
class BoardColumn:
    status: WorkflowStatus
    cards: list[BoardCard]  # a page of the column, in board order
    total: int  # the whole column's count (under the filters): more than len(cards) if paged
    following: CardCursor | None = None  # the first card after this page; None: none left

    @property
    def after(self) -> CardCursor | None:
        """Where the next page starts (None: this page is the column's last)."""
        if self.following is None:
            return None
        return self.cards[-1].cursor if self.cards else None


@dataclass
class Board:
    columns: list[BoardColumn]
    seq: int  # the project's event counter the counts were read at (live events after it count)


_CARD_COLUMNS = (
    Issue.id,
    Issue.number,
    Issue.version,
    Issue.status_id,
    Issue.position,
    Issue.title,
    Issue.type,
    Issue.priority,
    User.handle,
    User.display_name,
    User.email,
    Issue.milestone_id,
)


def _page_query(
    project: Project,
    status_id: int,
    filters: BoardFilters,
    after: CardCursor | None,
    limit: int,
) -> Select[Any]:
    """A column's next `limit` cards after `after`, and one more (to tell whether any follow):
    an index range scan of (project_id, status_id, position), never an OFFSET."""
    query = (
        select(*_CARD_COLUMNS)
        .outerjoin(User, User.id == Issue.assignee_id)
        .where(Issue.project_id == project.id, Issue.status_id == status_id)
    )
    if after is not None:
        query = query.where(tuple_(Issue.position, Issue.id) > tuple_(after.position, after.id))
    return _filtered(query, project, filters).order_by(Issue.position, Issue.id).limit(limit + 1)


async def _cards_of(session: AsyncSession, rows: list[Any]) -> list[BoardCard]:
    """Cards of light rows, with their labels (one query for all of them)."""
    labels: dict[int, list[tuple[int, str, str]]] = {}
    if rows:
        label_rows = await session.execute(
            select(IssueLabel.c.issue_id, Label.id, Label.name, Label.color)
            .join(Label, Label.id == IssueLabel.c.label_id)
            .where(_among(session, IssueLabel.c.issue_id, [row[0] for row in rows]))
            .order_by(IssueLabel.c.issue_id, Label.name)
        )
        for issue_id, label_id, name, color in label_rows:
            labels.setdefault(issue_id, []).append((label_id, name, color))
    marks = await card_marks(session, [row[0] for row in rows])  # one query for the page
    cards = []
    for row in rows:
        issue_id, number, version, status_id, position, title, type_, priority = row[:8]
        handle, name, email, milestone_id = row[8:]
        cards.append(
            BoardCard(
                id=issue_id,
                number=number,
                version=version,
                status_id=status_id,
                position=position,
                title=title,
                type=type_,
                priority=priority,
                assignee=(handle, name, initials_of(name, email)) if handle else None,
                # By name as Python orders it, as a live event's card does (not by collation).
                labels=tuple(sorted(labels.get(issue_id, ()), key=lambda la: (la[1], la[0]))),
                marks=marks.get(issue_id, NO_MARKS),
                milestone_id=milestone_id,
            )
        )
    return cards


def _paged(cards: list[BoardCard], limit: int) -> tuple[list[BoardCard], CardCursor | None]:
    """A page of `cards` (read with one more than `limit`) and the first card after it."""
    cards.sort(key=lambda card: (card.position, card.id))
    if len(cards) > limit:
        return cards[:limit], cards[limit].cursor
    return cards, None


async def _counts(
    session: AsyncSession, project: Project, filters: BoardFilters
) -> tuple[dict[int, int], int]:
    """Each column's count under the filters, and the project's event counter, read in one
    statement (one snapshot): a live event is already counted exactly when its seq is at most
    the counter's."""
    counted = _filtered(
        select(Project.last_event_seq, Issue.status_id, func.count(Issue.id))
        .select_from(Project)
        .outerjoin(Issue, Issue.project_id == Project.id),
        project,
        filters,
    )
    rows = (
        await session.execute(
            counted.where(Project.id == project.id).group_by(
                Project.last_event_seq, Issue.status_id
            )
        )
    ).all()
    seq = rows[0][0] if rows else project.last_event_seq
    return {status_id: count for _, status_id, count in rows if status_id is not None}, seq


async def board(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    *,
    per_column: int | None = None,
    filters: BoardFilters = NO_FILTERS,
) -> Board:
    """The project's columns with their first cards in board order (under the filters), and
    each one's whole count. `per_column` is first_page_size's unless given."""
    async with one_snapshot(session):  # the counts and the cards as of one moment
        return await _board(session, viewer, project_id, per_column, filters)


async def _board(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    per_column: int | None,
    filters: BoardFilters,
) -> Board:
    project = await readable_project(session, viewer, project_id)
    statuses = await _statuses_in_board_order(session, project.id)
    if not statuses:
        return Board([], project.last_event_seq)
    per_column = per_column or first_page_size(len(statuses))
    totals, seq = await _counts(session, project, filters)
    # One statement, each column an index range scan of (project_id, status_id, position).
    per_status = [
        _page_query(project, status.id, filters, None, per_column).subquery().select()
        for status in statuses
    ]
    rows = (await session.execute(union_all(*per_status))).all()
    by_status: dict[int, list[BoardCard]] = {status.id: [] for status in statuses}
    for card in await _cards_of(session, rows):
        by_status[card.status_id].append(card)
    columns = []
    for status in statuses:
        cards, following = _paged(by_status[status.id], per_column)  # a union keeps no order
        columns.append(BoardColumn(status, cards, totals.get(status.id, 0), following))
    return Board(columns, seq)


async def column_page(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    status_id: int,
    *,
    after: CardCursor | None,
    filters: BoardFilters = NO_FILTERS,
    limit: int | None = None,
) -> BoardColumn:
    """The next `limit` cards of one column after `after` (None: its first), in board order
    under the filters, with the column's whole count. NotFound for a status of another project.

    A cursor names the last card the page already shows: if that card is still in the column
    the page continues from where it is now (a renumbered column moves every position), else
    from the position it had. `limit` is BOARD_PAGE unless given."""
    async with one_snapshot(session):  # the counts and the cards as of one moment
        return await _column_page(session, viewer, project_id, status_id, after, filters, limit)


async def _column_page(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    status_id: int,
    after: CardCursor | None,
    filters: BoardFilters,
    limit: int | None,
) -> BoardColumn:
    limit = limit or BOARD_PAGE
    project = await readable_project(session, viewer, project_id)
    status = await session.scalar(
        select(WorkflowStatus).where(
            WorkflowStatus.id == status_id, WorkflowStatus.project_id == project.id
        )
    )
    if status is None:
        raise NotFound("No such column on this board.")
    if after is not None:
        now = (
            await session.execute(
                select(Issue.position, Issue.version).where(
                    Issue.id == after.id,
                    Issue.project_id == project.id,
                    Issue.status_id == status.id,
                )
            )
        ).one_or_none()
        # Renumbering leaves versions alone: the same version at a new place is the same card
        # where the column moved it; a new version was moved itself, and its old place stays.
        if now is not None and (after.version is None or now.version == after.version):
            after = CardCursor(now.position, after.id)
    totals, _ = await _counts(session, project, filters)
    rows = (await session.execute(_page_query(project, status.id, filters, after, limit))).all()
    cards, following = _paged(await _cards_of(session, rows), limit)
    return BoardColumn(status, cards, totals.get(status.id, 0), following)


async def column_counts(
    session: AsyncSession, viewer: User | None, project_id: int, filters: BoardFilters
) -> tuple[dict[int, int], int]:
    """Each column's whole count under the filters (every column, zeros too), and the project's
    event counter they were read at."""
    project = await readable_project(session, viewer, project_id)
    statuses = await _statuses_in_board_order(session, project.id)
    totals, seq = await _counts(session, project, filters)
    return {status.id: totals.get(status.id, 0) for status in statuses}, seq
