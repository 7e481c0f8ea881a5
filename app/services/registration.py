"""Sign-up: an account created unvalidated, its address validated by a mailed link."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, Invalid
from app.models import TokenPurpose, User
from app.security import password_problem
from app.services import audit
from app.services.accounts import (
    AccountSettings,
    display_name_problem,
    email_problem,
    email_taken,
    redeem_token,
    send_address_link,
    signup_problem,
    unique_handle,
)
from app.services.transaction import use_case

# Tries at a free @handle when concurrent sign-ups from alike addresses pick the same one.
HANDLE_ATTEMPTS = 3


@use_case
async def sign_up(
    session: AsyncSession,
    settings: AccountSettings,
    *,
    email: str,
    display_name: str,
    password: str,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """Create an unvalidated account and queue its validation mail, in one commit. Raises
    Invalid with every field's problem in `details['errors']`; nothing is written then."""
    email, email_error = email_problem(email)
    display_name = display_name.strip()
    errors: dict[str, str] = {}
    if email_error:
        errors["email"] = email_error
    elif signup_error := signup_problem(settings, email):
        errors["email"] = signup_error
    elif await email_taken(session, email):
        errors["email"] = "An account with this address exists. Log in, or reset its password."
    if name_error := display_name_problem(display_name):
        errors["display_name"] = name_error
    if password_error := password_problem(password, email):
        errors["password"] = password_error
    if errors:
        raise Invalid("Please correct the marked fields.", errors=errors)

    password_hash = await settings.hasher.hash(password)
    for _ in range(HANDLE_ATTEMPTS):
        user = User(
            email=email,
            handle=await unique_handle(session, email),
            display_name=display_name,
            password_hash=password_hash,
        )
        try:
            async with session.begin_nested():  # a refused insert leaves the rest standing
                session.add(user)
        except IntegrityError as error:
            if await email_taken(session, email):  # the same address, signed up a moment ago
                raise Invalid(
                    "Please correct the marked fields.",
                    errors={"email": "An account with this address exists."},
                ) from error
            continue  # another sign-up took the same @handle a moment ago: pick again
        break
    else:
        raise Conflict("So many people are signing up at once that no handle was free; try again.")
    await send_address_link(session, settings, user, TokenPurpose.VERIFY_EMAIL, email)
    # The savepoint flushed the row: the user has an id for the audit row.
    audit.record(session, audit.AuditAction.SIGNED_UP, actor=user, origin=origin)
    return user


@use_case
async def verify_email(
    session: AsyncSession,
    settings: AccountSettings,
    signed: str,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """Mark the address validated. Raises Invalid for a bad link."""
    _, user = await redeem_token(session, settings, TokenPurpose.VERIFY_EMAIL, signed)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        audit.record(session, audit.AuditAction.EMAIL_VERIFIED, actor=user, origin=origin)
    return user


@use_case
async def resend_verification(
    session: AsyncSession, settings: AccountSettings, user_id: int
) -> None:
    user = await session.get(User, user_id)
    if user is None or user.email_verified_at is not None:
        return
    await send_address_link(session, settings, user, TokenPurpose.VERIFY_EMAIL, user.email)
