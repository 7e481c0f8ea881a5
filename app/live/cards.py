"""Board cards, rendered once per worker for each state of an issue.

A board of 500 cards spends most of its time in the card template, and the cards rarely
change between two views; a live event's card is the same HTML again. So a card's HTML is
remembered under everything it shows: the issue's version (bumped by every change of its own
fields), its position, its key, and its assignee's and labels' names and colours (which change
elsewhere).
"""

from __future__ import annotations

from collections import OrderedDict

from jinja2 import Environment
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Issue
from app.services.issues import ISSUE_DETAILS, BoardCard, BoardColumn

CARD_TEMPLATE = "boards/_card.html"

CardKey = tuple[object, ...]


def card_key(issue: Issue) -> CardKey:
    assignee = issue.assignee
    return (
        issue.id,
        issue.version,
        issue.position,  # renumbering a column moves neighbours without a new version
        issue.key,
        (assignee.handle, assignee.display_name, assignee.initials) if assignee else None,
        tuple(sorted(((la.id, la.name, la.color) for la in issue.labels), key=_by_name)),
    )


def board_card_key(card: BoardCard, project_key: str) -> CardKey:
    """The same key, from the board's light rows (labels come sorted by name)."""
    return (
        card.id,
        card.version,
        card.position,
        f"{project_key}-{card.number}",
        card.assignee,
        card.labels,
    )


def _by_name(label: tuple[int, str, str]) -> tuple[str, int]:
    return label[1], label[0]


class CardCache:
    """A bounded, least-recently-used memory of rendered cards (per worker)."""

    def __init__(self, templates: Environment, size: int = 10_000) -> None:
        self.templates = templates
        self.size = size
        self.cards: OrderedDict[CardKey, Markup] = OrderedDict()
        self.renders = 0  # how many cards were actually rendered (tests count them)

    async def render(self, issue: Issue) -> Markup:
        key = card_key(issue)
        card = self.cards.get(key)
        if card is not None:
            self.cards.move_to_end(key)
            return card
        html = await self.templates.get_template(CARD_TEMPLATE).render_async(issue=issue)
        card = Markup(html)  # noqa: S704  (the template escapes what it shows)
        self.renders += 1
        self.cards[key] = card
        if len(self.cards) > self.size:
            self.cards.popitem(last=False)
        return card

    async def for_board(
        self, session: AsyncSession, project_key: str, columns: list[BoardColumn]
    ) -> dict[int, Markup]:
        """Each card's HTML by issue id: remembered ones as they are, the others loaded (in one
        query) and rendered."""
        html: dict[int, Markup] = {}
        missing: list[int] = []
        for column in columns:
            for card in column.cards:
                key = board_card_key(card, project_key)
                known = self.cards.get(key)
                if known is None:
                    missing.append(card.id)
                else:
                    self.cards.move_to_end(key)
                    html[card.id] = known
        if missing:
            loaded = await session.scalars(
                select(Issue).where(Issue.id.in_(missing)).options(*ISSUE_DETAILS)
            )
            # On PostgreSQL this read may see a newer version than the board's rows did; the
            # card then carries its own status, and the page puts it right (board.js).
            for issue in loaded:
                html[issue.id] = await self.render(issue)
        return html
