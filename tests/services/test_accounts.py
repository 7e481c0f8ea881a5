"""The account itself: its display name, mail setting, address change by link, and admins."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Forbidden, Invalid
from app.models import AccountToken, OutboxMessage, User
from app.services import accounts
from app.services.accounts import AccountSettings
from tests.factories import make_user
from tests.pages import PASSWORD
from tests.services.rows import count, rows_of, signed_links


async def make_account(
    session: AsyncSession, settings: AccountSettings, *, validated: bool = True
) -> User:
    password_hash = await settings.hasher.hash(PASSWORD)
    return await make_user(
        session,
        email="ann@example.com",
        display_name="Ann",
        validated=validated,
        password_hash=password_hash,
    )


async def stored(session: AsyncSession, user_id: int) -> User:
    [user] = await rows_of(session, User, User.id == user_id)
    return user


# --- Name and mail setting --------------------------------------------------------------------


async def test_the_display_name_is_changed_trimmed(session: AsyncSession) -> None:
    ann = await make_user(session, display_name="Ann")
    await accounts.change_display_name(session, ann.id, "  Ann B. Example ")
    assert (await stored(session, ann.id)).display_name == "Ann B. Example"


@pytest.mark.parametrize("name", ["   ", "A" * 101, "Ann\nBcc: victim@example.com", "Ann\u202e"])
async def test_a_refused_display_name_changes_nothing(session: AsyncSession, name: str) -> None:
    ann = await make_user(session, display_name="Ann")
    with pytest.raises(Invalid) as refusal:
        await accounts.change_display_name(session, ann.id, name)
    assert refusal.value.field == "display_name"
    assert (await stored(session, ann.id)).display_name == "Ann"


async def test_an_account_that_is_gone_cannot_be_changed(session: AsyncSession) -> None:
    with pytest.raises(Forbidden):
        await accounts.change_display_name(session, 404, "Ghost")
    assert await count(session, User) == 0


async def test_mail_about_watched_issues_is_turned_off_and_on(session: AsyncSession) -> None:
    ann = await make_user(session)
    await accounts.set_mail_notifications(session, ann.id, False)
    assert (await stored(session, ann.id)).notify_by_email is False
    await accounts.set_mail_notifications(session, ann.id, True)
    assert (await stored(session, ann.id)).notify_by_email is True


# --- Changing the address ---------------------------------------------------------------------


async def test_a_new_address_takes_effect_from_its_link_only(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings, validated=False)
    await accounts.request_email_change(
        session, account_settings, ann.id, new_email=" Ann@New.example ", current_password=PASSWORD
    )
    assert (await stored(session, ann.id)).email == "ann@example.com"  # not yet
    [token] = await rows_of(session, AccountToken)
    assert (token.purpose, token.email) == ("change_email", "ann@new.example")
    [link] = await signed_links(session, "change_email", "ann@new.example")
    await accounts.confirm_email_change(session, account_settings, link)
    user = await stored(session, ann.id)
    assert user.email == "ann@new.example"
    assert user.email_verified_at is not None  # following the link proves the address
    with pytest.raises(Invalid, match="invalid or has expired"):
        await accounts.confirm_email_change(session, account_settings, link)


@pytest.mark.parametrize(
    ("new_email", "password", "field"),
    [
        ("ann@new.example", "not my password", "current_password"),
        ("not an address", PASSWORD, "email"),
        (" ANN@example.com", PASSWORD, "email"),  # already hers
        ("bob@example.com", PASSWORD, "email"),  # someone else's
    ],
)
async def test_a_refused_address_change_sends_nothing(
    session: AsyncSession,
    account_settings: AccountSettings,
    new_email: str,
    password: str,
    field: str,
) -> None:
    ann = await make_account(session, account_settings)
    await make_user(session, email="bob@example.com")
    with pytest.raises(Invalid) as refusal:
        await accounts.request_email_change(
            session, account_settings, ann.id, new_email=new_email, current_password=password
        )
    assert refusal.value.field == field
    assert (await count(session, AccountToken), await count(session, OutboxMessage)) == (0, 0)
    assert (await stored(session, ann.id)).email == "ann@example.com"


async def test_an_address_taken_meanwhile_is_a_conflict_and_the_old_one_stays(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings)
    await accounts.request_email_change(
        session, account_settings, ann.id, new_email="new@example.com", current_password=PASSWORD
    )
    [link] = await signed_links(session, "change_email", "new@example.com")
    await make_user(session, email="new@example.com")
    with pytest.raises(Conflict):
        await accounts.confirm_email_change(session, account_settings, link)
    assert (await stored(session, ann.id)).email == "ann@example.com"
    [token] = await rows_of(session, AccountToken)
    assert token.used_at is None  # the refusal rolled back, as every refusal does


# --- Site administrators ----------------------------------------------------------------------


async def test_create_admin_makes_a_validated_administrator(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    admin = await accounts.create_admin(
        session,
        account_settings,
        email=" Root@Example.com ",
        display_name="  ",
        password=PASSWORD,
    )
    [user] = await rows_of(session, User)
    assert (user.id, user.email, user.handle) == (admin.id, "root@example.com", "root")
    assert user.display_name == "root"  # from the address, when none is given
    assert user.is_admin
    assert user.email_verified_at is not None
    assert await account_settings.hasher.verify(user.password_hash, PASSWORD)


async def test_create_admin_promotes_an_existing_account(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_account(session, account_settings, validated=False)
    await accounts.create_admin(
        session,
        account_settings,
        email="ANN@example.com",
        display_name="Not used",
        password="the admin passphrase",
    )
    [user] = await rows_of(session, User)
    assert (user.id, user.display_name, user.is_admin) == (ann.id, "Ann", True)
    assert user.email_verified_at is not None
    assert await account_settings.hasher.verify(user.password_hash, "the admin passphrase")


@pytest.mark.parametrize(
    ("email", "display_name", "password", "field"),
    [
        ("root@example.com", "Root", "short", "password"),
        ("root@example.com", "Root", "root@example.com", "password"),
        ("no address", "Root", PASSWORD, "email"),
        ("root@example.com", "Root\r\nX", PASSWORD, "display_name"),
    ],
)
async def test_a_refused_admin_is_not_created(
    session: AsyncSession,
    account_settings: AccountSettings,
    email: str,
    display_name: str,
    password: str,
    field: str,
) -> None:
    with pytest.raises(Invalid) as refusal:
        await accounts.create_admin(
            session, account_settings, email=email, display_name=display_name, password=password
        )
    assert refusal.value.field == field
    assert await count(session, User) == 0
