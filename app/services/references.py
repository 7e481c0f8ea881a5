"""What the texts of a page link to: people @mentioned who exist, issues named that the
viewer may read (the rule of access.readable_project)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Issue, Membership, Project, User
from app.rendering.markdown import names_in


@dataclass(frozen=True)
class LinkTargets:
    """What a page's texts link to: mentions (handle -> profile URL) of people who exist, and
    references (key -> issue URL) to issues that exist and the viewer may read, among the
    issue keys the texts name (`named`)."""

    mentions: dict[str, str]
    references: dict[str, str]
    named: frozenset[str]


async def link_targets(
    session: AsyncSession, viewer: User | None, texts: Iterable[str]
) -> LinkTargets:
    """For every text of a page at once: one query for the people, one for the issues, none
    when nothing is named."""
    handles: set[str] = set()
    keys: set[str] = set()
    for text in texts:
        found_handles, found_keys = names_in(text)
        handles |= found_handles
        keys |= found_keys

    mentions: dict[str, str] = {}
    if handles:
        known = await session.scalars(select(User.handle).where(User.handle.in_(handles)))
        mentions = {handle: f"/u/{quote(handle)}" for handle in known}
    references = await readable_references(session, viewer, keys)
    return LinkTargets(mentions, references, frozenset(keys))


async def readable_references(
    session: AsyncSession, viewer: User | None, keys: Iterable[str]
) -> dict[str, str]:
    """Of these issue keys, those of issues that exist and that `viewer` may read, the rule of
    access.readable_project: key -> issue URL."""
    wanted = [(key.rsplit("-", 1)[0], int(key.rsplit("-", 1)[1])) for key in keys]
    if not wanted or viewer is None:
        return {}
    membership = and_(Membership.project_id == Project.id, Membership.user_id == viewer.id)
    rows = await session.execute(
        select(Project.key, Issue.number)
        .join(Project, Project.id == Issue.project_id)
        .outerjoin(Membership, membership)
        .where(tuple_(Project.key, Issue.number).in_(wanted))
        .where(or_(Project.is_public, Membership.user_id.is_not(None)))
    )
    return {f"{key}-{number}": f"/{key}-{number}" for key, number in rows}
