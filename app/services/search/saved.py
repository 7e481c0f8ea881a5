"""Saved searches: a user's named queries for the sidebar."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid, NotFound
from app.models import SavedSearch, User
from app.services.access import require_validated
from app.services.search.finder import _INT32
from app.services.search.query_language import parse_query
from app.services.transaction import use_case

SAVED_SEARCH_NAME_MAX = 80
SAVED_SEARCHES_MAX = 50


@use_case
async def save_search(session: AsyncSession, user: User, *, name: str, query: str) -> SavedSearch:
    """Keep a search under a name for the sidebar. Raises Invalid (name, or QueryError for the
    query) or Forbidden for an unconfirmed account; commits once."""
    require_validated(user)
    name, query = name.strip(), query.strip()
    if not 1 <= len(name) <= SAVED_SEARCH_NAME_MAX:
        raise Invalid(
            f"A saved search's name is 1 to {SAVED_SEARCH_NAME_MAX} characters.", field="name"
        )
    if not query:
        raise Invalid("Type a search to save.", field="q")
    parse_query(query)
    mine = select(SavedSearch.name).where(SavedSearch.user_id == user.id)
    names = {existing.lower() for existing in await session.scalars(mine)}
    if name.lower() in names:
        raise Invalid(f'You already have a search called "{name}".', field="name")
    if len(names) >= SAVED_SEARCHES_MAX:
        raise Invalid(
            f"You can keep {SAVED_SEARCHES_MAX} searches; delete one first.", field="name"
        )
    saved = SavedSearch(user_id=user.id, name=name, query=query)
    session.add(saved)
    return saved


async def list_saved_searches(session: AsyncSession, user: User) -> list[SavedSearch]:
    """The user's saved searches, by name."""
    return list(
        await session.scalars(
            select(SavedSearch)
            .where(SavedSearch.user_id == user.id)
            .order_by(func.lower(SavedSearch.name), SavedSearch.id)
        )
    )


@use_case
async def delete_saved_search(session: AsyncSession, user: User, saved_search_id: int) -> None:
    """Delete one of the user's saved searches; another user's is NotFound. Commits once."""
    saved = None
    if saved_search_id in _INT32:
        saved = await session.get(SavedSearch, saved_search_id)
    if saved is None or saved.user_id != user.id:
        raise NotFound("No such saved search.")
    await session.delete(saved)
