"""Passwords: reset by a mailed link (which ends every session and token) or changed with the
current one (which ends the other sessions)."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Invalid
from app.models import ApiToken, LoginThrottle, TokenPurpose, User
from app.outbound.mail import enqueue_mail
from app.security import password_problem
from app.services import audit
from app.services.accounts import (
    AccountSettings,
    issue_token,
    normalise_email,
    redeem_token,
    user_by_id,
)
from app.services.login_sessions import revoke_sessions
from app.services.transaction import use_case


@use_case
async def request_password_reset(
    session: AsyncSession,
    settings: AccountSettings,
    email: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Mail a reset link if an account has this address; answer the same either way. Only a
    known account's request is audited (the log is about accounts, not about guesses)."""
    try:
        email = normalise_email(email)
    except Invalid:
        return
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        return
    signed = await issue_token(session, settings, user, TokenPurpose.RESET_PASSWORD, email)
    enqueue_mail(
        session,
        to_address=email,
        to_name=user.display_name,
        template="reset_password",
        name=user.display_name,
        link=settings.link("/auth/reset/" + signed),
        base_url=settings.base_url,
    )
    audit.record(
        session, audit.AuditAction.PASSWORD_RESET_REQUESTED, actor=None, subject=user, origin=origin
    )


async def check_reset_link(session: AsyncSession, settings: AccountSettings, signed: str) -> None:
    """Raises Invalid if the reset link cannot be used (so the form is not shown for nothing)."""
    try:
        await redeem_token(session, settings, TokenPurpose.RESET_PASSWORD, signed)
    finally:
        await session.rollback()  # only looking: the token stays unused


@use_case
async def reset_password(
    session: AsyncSession,
    settings: AccountSettings,
    signed: str,
    new_password: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """Set a new password from a reset link; every session and API token of the account is
    revoked and a notice is mailed. Raises Invalid for a bad link or password (the link stays
    usable after a refused password)."""
    _, user = await redeem_token(session, settings, TokenPurpose.RESET_PASSWORD, signed)
    if problem := password_problem(new_password, user.email):
        raise Invalid(problem, field="password")
    await _set_password(session, settings, user, new_password)
    sessions_ended = await revoke_sessions(session, user.id)
    # A reset is what someone does after losing control of the account: whatever was signed
    # in with it is cut off, API tokens included (a plain password change keeps them).
    tokens_revoked = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    # Whoever reads the mailbox owns the address: a reset validates it too.
    user.email_verified_at = user.email_verified_at or utcnow()
    await session.execute(delete(LoginThrottle).where(LoginThrottle.email == user.email))
    audit.record(
        session,
        audit.AuditAction.PASSWORD_RESET,
        actor=user,
        origin=origin,
        sessions_ended=sessions_ended,
        tokens_revoked=tokens_revoked.rowcount,
    )
    return user


async def _set_password(
    session: AsyncSession, settings: AccountSettings, user: User, new_password: str
) -> None:
    user.password_hash = await settings.hasher.hash(new_password)
    enqueue_mail(
        session,
        to_address=user.email,
        to_name=user.display_name,
        template="password_changed",
        name=user.display_name,
        link=settings.link("/auth/forgot"),
        base_url=settings.base_url,
    )


@use_case
async def change_password(
    session: AsyncSession,
    settings: AccountSettings,
    user_id: int,
    *,
    current_password: str,
    new_password: str,
    keep_session: int,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Change the password (the current one is required); every other session is revoked."""
    user = await user_by_id(session, user_id)
    if not await settings.hasher.verify(user.password_hash, current_password):
        raise Invalid("That is not your current password.", field="current_password")
    if problem := password_problem(new_password, user.email):
        raise Invalid(problem, field="new_password")
    await _set_password(session, settings, user, new_password)
    sessions_ended = await revoke_sessions(session, user.id, keep=keep_session)
    audit.record(
        session,
        audit.AuditAction.PASSWORD_CHANGED,
        actor=user,
        origin=origin,
        sessions_ended=sessions_ended,
    )
