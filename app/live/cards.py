"""Board cards, rendered once per worker for each state of an issue.

A board of 500 cards spends most of its time in the card template, and the cards rarely
change between two views; a live event's card is the same HTML again. So a card's HTML is
remembered under everything it shows: the issue's version (bumped by every change of its own
fields), its position, its key, and its assignee's and labels' names and colours (which change
elsewhere). A board's cards are made from its light rows, never from loaded issues.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from jinja2 import Environment
from markupsafe import Markup

from app.models import Issue
from app.rendering.templating import synchronous_templates
from app.services.boards import BoardCard, BoardColumn
from app.services.relation_views import NO_MARKS, CardMarks

CARD_TEMPLATE = "boards/_card.html"


@dataclass(frozen=True)
class CardPerson:
    handle: str
    display_name: str
    initials: str


@dataclass(frozen=True)
class CardLabel:
    id: int
    name: str
    color: str


@dataclass(frozen=True)
class CardView:
    """What a card shows, made alike from a board's light row and from a loaded issue, so that
    both render the same HTML under the same key."""

    id: int
    key: str
    version: int
    position: int  # renumbering a column moves neighbours without a new version
    status_id: int
    title: str
    type: str
    priority: str
    assignee: CardPerson | None  # names change elsewhere than on the issue
    labels: tuple[CardLabel, ...]  # by name; renamed and recoloured elsewhere too
    marks: CardMarks = NO_MARKS  # blocked, sub-issues' progress: other issues' changes
    milestone_id: int | None = None  # for the board's milestone filter (board.js)


CardKey = tuple[object, ...]


def card_key(issue: Issue, marks: CardMarks = NO_MARKS) -> CardKey:
    """Everything a card shows that can change without a new version of its issue."""
    assignee = issue.assignee
    return (
        issue.id,
        issue.version,
        issue.position,
        issue.key,
        (assignee.handle, assignee.display_name, assignee.initials) if assignee else None,
        tuple(sorted(((la.id, la.name, la.color) for la in issue.labels), key=_by_name)),
        marks,
    )


def board_card_key(card: BoardCard, project_key: str) -> CardKey:
    """The same key, from the board's light rows (labels come sorted by name)."""
    key = f"{project_key}-{card.number}"
    return (card.id, card.version, card.position, key, card.assignee, card.labels, card.marks)


def _by_name(label: tuple[int, str, str]) -> tuple[str, int]:
    return label[1], label[0]


def card_of_issue(issue: Issue, marks: CardMarks = NO_MARKS) -> CardView:
    assignee = issue.assignee
    return CardView(
        id=issue.id,
        key=issue.key,
        version=issue.version,
        position=issue.position,
        status_id=issue.status_id,
        title=issue.title,
        type=issue.type,
        priority=issue.priority,
        assignee=(
            CardPerson(assignee.handle, assignee.display_name, assignee.initials)
            if assignee
            else None
        ),
        labels=tuple(
            CardLabel(*label)
            for label in sorted(((la.id, la.name, la.color) for la in issue.labels), key=_by_name)
        ),
        marks=marks,
        milestone_id=issue.milestone_id,
    )


def card_of_row(card: BoardCard, project_key: str) -> CardView:
    return CardView(
        id=card.id,
        key=f"{project_key}-{card.number}",
        version=card.version,
        position=card.position,
        status_id=card.status_id,
        title=card.title,
        type=card.type,
        priority=card.priority,
        assignee=CardPerson(*card.assignee) if card.assignee else None,
        labels=tuple(CardLabel(*label) for label in card.labels),
        marks=card.marks,
        milestone_id=card.milestone_id,
    )


class CardCache:
    """A bounded, least-recently-used memory of rendered cards (per worker)."""

    def __init__(self, templates: Environment, size: int = 50_000) -> None:
        # The card needs nothing asynchronous: a synchronous render of a small template costs a
        # fraction of an asynchronous one, and a cold board renders hundreds.
        self.templates = synchronous_templates(templates)
        self.size = size
        self.cards: OrderedDict[CardKey, Markup] = OrderedDict()
        self.renders = 0  # how many cards were actually rendered (tests count them)

    def card(self, key: CardKey, make_view: Callable[[], CardView]) -> Markup:
        card = self.cards.get(key)
        if card is not None:
            self.cards.move_to_end(key)
            return card
        html = self.templates.get_template(CARD_TEMPLATE).render(issue=make_view())
        card = Markup(html)  # noqa: S704  (the template escapes what it shows)
        self.renders += 1
        self.cards[key] = card
        if len(self.cards) > self.size:
            self.cards.popitem(last=False)
        return card

    async def render(self, issue: Issue, marks: CardMarks = NO_MARKS) -> Markup:
        """A loaded issue's card (a live event's), with its marks (services/relations)."""
        return self.card(card_key(issue, marks), lambda: card_of_issue(issue, marks))

    def for_board(self, project_key: str, columns: list[BoardColumn]) -> dict[int, Markup]:
        """Each card's HTML by issue id, from the board's own rows: no issue is loaded."""
        html: dict[int, Markup] = {}
        for column in columns:
            for row in column.cards:
                key = board_card_key(row, project_key)
                html[row.id] = self.card(key, lambda row=row: card_of_row(row, project_key))
        return html
