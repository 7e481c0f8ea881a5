"""Logging in and the login sessions it starts: throttled, revocable, checked on every request."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Forbidden, Invalid, TooManyRequests
from app.models import AuthSession, LoginThrottle, User
from app.security import new_token, token_digest
from app.services import access, audit, rate_limits
from app.services.accounts import AccountSettings, normalise_email
from app.services.transaction import use_case

# Failed logins before delays start, and the longest delay: slow enough to stop guessing,
# never a lockout that an attacker could use to keep the owner out.
FREE_LOGIN_FAILURES = 3
LONGEST_LOGIN_DELAY = timedelta(minutes=15)
# last_seen_at is written at most this often, so that reading a page is not a write.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
WRONG_CREDENTIALS = "Wrong email or password."
ACCOUNT_DEACTIVATED = "This account is deactivated. Ask an admin."


def refuse_deactivated(user: User) -> None:
    """Raise Forbidden for an account a site admin deactivated: the one check every way of
    signing in passes (start_session), and the password form before it."""
    if user.deactivated_at is not None:
        raise Forbidden(ACCOUNT_DEACTIVATED)


def _login_delay(throttle: LoginThrottle | None) -> timedelta:
    if throttle is None or throttle.failures <= FREE_LOGIN_FAILURES:
        return timedelta(0)
    seconds = 2 ** (throttle.failures - FREE_LOGIN_FAILURES)
    return min(timedelta(seconds=seconds), LONGEST_LOGIN_DELAY)


async def log_in(
    session: AsyncSession,
    settings: AccountSettings,
    *,
    email: str,
    password: str,
    client_address: str = "",
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """The user with these credentials. Raises Invalid with the same message for an unknown
    address and a wrong password (at the same cost), or TooManyRequests while the account must
    wait after repeated failures, or while this client address has failed too often (for this
    account, or for any: a ceiling high enough for an office behind one address).

    The attempt counts against the account before the password is checked, in a transaction
    of its own that holds the account's throttle row: parallel guesses queue there, and each
    sees the ones before it. A success clears the count; only failures count per address.

    Every refusal leaves an audit row (login.failed or login.throttled) naming the address
    typed, normalised, and its account when there is one; never the password."""
    client_address = client_address or origin.address
    try:
        email = normalise_email(email)
    except Invalid:
        await settings.hasher.verify(None, password)
        await _record_refused_login(
            session, audit.AuditAction.LOGIN_FAILED, email.strip().lower(), origin
        )
        raise Invalid(WRONG_CREDENTIALS) from None
    address_keys = _address_keys(settings, client_address, email)
    try:
        await _refuse_a_failing_address(session, settings, address_keys)
        await _count_attempt(session, email)
    except TooManyRequests:
        await _record_refused_login(session, audit.AuditAction.LOGIN_THROTTLED, email, origin)
        raise
    user = await session.scalar(select(User).where(User.email == email))
    if not await settings.hasher.verify(user.password_hash if user else None, password):
        for key, limit in address_keys:
            await rate_limits.count_hit(
                session, key, limit=limit, window_seconds=settings.failure_window_seconds
            )
        await _record_refused_login(
            session, audit.AuditAction.LOGIN_FAILED, email, origin, user=user
        )
        raise Invalid(WRONG_CREDENTIALS)
    assert user is not None
    await _record_login_success(session, settings, user, password)
    if user.deactivated_at is not None:
        # Said only to the one who knows the password: to others it is a wrong password.
        raise Invalid(ACCOUNT_DEACTIVATED)
    return user


async def _record_refused_login(
    session: AsyncSession,
    action: audit.AuditAction,
    email: str,
    origin: audit.Origin,
    *,
    user: User | None = None,
) -> None:
    """The refused attempt's audit row: anonymous (nobody proved who they are), about the
    account of the address typed when one has it, so that its owner sees the attempt."""
    if user is None and email:
        user = await session.scalar(select(User).where(User.email == email))
    await audit.record_refusal(
        session, action, actor=None, subject=user, origin=origin, subject_email=email
    )


def _address_keys(
    settings: AccountSettings, client_address: str, email: str
) -> list[tuple[str, int]]:
    """The failure counters of this client address: with this account, and in all."""
    if not settings.limit_addresses or not client_address:
        return []
    return [
        (f"login-failures:{client_address}:{email}", settings.address_account_failures),
        (f"login-failures:{client_address}", settings.address_failures),
    ]


async def _refuse_a_failing_address(
    session: AsyncSession, settings: AccountSettings, address_keys: list[tuple[str, int]]
) -> None:
    for key, limit in address_keys:
        count = await rate_limits.current_count(
            session, key, limit=limit, window_seconds=settings.failure_window_seconds
        )
        if count.hits >= limit:
            minutes = math.ceil(count.reset_seconds / 60)
            raise TooManyRequests(
                count.reset_seconds,
                f"Too many failed logins from your address. Try again in {minutes} minutes, "
                "or reset your password if you have forgotten it. Others who share your "
                "network can still log in.",
            )


@use_case
async def _count_attempt(session: AsyncSession, email: str) -> None:
    """Count a login attempt for `email` (known or not), or refuse it with TooManyRequests
    while the account must wait after its failures."""
    now = utcnow()
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(LoginThrottle)
        .values(email=email, failures=0, last_failure_at=now)
        .on_conflict_do_nothing(index_elements=["email"])
    )
    # FOR UPDATE on PostgreSQL (SQLite's IMMEDIATE transaction holds the whole database).
    throttle = await session.scalar(
        select(LoginThrottle)
        .where(LoginThrottle.email == email)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert throttle is not None
    now = utcnow()  # after the wait for the row: the attempts before this one are older
    wait_until = throttle.last_failure_at + _login_delay(throttle)
    if throttle.failures and wait_until > now:
        seconds = math.ceil((wait_until - now).total_seconds())
        raise TooManyRequests(
            seconds,
            f"Too many failed attempts. Try again in {seconds} seconds, or reset your "
            "password if you have forgotten it.",
        )
    # Counted as a failure until the password proves right (then the row goes).
    throttle.failures += 1
    throttle.last_failure_at = now


@use_case
async def _record_login_success(
    session: AsyncSession, settings: AccountSettings, user: User, password: str
) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.email == user.email))
    if user.password_hash and settings.hasher.needs_rehash(user.password_hash):
        # The parameters changed since this hash was made; the password is at hand, so upgrade.
        user.password_hash = await settings.hasher.hash(password)
        session.add(user)


@use_case
async def start_session(
    session: AsyncSession,
    settings: AccountSettings,
    user: User,
    *,
    remember: bool,
    method: str = "password",
    origin: audit.Origin = audit.NO_ORIGIN,
) -> str:
    """Open a login session and return its secret for the cookie (a new one at every login).
    The audit log records the sign-in and how it was made ("password", "totp", "passkey", ...)
    in the same commit. Raises Forbidden for a deactivated account, whichever way it came."""
    refuse_deactivated(user)
    secret = new_token()
    lifetime = settings.remember_max if remember else settings.session_max
    session.add(
        AuthSession(
            user_id=user.id,
            token_digest=token_digest(secret),
            remember=remember,
            expires_at=utcnow() + lifetime,
            user_agent=origin.user_agent[:200],
            client_address=origin.address[:64],
        )
    )
    audit.record(
        session, audit.AuditAction.LOGIN_SUCCEEDED, actor=user, origin=origin, method=method
    )
    return secret


def _is_live(
    auth_session: AuthSession, settings: AccountSettings, now: datetime, user: User | None = None
) -> bool:
    """Not revoked, within its absolute lifetime, and used within its idle lifetime; and its
    `user`, when given, not deactivated (deactivation revokes the sessions too: this holds
    even for a row that a concurrent login wrote as the admin committed)."""
    idle_limit = settings.remember_idle if auth_session.remember else settings.session_idle
    return (
        (user is None or user.deactivated_at is None)
        and auth_session.revoked_at is None
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
    if not _is_live(auth_session, settings, now, user):
        return None
    if now - auth_session.last_seen_at > SESSION_TOUCH_INTERVAL:
        await _touch_session(session, auth_session.id, now)
    return auth_session, user


@use_case
async def _touch_session(session: AsyncSession, auth_session_id: int, now: datetime) -> None:
    await session.execute(
        update(AuthSession).where(AuthSession.id == auth_session_id).values(last_seen_at=now)
    )


@use_case
async def end_session(
    session: AsyncSession,
    auth_session_id: int,
    *,
    actor: User | None = None,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> None:
    """Log out one session; the audit log records it (as `actor`'s logout) when it was live."""
    ended = await session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if ended.rowcount and actor is not None:
        audit.record(session, audit.AuditAction.LOGOUT, actor=actor, origin=origin)


async def revoke_sessions(session: AsyncSession, user_id: int, *, keep: int | None = None) -> int:
    query = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    result = await session.execute(query.values(revoked_at=utcnow()))
    return result.rowcount


@use_case
async def end_other_sessions(
    session: AsyncSession,
    user_id: int,
    keep: int,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> int:
    """Log out every session of the user but `keep`; returns how many were ended. The audit
    log records the request with that count."""
    ended = await revoke_sessions(session, user_id, keep=keep)
    user = await session.get(User, user_id)
    audit.record(session, audit.AuditAction.SESSIONS_ENDED, actor=user, origin=origin, count=ended)
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
            if _is_live(auth_session, settings, now, user):
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
    return user if _is_live(auth_session, settings, utcnow(), user) else None


async def sessions_still_reading(
    session: AsyncSession,
    settings: AccountSettings,
    project_id: int,
    readers: list[tuple[int, int]],
) -> set[int]:
    """Of these (login session, user) pairs, the sessions still live whose user may read the
    project: the periodic check of every open stream, two queries per project."""
    live = await live_sessions(session, settings, (sid for sid, _ in readers))
    allowed_users = await access.readers_among(
        session, project_id, {user.id for user in live.values()}
    )
    return {
        sid
        for sid, user_id in readers
        if sid in live and live[sid].id == user_id and user_id in allowed_users
    }
