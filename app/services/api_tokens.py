"""Personal access tokens: created on the account page, shown once, resolved on every API call."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.models import ApiToken, TokenScope, User
from app.security import token_digest
from app.services import audit
from app.services.access import require_validated
from app.services.text import storable
from app.services.transaction import use_case

TOKEN_PREFIX = "iss_"  # noqa: S105 (a marker, not a secret)
# Shown in lists so that an owner can tell their tokens apart: "iss_" and 8 of the secret.
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 8
NAME_MAX = 100
EXPIRY_DAYS_MAX = 3650
TOKENS_MAX = 50
# Writing last_used_at on every call would make every read a write.
LAST_USED_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    """A token just made, with the secret that is never shown again."""

    token: ApiToken
    secret: str


def _name(name: str) -> str:
    name = storable(name).strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise Invalid(f"A token needs a name of at most {NAME_MAX} characters.", field="name")
    return name


@use_case
async def create_token(
    session: AsyncSession,
    owner: User,
    *,
    name: str,
    scope: str,
    expires_in_days: int | None = None,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> NewToken:
    """Make a token for `owner`. Raises Invalid for a bad name, scope or expiry, and when the
    owner has too many live tokens."""
    require_validated(owner)
    name = _name(name)
    try:
        scope = TokenScope(scope).value
    except ValueError:
        raise Invalid(f"A scope is one of {', '.join(TokenScope)}.", field="scope") from None
    if expires_in_days is not None and not 1 <= expires_in_days <= EXPIRY_DAYS_MAX:
        raise Invalid(
            f"A token expires after 1 to {EXPIRY_DAYS_MAX} days, or never.", field="expires"
        )
    if len(await active_tokens(session, owner.id)) >= TOKENS_MAX:
        raise Invalid(f"Revoke a token first: at most {TOKENS_MAX} at a time.", field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        user_id=owner.id,
        name=name,
        scope=scope,
        token_digest=token_digest(secret),
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    # The name and scope tell the owner which token it was; the secret never leaves NewToken.
    audit.record(
        session,
        audit.AuditAction.TOKEN_CREATED,
        actor=owner,
        origin=origin,
        token_name=name,
        scope=scope,
        expires_in_days=expires_in_days,
    )
    return NewToken(token, secret)


def _is_live(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


async def active_tokens(session: AsyncSession, user_id: int) -> list[ApiToken]:
    """The user's tokens that still work, newest first (the account page's list)."""
    now = utcnow()
    tokens = await session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return [token for token in tokens if _is_live(token, now)]


async def resolve_token(session: AsyncSession, secret: str) -> tuple[ApiToken, User] | None:
    """The live token and its user for a Bearer secret, or None when it is unknown, revoked or
    expired, or its owner deactivated. Notes the use, at most once a minute."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_digest == token_digest(secret))
        )
    ).one_or_none()
    if row is None:
        return None
    token, user = row
    now = utcnow()
    if not _is_live(token, now) or user.deactivated_at is not None:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_INTERVAL:
        await _note_use(session, token.id, now)
        set_committed_value(token, "last_used_at", now)  # as written, not a change to flush
    return token, user


@use_case
async def _note_use(session: AsyncSession, token_id: int, now: datetime) -> None:
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


@use_case
async def revoke_token(
    session: AsyncSession,
    owner: User,
    token_id: int,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Revoke one of the owner's tokens; someone else's token is NotFound."""
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != owner.id or token.revoked_at is not None:
        raise NotFound("No such token.")
    token.revoked_at = utcnow()
    audit.record(
        session,
        audit.AuditAction.TOKEN_REVOKED,
        actor=owner,
        origin=origin,
        token_name=token.name,
        scope=token.scope,
    )
