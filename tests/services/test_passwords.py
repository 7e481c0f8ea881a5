"""Passwords: a reset link for known addresses only, a reset ends everything, a change keeps one."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.models import AccountToken, ApiToken, AuthSession, LoginThrottle, OutboxMessage, User
from app.security import token_digest
from app.services import api_tokens, login_sessions, passwords
from app.services.accounts import AccountSettings
from tests.factories import make_user
from tests.pages import PASSWORD
from tests.services.rows import count, rows_of, signed_links

NEW_PASSWORD = "a brand new passphrase"


async def make_account(
    session: AsyncSession, settings: AccountSettings, *, validated: bool = True
) -> User:
    password_hash = await settings.hasher.hash(PASSWORD)
    return await make_user(
        session, email="ann@example.com", validated=validated, password_hash=password_hash
    )


async def reset_link(session: AsyncSession, settings: AccountSettings) -> str:
    await passwords.request_password_reset(session, settings, "ann@example.com")
    [link] = await signed_links(session, "reset_password", "ann@example.com")
    return link


async def mail_templates(session: AsyncSession) -> list[str]:
    return [mail.template for mail in await rows_of(session, OutboxMessage)]


async def log_in_twice(session: AsyncSession, settings: AccountSettings, user: User) -> list[int]:
    """Two login sessions of `user` (here and elsewhere); returns their ids."""
    ids = []
    for _ in range(2):
        secret = await login_sessions.start_session(session, settings, user, remember=False)
        mine = AuthSession.token_digest == token_digest(secret)
        ids.append(await session.scalar(select(AuthSession.id).where(mine)))
    return ids


async def revoked(session: AsyncSession, model: type) -> list[bool]:
    return [row.revoked_at is not None for row in await rows_of(session, model)]


# --- Asking for a reset -----------------------------------------------------------------------


async def test_a_reset_link_is_mailed_to_a_known_address_only_with_the_same_answer(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings)
    answers = [
        await passwords.request_password_reset(session, account_settings, email)
        for email in (" ANN@Example.com ", "nobody@example.com", "not an address")
    ]
    assert answers == [None, None, None]
    mails = await rows_of(session, OutboxMessage)
    assert [(m.to_address, m.template) for m in mails] == [("ann@example.com", "reset_password")]
    assert "http://issues.test/auth/reset/" in mails[0].text_body
    [token] = await rows_of(session, AccountToken)
    assert (token.user_id, token.purpose, token.used_at) == (ann.id, "reset_password", None)


async def test_looking_at_a_reset_link_does_not_use_it(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await make_account(session, account_settings)
    link = await reset_link(session, account_settings)
    for _ in range(2):
        await passwords.check_reset_link(session, account_settings, link)
    [token] = await rows_of(session, AccountToken)
    assert token.used_at is None
    with pytest.raises(Invalid):
        await passwords.check_reset_link(session, account_settings, link[:-3] + "AAA")


async def test_a_newer_reset_link_voids_the_older(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await make_account(session, account_settings)
    for _ in range(2):
        await passwords.request_password_reset(session, account_settings, "ann@example.com")
    older, newer = await signed_links(session, "reset_password", "ann@example.com")
    with pytest.raises(Invalid):
        await passwords.reset_password(session, account_settings, older, NEW_PASSWORD)
    await passwords.reset_password(session, account_settings, newer, NEW_PASSWORD)


# --- Resetting --------------------------------------------------------------------------------


async def test_a_reset_sets_the_password_and_ends_every_session_and_api_token(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings)
    await log_in_twice(session, account_settings, ann)
    await api_tokens.create_token(session, ann, name="ci", scope="write")
    link = await reset_link(session, account_settings)
    await passwords.reset_password(session, account_settings, link, NEW_PASSWORD)
    [user] = await rows_of(session, User)
    assert await account_settings.hasher.verify(user.password_hash, NEW_PASSWORD)
    assert await revoked(session, AuthSession) == [True, True]
    assert await revoked(session, ApiToken) == [True]
    assert await mail_templates(session) == ["reset_password", "password_changed"]
    with pytest.raises(Invalid, match="invalid or has expired"):
        await passwords.reset_password(session, account_settings, link, "yet another passphrase")


async def test_a_refused_new_password_changes_nothing_and_the_link_stays_usable(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings)
    await log_in_twice(session, account_settings, ann)
    link = await reset_link(session, account_settings)
    with pytest.raises(Invalid) as refusal:
        await passwords.reset_password(session, account_settings, link, "short")
    assert refusal.value.field == "password"
    [user] = await rows_of(session, User)
    assert user.password_hash == ann.password_hash
    assert await revoked(session, AuthSession) == [False, False]
    assert await mail_templates(session) == ["reset_password"]
    await passwords.reset_password(session, account_settings, link, NEW_PASSWORD)


async def test_a_reset_validates_the_address_and_clears_failed_logins(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await make_account(session, account_settings, validated=False)
    session.add(LoginThrottle(email="ann@example.com", failures=7))
    await session.commit()
    link = await reset_link(session, account_settings)
    await passwords.reset_password(session, account_settings, link, NEW_PASSWORD)
    [user] = await rows_of(session, User)
    assert user.email_verified_at is not None
    assert await count(session, LoginThrottle) == 0


# --- Changing it --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "field"),
    [
        ("not my password", NEW_PASSWORD, "current_password"),
        (PASSWORD, "short", "new_password"),
        (PASSWORD, "ann@example.com", "new_password"),
    ],
)
async def test_a_refused_password_change_changes_nothing(
    session: AsyncSession, account_settings: AccountSettings, current: str, new: str, field: str
) -> None:
    ann = await make_account(session, account_settings)
    here, _ = await log_in_twice(session, account_settings, ann)
    with pytest.raises(Invalid) as refusal:
        await passwords.change_password(
            session,
            account_settings,
            ann.id,
            current_password=current,
            new_password=new,
            keep_session=here,
        )
    assert refusal.value.field == field
    [user] = await rows_of(session, User)
    assert user.password_hash == ann.password_hash
    assert await revoked(session, AuthSession) == [False, False]
    assert await count(session, OutboxMessage) == 0


async def test_a_password_change_keeps_the_current_session_and_ends_the_others(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings)
    elsewhere, here = await log_in_twice(session, account_settings, ann)
    await api_tokens.create_token(session, ann, name="ci", scope="write")
    await passwords.change_password(
        session,
        account_settings,
        ann.id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        keep_session=here,
    )
    [user] = await rows_of(session, User)
    assert await account_settings.hasher.verify(user.password_hash, NEW_PASSWORD)
    assert not await account_settings.hasher.verify(user.password_hash, PASSWORD)
    sessions = {row.id: row.revoked_at is not None for row in await rows_of(session, AuthSession)}
    assert sessions == {elsewhere: True, here: False}
    assert await revoked(session, ApiToken) == [False]  # only a reset cuts off API tokens
    [mail] = await rows_of(session, OutboxMessage)
    assert (mail.to_address, mail.template) == ("ann@example.com", "password_changed")
