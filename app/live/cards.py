"""Board cards, rendered once per worker for each state of an issue.

A board of 500 cards spends most of its time in the card template, and the cards rarely
change between two views; a live event's card is the same HTML again. So a card's HTML is
remembered under everything it shows: the issue's version (bumped by every change of its own
fields), its key, and its assignee's and labels' names and colours (which change elsewhere).
"""

from __future__ import annotations

from collections import OrderedDict

from jinja2 import Environment
from markupsafe import Markup

from app.models import Issue

CARD_TEMPLATE = "boards/_card.html"

CardKey = tuple[object, ...]


def card_key(issue: Issue) -> CardKey:
    assignee = issue.assignee
    return (
        issue.id,
        issue.version,
        issue.key,
        (assignee.handle, assignee.display_name, assignee.initials) if assignee else None,
        tuple((label.id, label.name, label.color) for label in issue.labels),
    )


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
