"""Accounts: sign-up with a validated address, login sessions that can be revoked, resets."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, Forbidden, Invalid, TooManyRequests
from app.mail import enqueue_mail
from app.models import AccountToken, ApiToken, AuthSession, LoginThrottle, TokenPurpose, User
from app.security import (
    LinkSigner,
    PasswordHasher,
    new_token,
    password_problem,
    token_digest,
)
from app.services.transaction import use_case

EMAIL_LINK_LIFETIME = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
    TokenPurpose.CHANGE_EMAIL: timedelta(hours=24),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}
# Failed logins before delays start, and the longest delay: slow enough to stop guessing,
# never a lockout that an attacker could use to keep the owner out.
FREE_LOGIN_FAILURES = 3
LONGEST_LOGIN_DELAY = timedelta(minutes=15)
# last_seen_at is written at most this often, so that reading a page is not a write.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
WRONG_CREDENTIALS = "Wrong email or password."
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


def _display_name_problem(name: str) -> str | None:
    if not name:
        return "Tell us what to call you."
    if len(name) > DISPLAY_NAME_MAX:
        return f"Use at most {DISPLAY_NAME_MAX} characters."
    if any(unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in name):
        return "A name cannot contain line breaks or control characters."
    return None


def _email_problem(raw: str) -> tuple[str, str | None]:
    try:
        return normalise_email(raw), None
    except Invalid as error:
        return raw.strip(), error.message


def _signup_problem(settings: AccountSettings, email: str) -> str | None:
    if settings.signup_mode == "closed":
        return "Sign-up is closed on this site; ask an administrator for an account."
    domain = email.rsplit("@", 1)[-1]
    if settings.signup_mode == "domains" and domain not in settings.signup_domains:
        allowed = ", ".join(sorted(settings.signup_domains))
        return f"Only addresses at {allowed} may sign up here."
    return None


# --- Sign-up and address validation -----------------------------------------------------------


@use_case
async def sign_up(
    session: AsyncSession,
    settings: AccountSettings,
    *,
    email: str,
    display_name: str,
    password: str,
) -> User:
    """Create an unvalidated account and queue its validation mail, in one commit. Raises
    Invalid with every field's problem in `details['errors']`; nothing is written then."""
    email, email_error = _email_problem(email)
    display_name = display_name.strip()
    errors: dict[str, str] = {}
    if email_error:
        errors["email"] = email_error
    elif signup_error := _signup_problem(settings, email):
        errors["email"] = signup_error
    elif await _email_taken(session, email):
        errors["email"] = "An account with this address exists. Log in, or reset its password."
    if name_error := _display_name_problem(display_name):
        errors["display_name"] = name_error
    if password_error := password_problem(password, email):
        errors["password"] = password_error
    if errors:
        raise Invalid("Please correct the marked fields.", errors=errors)

    user = User(
        email=email,
        handle=await unique_handle(session, email),
        display_name=display_name,
        password_hash=await settings.hasher.hash(password),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as error:  # the same address, signed up a moment ago
        raise Invalid(
            "Please correct the marked fields.",
            errors={"email": "An account with this address exists."},
        ) from error
    await _send_address_link(session, settings, user, TokenPurpose.VERIFY_EMAIL, email)
    await session.commit()
    return user


async def _email_taken(session: AsyncSession, email: str, *, besides: int | None = None) -> bool:
    query = select(User.id).where(User.email == email)
    if besides is not None:
        query = query.where(User.id != besides)
    return await session.scalar(query) is not None


async def _issue_token(
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


async def _send_address_link(
    session: AsyncSession,
    settings: AccountSettings,
    user: User,
    purpose: TokenPurpose,
    email: str,
) -> None:
    signed = await _issue_token(session, settings, user, purpose, email)
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


async def _redeem_token(
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


@use_case
async def verify_email(session: AsyncSession, settings: AccountSettings, signed: str) -> User:
    """Mark the address validated. Raises Invalid for a bad link."""
    _, user = await _redeem_token(session, settings, TokenPurpose.VERIFY_EMAIL, signed)
    user.email_verified_at = user.email_verified_at or utcnow()
    await session.commit()
    return user


@use_case
async def resend_verification(
    session: AsyncSession, settings: AccountSettings, user_id: int
) -> None:
    user = await session.get(User, user_id)
    if user is None or user.email_verified_at is not None:
        return
    await _send_address_link(session, settings, user, TokenPurpose.VERIFY_EMAIL, user.email)
    await session.commit()


# --- Login, sessions, logout ------------------------------------------------------------------


def _login_delay(throttle: LoginThrottle | None) -> timedelta:
    if throttle is None or throttle.failures <= FREE_LOGIN_FAILURES:
        return timedelta(0)
    seconds = 2 ** (throttle.failures - FREE_LOGIN_FAILURES)
    return min(timedelta(seconds=seconds), LONGEST_LOGIN_DELAY)


async def log_in(
    session: AsyncSession, settings: AccountSettings, *, email: str, password: str
) -> User:
    """The user with these credentials. Raises Invalid with the same message for an unknown
    address and a wrong password (at the same cost), or TooManyRequests while the address
    must wait after repeated failures."""
    try:
        email = normalise_email(email)
    except Invalid:
        await settings.hasher.verify(None, password)
        raise Invalid(WRONG_CREDENTIALS) from None
    throttle = await session.get(LoginThrottle, email)
    if throttle is not None:
        wait_until = throttle.last_failure_at + _login_delay(throttle)
        if wait_until > utcnow():
            seconds = math.ceil((wait_until - utcnow()).total_seconds())
            raise TooManyRequests(
                seconds, f"Too many failed attempts. Try again in {seconds} seconds."
            )
    user = await session.scalar(select(User).where(User.email == email))
    if not await settings.hasher.verify(user.password_hash if user else None, password):
        await _record_login_failure(session, email)
        raise Invalid(WRONG_CREDENTIALS)
    assert user is not None
    await _record_login_success(session, settings, user, password, throttle is not None)
    return user


@use_case
async def _record_login_failure(session: AsyncSession, email: str) -> None:
    throttle = await session.get(LoginThrottle, email)
    if throttle is None:
        session.add(LoginThrottle(email=email, failures=1, last_failure_at=utcnow()))
    else:
        throttle.failures += 1
        throttle.last_failure_at = utcnow()
    await session.commit()


@use_case
async def _record_login_success(
    session: AsyncSession, settings: AccountSettings, user: User, password: str, throttled: bool
) -> None:
    if throttled:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.email == user.email))
    if user.password_hash and settings.hasher.needs_rehash(user.password_hash):
        # The parameters changed since this hash was made; the password is at hand, so upgrade.
        user.password_hash = await settings.hasher.hash(password)
        session.add(user)
    await session.commit()


@use_case
async def start_session(
    session: AsyncSession,
    settings: AccountSettings,
    user: User,
    *,
    remember: bool,
    user_agent: str = "",
    client_address: str = "",
) -> str:
    """Open a login session and return its secret for the cookie (a new one at every login)."""
    secret = new_token()
    lifetime = settings.remember_max if remember else settings.session_max
    session.add(
        AuthSession(
            user_id=user.id,
            token_digest=token_digest(secret),
            remember=remember,
            expires_at=utcnow() + lifetime,
            user_agent=user_agent[:200],
            client_address=client_address[:64],
        )
    )
    await session.commit()
    return secret


def _is_live(auth_session: AuthSession, settings: AccountSettings, now: datetime) -> bool:
    """Not revoked, within its absolute lifetime, and used within its idle lifetime."""
    idle_limit = settings.remember_idle if auth_session.remember else settings.session_idle
    return (
        auth_session.revoked_at is None
        and auth_session.expires_at > now
        and auth_session.last_seen_at + idle_limit > now
    )


# Every logged-in request's first query: built once (see access.PROJECT_WITH_ROLE).
SESSION_AND_USER = (
    select(AuthSession, User)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_digest == bindparam("digest"))
)


async def resume_session(
    session: AsyncSession, settings: AccountSettings, secret: str
) -> tuple[AuthSession, User] | None:
    """The live session and its user for a cookie's secret, or None when it is unknown,
    revoked, idle too long or past its absolute lifetime."""
    row = (await session.execute(SESSION_AND_USER, {"digest": token_digest(secret)})).one_or_none()
    if row is None:
        return None
    auth_session, user = row
    now = utcnow()
    if not _is_live(auth_session, settings, now):
        return None
    if now - auth_session.last_seen_at > SESSION_TOUCH_INTERVAL:
        await _touch_session(session, auth_session.id, now)
    return auth_session, user


@use_case
async def _touch_session(session: AsyncSession, auth_session_id: int, now: datetime) -> None:
    await session.execute(
        update(AuthSession).where(AuthSession.id == auth_session_id).values(last_seen_at=now)
    )
    await session.commit()


@use_case
async def end_session(session: AsyncSession, auth_session_id: int) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.commit()


async def _revoke_sessions(session: AsyncSession, user_id: int, *, keep: int | None = None) -> int:
    query = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    result = await session.execute(query.values(revoked_at=utcnow()))
    return result.rowcount


@use_case
async def end_other_sessions(session: AsyncSession, user_id: int, keep: int) -> int:
    """Log out every session of the user but `keep`; returns how many were ended."""
    ended = await _revoke_sessions(session, user_id, keep=keep)
    await session.commit()
    return ended


async def active_sessions(
    session: AsyncSession, settings: AccountSettings, user_id: int
) -> list[AuthSession]:
    now = utcnow()
    rows = await session.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.last_seen_at.desc())
    )
    return [row for row in rows if _is_live(row, settings, now)]


# --- Password reset and changes ---------------------------------------------------------------


@use_case
async def request_password_reset(
    session: AsyncSession, settings: AccountSettings, email: str
) -> None:
    """Mail a reset link if an account has this address; answer the same either way."""
    try:
        email = normalise_email(email)
    except Invalid:
        return
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        return
    signed = await _issue_token(session, settings, user, TokenPurpose.RESET_PASSWORD, email)
    enqueue_mail(
        session,
        to_address=email,
        to_name=user.display_name,
        template="reset_password",
        name=user.display_name,
        link=settings.link("/auth/reset/" + signed),
        base_url=settings.base_url,
    )
    await session.commit()


async def check_reset_link(session: AsyncSession, settings: AccountSettings, signed: str) -> None:
    """Raises Invalid if the reset link cannot be used (so the form is not shown for nothing)."""
    try:
        await _redeem_token(session, settings, TokenPurpose.RESET_PASSWORD, signed)
    finally:
        await session.rollback()  # only looking: the token stays unused


@use_case
async def reset_password(
    session: AsyncSession, settings: AccountSettings, signed: str, new_password: str
) -> User:
    """Set a new password from a reset link; every session and API token of the account is
    revoked and a notice is mailed. Raises Invalid for a bad link or password (the link stays
    usable after a refused password)."""
    _, user = await _redeem_token(session, settings, TokenPurpose.RESET_PASSWORD, signed)
    if problem := password_problem(new_password, user.email):
        raise Invalid(problem, field="password")
    await _set_password(session, settings, user, new_password)
    await _revoke_sessions(session, user.id)
    # A reset is what someone does after losing control of the account: whatever was signed
    # in with it is cut off, API tokens included (a plain password change keeps them).
    await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    # Whoever reads the mailbox owns the address: a reset validates it too.
    user.email_verified_at = user.email_verified_at or utcnow()
    await session.execute(delete(LoginThrottle).where(LoginThrottle.email == user.email))
    await session.commit()
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
) -> None:
    """Change the password (the current one is required); every other session is revoked."""
    user = await _user(session, user_id)
    if not await settings.hasher.verify(user.password_hash, current_password):
        raise Invalid("That is not your current password.", field="current_password")
    if problem := password_problem(new_password, user.email):
        raise Invalid(problem, field="new_password")
    await _set_password(session, settings, user, new_password)
    await _revoke_sessions(session, user.id, keep=keep_session)
    await session.commit()


@use_case
async def change_display_name(session: AsyncSession, user_id: int, display_name: str) -> User:
    display_name = display_name.strip()
    if problem := _display_name_problem(display_name):
        raise Invalid(problem, field="display_name")
    user = await _user(session, user_id)
    user.display_name = display_name
    await session.commit()
    return user


@use_case
async def set_mail_notifications(session: AsyncSession, user_id: int, enabled: bool) -> None:
    """Turn the mail about watched issues on or off."""
    user = await _user(session, user_id)
    user.notify_by_email = enabled
    await session.commit()


@use_case
async def request_email_change(
    session: AsyncSession,
    settings: AccountSettings,
    user_id: int,
    *,
    new_email: str,
    current_password: str,
) -> None:
    """Mail a confirmation link to the new address; the account keeps its address until the
    link is followed."""
    user = await _user(session, user_id)
    if not await settings.hasher.verify(user.password_hash, current_password):
        raise Invalid("That is not your current password.", field="current_password")
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise Invalid("That is already your address.", field="email")
    if await _email_taken(session, new_email):
        raise Invalid("Another account uses that address.", field="email")
    await _send_address_link(session, settings, user, TokenPurpose.CHANGE_EMAIL, new_email)
    await session.commit()


@use_case
async def confirm_email_change(
    session: AsyncSession, settings: AccountSettings, signed: str
) -> User:
    token, user = await _redeem_token(session, settings, TokenPurpose.CHANGE_EMAIL, signed)
    if await _email_taken(session, token.email, besides=user.id):
        raise Conflict("Another account took that address meanwhile.")
    user.email = token.email
    user.email_verified_at = utcnow()
    await session.commit()
    return user


async def _user(session: AsyncSession, user_id: int) -> User:
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
        if problem := _display_name_problem(display_name):
            raise Invalid(problem, field="display_name")
        user = User(
            email=email, handle=await unique_handle(session, email), display_name=display_name
        )
        session.add(user)
    user.password_hash = await settings.hasher.hash(password)
    user.is_admin = True
    user.email_verified_at = user.email_verified_at or utcnow()
    await session.commit()
    return user


async def live_sessions(
    session: AsyncSession, settings: AccountSettings, auth_session_ids: Iterable[int]
) -> dict[int, User]:
    """Of these login sessions, the ones still live, with their users: what the live streams
    of a worker check all at once, now and then."""
    wanted = sorted(set(auth_session_ids))
    now, live = utcnow(), {}
    for start in range(0, len(wanted), 500):  # SQLite takes a limited number of parameters
        rows = await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id.in_(wanted[start : start + 500]))
        )
        for auth_session, user in rows:
            if _is_live(auth_session, settings, now):
                live[auth_session.id] = user
    return live


async def session_still_valid(
    session: AsyncSession, settings: AccountSettings, auth_session_id: int
) -> User | None:
    """The user of a login session if it is still live (not revoked, not expired): what a long
    stream checks now and then."""
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == auth_session_id)
        )
    ).one_or_none()
    if row is None:
        return None
    auth_session, user = row
    return user if _is_live(auth_session, settings, utcnow()) else None
