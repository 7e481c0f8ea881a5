"""The account a provider identity signs in to (decision 0025): the one linked to its
(issuer, subject), else the account with the address the provider vouches for, linked now,
else a new one under SIGNUP_MODE's rules."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Invalid
from app.models import ExternalIdentity, User
from app.services import audit
from app.services.accounts import (
    AccountSettings,
    display_name_problem,
    normalise_email,
    signup_problem,
    unique_handle,
)
from app.services.single_sign_on import ProviderIdentity, SsoRefused, SsoSettings
from app.services.transaction import use_case


@use_case
async def account_for_identity(
    session: AsyncSession,
    settings: AccountSettings,
    sso: SsoSettings,
    identity: ProviderIdentity,
    *,
    origin: audit.Origin = audit.NO_ORIGIN,
) -> User:
    """The account this provider identity signs in to: the one linked to its (issuer,
    subject); else the account with the same address, linked now, if the provider vouches for
    the address (email_verified); else a new account if SIGNUP_MODE lets this address sign up.
    Raises SsoRefused otherwise; nothing is written then. Audits the link and the sign-in."""
    now = utcnow()
    link = await session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.issuer == identity.issuer,
            ExternalIdentity.subject == identity.subject,
        )
    )
    if link is not None:
        user = await session.get(User, link.user_id)
        assert user is not None  # the link goes with its account (CASCADE)
        link.last_login_at = now
    else:
        user = await _link_or_create(session, settings, sso, identity, origin)
    audit.record(
        session,
        audit.AuditAction.SSO_LOGIN,
        actor=user,
        origin=origin,
        issuer=identity.issuer,
        provider_subject=identity.subject,
    )
    return user


async def _link_or_create(
    session: AsyncSession,
    settings: AccountSettings,
    sso: SsoSettings,
    identity: ProviderIdentity,
    origin: audit.Origin,
) -> User:
    name = sso.provider_name
    try:
        email = normalise_email(identity.email)
    except Invalid as error:
        raise SsoRefused(
            f"{name} did not give a usable email address, which an account here needs.",
            reason="no_email",
        ) from error
    if not identity.email_verified:
        # An unverified claim proves nothing: linking on it would hand anyone who can type
        # your address at the provider your account.
        raise SsoRefused(
            f"{name} has not verified your address {email}, so it cannot sign you in here. "
            f"Verify it at {name}, or log in with your password.",
            reason="unverified_email",
        )
    now = utcnow()
    user = await session.scalar(select(User).where(User.email == email))
    created = user is None
    if user is None:
        if problem := signup_problem(settings, email):
            raise SsoRefused(
                f"There is no account for {email} here, and it cannot be made: {problem}",
                reason="signup_refused",
            )
        display_name = identity.name[:100]
        if display_name_problem(display_name):
            display_name = email.split("@")[0]
        user = User(
            email=email,
            handle=await unique_handle(session, email),
            display_name=display_name,
            password_hash=None,  # signs in through the provider (a reset can add a password)
            email_verified_at=now,
        )
    else:
        # The provider vouches for the address: what the mailed link would have proved.
        user.email_verified_at = user.email_verified_at or now
    try:
        async with session.begin_nested():  # a concurrent first sign-in may insert first
            session.add(user)
            await session.flush()
            session.add(
                ExternalIdentity(
                    issuer=identity.issuer,
                    subject=identity.subject,
                    user_id=user.id,
                    email=email,
                    created_at=now,
                    last_login_at=now,
                )
            )
    except IntegrityError as error:
        raise SsoRefused(
            "Another sign-in for this account happened at the same moment. Please try again.",
            reason="concurrent_first_login",
        ) from error
    if created:
        audit.record(session, audit.AuditAction.SIGNED_UP, actor=user, origin=origin, method="sso")
    audit.record(
        session,
        audit.AuditAction.SSO_LINKED,
        actor=user,
        origin=origin,
        issuer=identity.issuer,
        provider_subject=identity.subject,
        created=created,
    )
    return user
