"""The board's read model: a project's columns with their first cards, read as light rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, any_, bindparam, func, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Issue,
    IssueLabel,
    Label,
    User,
    WorkflowStatus,
)
from app.models.user import initials_of
from app.services.access import (
    readable_project,
)
from app.services.issue_views import ISSUE_DETAILS


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


# A board shows at most this many cards per column (the rest are one search away): a column
# of a project with 100,000 open issues must not load them all.
BOARD_COLUMN_LIMIT = 500


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


@dataclass
class BoardColumn:
    status: WorkflowStatus
    cards: list[BoardCard]
    total: int  # may exceed len(cards): see BOARD_COLUMN_LIMIT


async def board(
    session: AsyncSession,
    viewer: User | None,
    project_id: int,
    *,
    per_column: int = BOARD_COLUMN_LIMIT,
) -> list[BoardColumn]:
    """The project's columns with their first cards in board order, and each one's count."""
    project = await readable_project(session, viewer, project_id)
    statuses = await _statuses_in_board_order(session, project.id)
    if not statuses:
        return []
    counted = await session.execute(
        select(Issue.status_id, func.count())
        .where(Issue.project_id == project.id)
        .group_by(Issue.status_id)
    )
    totals: dict[int, int] = {status_id: count for status_id, count in counted}
    # One statement, each column an index range scan of (project_id, status_id, position).
    per_status = [
        select(
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
        )
        .outerjoin(User, User.id == Issue.assignee_id)
        .where(Issue.project_id == project.id, Issue.status_id == status.id)
        .order_by(Issue.position, Issue.id)
        .limit(per_column)
        .subquery()
        .select()
        for status in statuses
    ]
    rows = (await session.execute(union_all(*per_status))).all()
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
    by_status: dict[int, list[BoardCard]] = {status.id: [] for status in statuses}
    for row in rows:
        issue_id, number, version, status_id, position, title, type_, priority = row[:8]
        handle, name, email = row[8:]
        by_status[status_id].append(
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
            )
        )
    for cards in by_status.values():
        cards.sort(key=lambda card: (card.position, card.id))  # a union keeps no order
    return [
        BoardColumn(status, by_status[status.id], totals.get(status.id, 0)) for status in statuses
    ]
