"""The site admin console (decision 0022): its home, and people (deactivation, site admins,
two-factor reset); projects are in admin_projects, the outbox and deliveries in admin_queues.
Every change is one use case that writes its ADMIN_* audit row in its own commit; a refusal
raises before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.models import (
    ApiToken,
    AuthSession,
    Issue,
    Membership,
    OutboxMessage,
    Project,
    User,
    WebhookDelivery,
)
from app.models.outbox import MailStatus
from app.models.webhook import DeliveryStatus
from app.services import api_tokens, audit, login_sessions, two_factor
from app.services.accounts import AccountSettings
from app.services.transaction import use_case

PAGE_SIZE = 50
QUERY_MAX = 200
# The PostgreSQL channel on which a deactivation tells every worker to end that user's
# streams (app.live.listener listens; on one process the after-commit hook does it).
ACCOUNTS_CHANNEL = "issues_accounts"
LAST_ADMIN = "The site needs an admin: make someone else an admin first."
NOT_YOURSELF = "You cannot deactivate your own account: ask another admin."

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, numbered from 1."""

    rows: list[T]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_number(raw: str | None) -> int:
    """A page number from a query argument: anything but a small positive number is page 1."""
    raw = raw or ""
    return int(raw) if raw.isdigit() and 0 < len(raw) <= 6 and int(raw) > 0 else 1


async def fetch_page(session: AsyncSession, query: Any, number: int) -> tuple[list[Any], bool]:
    """Page `number` of the rows of `query` (already ordered), and whether more follow."""
    rows = list(
        (await session.execute(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))).all()
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def search_text(query: str) -> str:
    """A search box's text, trimmed and bounded."""
    return query.strip()[:QUERY_MAX]


# --- The console's home ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleCounts:
    people: int
    deactivated: int
    projects: int
    issues: int
    mail_pending: int
    mail_failed: int
    deliveries_pending: int
    deliveries_failed: int

    @property
    def active(self) -> int:
        return self.people - self.deactivated


async def console_counts(session: AsyncSession) -> ConsoleCounts:
    """The numbers on the console's home page."""

    async def count(query: Any) -> int:
        return await session.scalar(query) or 0

    def by_status(model: Any, status: str) -> Any:
        return select(func.count()).select_from(model).where(model.status == status)

    return ConsoleCounts(
        people=await count(select(func.count()).select_from(User)),
        deactivated=await count(
            select(func.count()).select_from(User).where(User.deactivated_at.is_not(None))
        ),
        projects=await count(select(func.count()).select_from(Project)),
        issues=await count(select(func.count()).select_from(Issue)),
        mail_pending=await count(by_status(OutboxMessage, MailStatus.PENDING.value)),
        mail_failed=await count(by_status(OutboxMessage, MailStatus.FAILED.value)),
        deliveries_pending=await count(by_status(WebhookDelivery, DeliveryStatus.PENDING.value)),
        deliveries_failed=await count(by_status(WebhookDelivery, DeliveryStatus.FAILED.value)),
    )


# --- People ------------------------------------------------------------------------------------


async def people_page(session: AsyncSession, query: str = "", number: int = 1) -> Page[User]:
    """Everyone whose address, name or handle contains `query` (any case), by id."""
    statement = select(User).order_by(User.id)
    if text := search_text(query):
        statement = statement.where(
            or_(
                User.email.icontains(text, autoescape=True),
                User.display_name.icontains(text, autoescape=True),
                User.handle.icontains(text, autoescape=True),
            )
        )
    rows, has_next = await fetch_page(session, statement, number)
    return Page([row[0] for row in rows], number, has_next)


@dataclass(frozen=True)
class PersonProject:
    key: str
    name: str
    role: str


@dataclass(frozen=True)
class PersonDetails:
    user: User
    projects: list[PersonProject]
    sessions: int
    tokens: int
    last_sign_in: datetime | None


async def person_details(
    session: AsyncSession, settings: AccountSettings, user_id: int
) -> PersonDetails:
    """One person's page: their projects, live sessions and tokens, last sign-in."""
    user = await _person(session, user_id)
    memberships = await session.execute(
        select(Project.key, Project.name, Membership.role)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == user_id)
        .order_by(Project.key)
    )
    last_sign_in = await session.scalar(
        select(func.max(AuthSession.created_at)).where(AuthSession.user_id == user_id)
    )
    return PersonDetails(
        user,
        [PersonProject(key, name, role) for key, name, role in memberships],
        len(await login_sessions.active_sessions(session, settings, user_id)),
        len(await api_tokens.active_tokens(session, user_id)),
        last_sign_in,
    )


async def _person(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such person.")
    return user


async def _active_admins_locked(session: AsyncSession) -> set[int]:
    """The ids of the active site admins, their rows locked until the commit: every change
    that could leave the site without an admin takes this first, so two admins unmaking (or
    deactivating) each other at once queue here, and the second sees the first's change
    (PostgreSQL re-reads a row it waited for; SQLite's IMMEDIATE transaction holds the
    whole database)."""
    ids = await session.scalars(
        select(User.id)
        .where(User.is_admin.is_(True), User.deactivated_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    )
    return set(ids)


def _require_admin(actor: User, admins: set[int]) -> None:
    if actor.id not in admins:
        raise Forbidden("You are no longer a site admin.")


async def require_acting_admin(session: AsyncSession, actor: User) -> None:
    """Refuse an actor who stopped being an active admin since the request began."""
    row = await session.get(User, actor.id, populate_existing=True)
    if row is None or not row.is_admin or row.deactivated_at is not None:
        raise Forbidden("You are no longer a site admin.")


@use_case
async def deactivate(
    session: AsyncSession, actor: User, user_id: int, origin: audit.Origin = audit.NO_ORIGIN
) -> User:
    """Deactivate an account: in this one commit its login sessions and API tokens are
    revoked, and once it commits its open streams end (here and, on PostgreSQL, in every
    worker). Refused for oneself, for an account deactivated already, and for an unknown one."""
    if user_id == actor.id:
        raise Invalid(NOT_YOURSELF)
    _require_admin(actor, await _active_admins_locked(session))
    user = await _person(session, user_id)
    if user.deactivated_at is not None:
        raise Invalid(f"{user.display_name} is deactivated already.")
    now = utcnow()
    user.deactivated_at = now
    sessions = await login_sessions.revoke_sessions(session, user.id)
    tokens = (
        await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    ).rowcount
    after_commit.note_account_closed(session, user.id)
    if session.bind.dialect.name == "postgresql":
        # Delivered at the commit (and dropped by a rollback), like the activity NOTIFY.
        await session.execute(select(func.pg_notify(ACCOUNTS_CHANNEL, str(user.id))))
    audit.record(
        session,
        audit.AuditAction.ADMIN_DEACTIVATED,
        actor=actor,
        subject=user,
        origin=origin,
        sessions_ended=sessions,
        tokens_revoked=tokens,
    )
    return user


@use_case
async def reactivate(
    session: AsyncSession, actor: User, user_id: int, origin: audit.Origin = audit.NO_ORIGIN
) -> User:
    """Let a deactivated account sign in again (its old sessions and tokens stay revoked)."""
    await require_acting_admin(session, actor)
    user = await _person(session, user_id)
    if user.deactivated_at is None:
        raise Invalid(f"{user.display_name} is active already.")
    user.deactivated_at = None
    audit.record(
        session, audit.AuditAction.ADMIN_REACTIVATED, actor=actor, subject=user, origin=origin
    )
    return user


@use_case
async def set_admin(
    session: AsyncSession,
    actor: User,
    user_id: int,
    make_admin: bool,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """Make someone a site admin, or unmake one: never the last active admin (the admins'
    rows are locked for the check, so concurrent changes cannot both pass it)."""
    admins = await _active_admins_locked(session)
    _require_admin(actor, admins)
    user = await _person(session, user_id)
    if make_admin:
        if user.deactivated_at is not None:
            raise Invalid(f"{user.display_name} is deactivated: reactivate them first.")
        if user.is_admin:
            raise Invalid(f"{user.display_name} is an admin already.")
        user.is_admin = True
        action = audit.AuditAction.ADMIN_GRANTED
    else:
        if not user.is_admin:
            raise Invalid(f"{user.display_name} is not an admin.")
        if admins - {user.id} == set():
            raise Invalid(LAST_ADMIN)
        user.is_admin = False
        action = audit.AuditAction.ADMIN_REVOKED
    audit.record(session, action, actor=actor, subject=user, origin=origin)
    return user


@use_case
async def reset_two_factor(
    session: AsyncSession, actor: User, user_id: int, origin: audit.Origin = audit.NO_ORIGIN
) -> User:
    """Remove a person's second factors (they lost their phone): TOTP, recovery codes and
    passkeys, with the audit row."""
    await require_acting_admin(session, actor)
    user = await _person(session, user_id)
    await two_factor.reset(session, user.id)
    audit.record(
        session, audit.AuditAction.ADMIN_RESET_TWO_FACTOR, actor=actor, subject=user, origin=origin
    )
    return user
