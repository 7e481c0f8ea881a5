"""Accounts: their settings and rules, the mailed one-time links, profile and address changes,
admins. Sign-up, logins and passwords have their own modules (registration, login_sessions,
passwords)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, Forbidden, Invalid
from app.models import AccountToken, TokenPurpose, User
from app.outbound.mail import enqueue_mail
from app.security import (
    LinkSigner,
    PasswordHasher,
    new_token,
    password_problem,
    token_digest,
)
from app.services import audit
from app.services.transaction import use_case

EMAIL_LINK_LIFETIME = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
    TokenPurpose.CHANGE_EMAIL: timedelta(hours=24),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}
DISPLAY_NAME_MAX = 100


@dataclass(frozen=True)
class AccountSettings:
    """What the account use cases need from the configuration."""

    base_url: str
    signer: LinkSigner
    hasher: PasswordHasher
    signup_mode: str = "open"
    signup_domains: frozenset[str] = frozenset()
    session_idle: timedelta = timedelta(days=1)
    session_max: timedelta = timedelta(days=3)
    remember_idle: timedelta = timedelta(days=14)
    remember_max: timedelta = timedelta(days=30)
    # Failed logins allowed from one address per window: per account, and in all.
    address_account_failures: int = 10
    address_failures: int = 100
    failure_window_seconds: int = 900
    limit_addresses: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AccountSettings:
        domains = {d.strip().lower() for d in config["SIGNUP_DOMAINS"].split(",") if d.strip()}
        return cls(
            base_url=config["BASE_URL"],
            signer=LinkSigner(config["SECRET_KEY"]),
            hasher=PasswordHasher(config["PASSWORD_HASH_PROFILE"]),
            signup_mode=config["SIGNUP_MODE"],
            signup_domains=frozenset(domains),
            session_idle=timedelta(seconds=config["AUTH_SESSION_IDLE_SECONDS"]),
            session_max=timedelta(seconds=config["AUTH_SESSION_MAX_SECONDS"]),
            remember_idle=timedelta(seconds=config["AUTH_REMEMBER_IDLE_SECONDS"]),
            remember_max=timedelta(seconds=config["AUTH_REMEMBER_MAX_SECONDS"]),
            address_account_failures=config["LOGIN_FAILURES_PER_ADDRESS_AND_ACCOUNT"],
            address_failures=config["LOGIN_FAILURES_PER_ADDRESS"],
            failure_window_seconds=config["LOGIN_FAILURE_WINDOW_SECONDS"],
            limit_addresses=config["RATE_LIMIT_ENABLED"],
        )

    def link(self, path: str) -> str:
        """An absolute link for an email: always from BASE_URL, never from a request's Host."""
        return f"{self.base_url}{path}"


# --- Validation -------------------------------------------------------------------------------


def normalise_email(raw: str) -> str:
    """The address as stored: trimmed and lower-case. Raises Invalid(field='email')."""
    candidate = raw.strip()
    try:
        # Plain ASCII addresses only: not every mail server takes SMTPUTF8.
        validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise Invalid(str(error), field="email") from error
    if len(candidate) > 320:
        raise Invalid("That address is too long.", field="email")
    return candidate.lower()


HANDLE_CHARACTERS = re.compile(r"[^a-z0-9._-]")


async def unique_handle(session: AsyncSession, email: str) -> str:
    """A free @handle made from the address's local part: ann, ann2, ann3, ..."""
    # No trailing dots: "@ann." reads as a mention of ann followed by a full stop.
    base = HANDLE_CHARACTERS.sub("", email.split("@")[0].lower())[:30].rstrip(".") or "user"
    taken = set(
        await session.scalars(
            select(User.handle).where(or_(User.handle == base, User.handle.like(f"{base}%")))
        )
    )
    handle, suffix = base, 1
    while handle in taken:
        suffix += 1
        handle = f"{base}{suffix}"
    return handle


def display_name_problem(name: str) -> str | None:
    if not name:
        return "Tell us what to call you."
    if len(name) > DISPLAY_NAME_MAX:
        return f"Use at most {DISPLAY_NAME_MAX} characters."
    if any(unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in name):
        return "A name cannot contain line breaks or control characters."
    return None


def email_problem(raw: str) -> tuple[str, str | None]:
    try:
        return normalise_email(raw), None
    except Invalid as error:
        return raw.strip(), error.message


def signup_problem(settings: AccountSettings, email: str) -> str | None:
    if settings.signup_mode == "closed":
        return "Sign-up is closed on this site; ask an administrator for an account."
    domain = email.rsplit("@", 1)[-1]
    if settings.signup_mode == "domains" and domain not in settings.signup_domains:
        allowed = ", ".join(sorted(settings.signup_domains))
        return f"Only addresses at {allowed} may sign up here."
    return None


# --- Mailed one-time links --------------------------------------------------------------------


async def email_taken(session: AsyncSession, email: str, *, besides: int | None = None) -> bool:
    query = select(User.id).where(User.email == email)
    if besides is not None:
        query = query.where(User.id != besides)
    return await session.scalar(query) is not None


async def issue_token(
    session: AsyncSession, settings: AccountSettings, user: User, purpose: TokenPurpose, email: str
) -> str:
    """A new one-time token for `purpose`, voiding the user's older unused ones; returns the
    signed value to put in a link. The caller commits."""
    now = utcnow()
    await session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose.value,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    raw = new_token()
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose.value,
            token_digest=token_digest(raw),
            email=email,
            expires_at=now + EMAIL_LINK_LIFETIME[purpose],
        )
    )
    return settings.signer.sign(purpose.value, {"t": raw})


async def send_address_link(
    session: AsyncSession,
    settings: AccountSettings,
    user: User,
    purpose: TokenPurpose,
    email: str,
) -> None:
    signed = await issue_token(session, settings, user, purpose, email)
    path = "/auth/verify/" if purpose is TokenPurpose.VERIFY_EMAIL else "/auth/confirm-email/"
    enqueue_mail(
        session,
        to_address=email,
        to_name=user.display_name,
        template=purpose.value,
        name=user.display_name,
        link=settings.link(path + signed),
        base_url=settings.base_url,
    )


async def redeem_token(
    session: AsyncSession, settings: AccountSettings, purpose: TokenPurpose, signed: str
) -> tuple[AccountToken, User]:
    """The token and its user, marked used. Raises Invalid for a forged, expired, used or
    superseded link, or one whose account no longer has the address it was sent to."""
    refused = Invalid("This link is invalid or has expired. Ask for a new one.")
    lifetime = EMAIL_LINK_LIFETIME[purpose]
    payload = settings.signer.unsign(purpose.value, signed, int(lifetime.total_seconds()))
    if payload is None or not isinstance(payload.get("t"), str):
        raise refused
    token = await session.scalar(
        select(AccountToken)
        .where(
            AccountToken.token_digest == token_digest(payload["t"]),
            AccountToken.purpose == purpose.value,
        )
        .with_for_update()
    )
    now = utcnow()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise refused
    user = await session.get(User, token.user_id)
    if user is None:
        raise refused
    # Bound to the address it was sent to: a link for an old address validates nothing.
    if purpose is not TokenPurpose.CHANGE_EMAIL and user.email != token.email:
        raise refused
    token.used_at = now
    return token, user


# --- Profile and address changes, admins ------------------------------------------------------


@use_case
async def change_display_name(session: AsyncSession, user_id: int, display_name: str) -> User:
    display_name = display_name.strip()
    if problem := display_name_problem(display_name):
        raise Invalid(problem, field="display_name")
    user = await user_by_id(session, user_id)
    user.display_name = display_name
    return user


@use_case
async def set_mail_notifications(session: AsyncSession, user_id: int, enabled: bool) -> None:
    """Turn the mail about watched issues on or off."""
    user = await user_by_id(session, user_id)
    user.notify_by_email = enabled


@use_case
async def request_email_change(
    session: AsyncSession,
    settings: AccountSettings,
    user_id: int,
    *,
    new_email: str,
    current_password: str,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Mail a confirmation link to the new address; the account keeps its address until the
    link is followed."""
    user = await user_by_id(session, user_id)
    if not await settings.hasher.verify(user.password_hash, current_password):
        raise Invalid("That is not your current password.", field="current_password")
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise Invalid("That is already your address.", field="email")
    if await email_taken(session, new_email):
        raise Invalid("Another account uses that address.", field="email")
    await send_address_link(session, settings, user, TokenPurpose.CHANGE_EMAIL, new_email)
    audit.record(
        session,
        audit.AuditAction.EMAIL_CHANGE_REQUESTED,
        actor=user,
        origin=origin,
        new_email=new_email,
    )


@use_case
async def confirm_email_change(
    session: AsyncSession,
    settings: AccountSettings,
    signed: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    token, user = await redeem_token(session, settings, TokenPurpose.CHANGE_EMAIL, signed)
    if await email_taken(session, token.email, besides=user.id):
        raise Conflict("Another account took that address meanwhile.")
    old_email = user.email
    user.email = token.email
    user.email_verified_at = utcnow()
    audit.record(
        session,
        audit.AuditAction.EMAIL_CHANGED,
        actor=user,
        origin=origin,
        old_email=old_email,
        new_email=user.email,
    )
    return user


async def user_by_id(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise Forbidden("No such account.")
    return user


@use_case
async def create_admin(
    session: AsyncSession,
    settings: AccountSettings,
    *,
    email: str,
    display_name: str,
    password: str,
) -> User:
    """A validated site administrator, or an existing account promoted to one."""
    email = normalise_email(email)
    if problem := password_problem(password, email):
        raise Invalid(problem, field="password")
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        display_name = display_name.strip() or email.split("@")[0]
        if problem := display_name_problem(display_name):
            raise Invalid(problem, field="display_name")
        user = User(
            email=email, handle=await unique_handle(session, email), display_name=display_name
        )
        session.add(user)
    user.password_hash = await settings.hasher.hash(password)
    user.is_admin = True
    user.email_verified_at = user.email_verified_at or utcnow()
    return user
