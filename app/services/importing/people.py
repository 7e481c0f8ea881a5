"""The people an export names: matched to accounts by address or login, else placeholders."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid, NotFound
from app.models import Activity, Comment, ImportJob, Issue, User, Watcher
from app.services import audit
from app.services.accounts import unique_handle
from app.services.importing.records import PersonRef
from app.services.transaction import use_case

# RFC 2606: .invalid never resolves, so nothing is ever sent to a placeholder.
PLACEHOLDER_DOMAIN = "placeholder.invalid"
_SLUG = re.compile(r"[^a-z0-9._-]+")


def placeholder_email(person: PersonRef) -> str:
    slug = _SLUG.sub("-", person.identity.replace("@", ".at.")).strip("-.")[:200] or "someone"
    return f"{slug}@{PLACEHOLDER_DOMAIN}"


async def resolve_people(session: AsyncSession, people: Iterable[PersonRef]) -> dict[str, int]:
    """Each person's account id, by identity: an account with their address, else with their
    login as its @handle, else a placeholder (made now, in the caller's transaction; one made
    by an earlier import is reused)."""
    wanted = {person.identity: person for person in people if person.identity}
    if not wanted:
        return {}
    emails = {p.email.lower() for p in wanted.values() if p.email}
    logins = {p.login.lower() for p in wanted.values() if p.login}
    placeholders = {placeholder_email(p) for p in wanted.values()}
    rows = await session.execute(
        select(User.id, User.email, User.handle, User.is_placeholder).where(
            or_(
                User.email.in_(emails | placeholders),
                User.handle.in_(logins),
            )
        )
    )
    by_email: dict[str, int] = {}
    by_handle: dict[str, int] = {}
    for row in rows:
        by_email[row.email] = row.id
        if not row.is_placeholder:
            by_handle[row.handle] = row.id
    found: dict[str, int] = {}
    for identity, person in wanted.items():
        user_id = (
            (by_email.get(person.email.lower()) if person.email else None)
            or (by_handle.get(person.login.lower()) if person.login else None)
            or by_email.get(placeholder_email(person))
        )
        if user_id is None:
            address = placeholder_email(person)
            user = User(
                email=address,
                handle=await unique_handle(session, person.login or person.name or address),
                display_name=(person.name or person.login or person.email)[:100],
                password_hash=None,
                is_placeholder=True,
                notify_by_email=False,
            )
            session.add(user)
            await session.flush()
            user_id = by_email[address] = user.id
        found[identity] = user_id
    return found


@use_case
async def merge_placeholder(
    session: AsyncSession,
    placeholder_id: int,
    into_user_id: int,
    *,
    actor: User | None = None,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """Give everything a placeholder did (reported, assigned, commented, acted) to a real
    account, then delete the placeholder. Raises NotFound or Invalid; nothing changes then."""
    placeholder = await session.get(User, placeholder_id)
    target = await session.get(User, into_user_id)
    if placeholder is None or target is None:
        raise NotFound("No such person.")
    if not placeholder.is_placeholder:
        raise Invalid(f"{placeholder.email} is a real account, not an import's placeholder.")
    if target.is_placeholder or target.id == placeholder.id:
        raise Invalid("Merge a placeholder into a real account.")
    moves = (
        (Issue.reporter_id, Issue),
        (Issue.assignee_id, Issue),
        (Comment.author_id, Comment),
        (Activity.actor_id, Activity),
        (ImportJob.requested_by_id, ImportJob),
    )
    counts: dict[str, int] = {}
    for column, model in moves:
        result = await session.execute(
            update(model)
            .where(column == placeholder.id)
            .values({column.key: target.id})
            .execution_options(synchronize_session=False)
        )
        counts[f"{model.__tablename__}.{column.key}"] = result.rowcount
    # Watchers are keyed by person: keep the target's own row where both watch an issue.
    both = select(Watcher.issue_id).where(Watcher.user_id == target.id).scalar_subquery()
    await session.execute(
        update(Watcher)
        .where(Watcher.user_id == placeholder.id, Watcher.issue_id.not_in(both))
        .values(user_id=target.id)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        audit.AuditAction.ADMIN_MERGED_PERSON,
        actor=actor,
        subject=target,
        origin=origin,
        placeholder=placeholder.email,
        **{"moved": sum(counts.values())},
    )
    await session.delete(placeholder)
    return target


async def user_by_email(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise NotFound(f"No account with the address {email}.")
    return user
