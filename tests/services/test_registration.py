"""Sign-up: each field's problem named and nothing written, the validation link, sent again."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.models import AccountToken, OutboxMessage, TokenPurpose, User
from app.services import registration
from app.services.accounts import AccountSettings
from tests.factories import make_user
from tests.pages import PASSWORD
from tests.services.rows import count, rows_of, signed_links


async def sign_up_ann(session: AsyncSession, settings: AccountSettings) -> int:
    user = await registration.sign_up(
        session, settings, email="ann@example.com", display_name="Ann", password=PASSWORD
    )
    return user.id


async def accounts_links_and_mail(session: AsyncSession) -> list[int]:
    return [await count(session, model) for model in (User, AccountToken, OutboxMessage)]


async def test_a_sign_up_makes_an_unvalidated_account_and_queues_its_link(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    user = await registration.sign_up(
        session,
        account_settings,
        email="  Ann@Example.COM ",
        display_name=" Ann Example ",
        password=PASSWORD,
    )
    [stored] = await rows_of(session, User)
    assert (stored.id, stored.email, stored.handle) == (user.id, "ann@example.com", "ann")
    assert stored.display_name == "Ann Example"
    assert stored.email_verified_at is None
    assert await account_settings.hasher.verify(stored.password_hash, PASSWORD)
    [token] = await rows_of(session, AccountToken)
    assert (token.user_id, token.purpose, token.email) == (user.id, "verify_email", stored.email)
    assert token.used_at is None
    [mail] = await rows_of(session, OutboxMessage)
    assert (mail.to_address, mail.template) == ("ann@example.com", "verify_email")
    assert "http://issues.test/auth/verify/" in mail.text_body


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "must have an @-sign"),
        ({"email": "jörg@example.com"}, "email", "not supported"),
        ({"password": "short"}, "password", "at least 10 characters"),
        ({"password": "password123"}, "password", "most common"),
        ({"password": "Dana@Example.com"}, "password", "must not be your email"),
        ({"display_name": "   "}, "display_name", "what to call you"),
        ({"display_name": "D" * 101}, "display_name", "at most 100"),
        ({"display_name": "Eve\r\nBcc: victim@example.com"}, "display_name", "line breaks"),
    ],
)
async def test_a_refused_sign_up_names_the_field_at_fault_and_writes_nothing(
    session: AsyncSession,
    account_settings: AccountSettings,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    form = {"email": "dana@example.com", "display_name": "Dana", "password": PASSWORD, **fields}
    with pytest.raises(Invalid) as refusal:
        await registration.sign_up(session, account_settings, **form)
    assert list(refusal.value.field_errors) == [field]
    assert message in refusal.value.field_errors[field]
    assert await accounts_links_and_mail(session) == [0, 0, 0]


async def test_a_sign_up_wrong_in_every_field_names_them_all(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    with pytest.raises(Invalid) as refusal:
        await registration.sign_up(
            session, account_settings, email="nope", display_name="", password="short"
        )
    assert set(refusal.value.field_errors) == {"email", "display_name", "password"}
    assert await accounts_links_and_mail(session) == [0, 0, 0]


async def test_a_taken_address_is_refused_whatever_its_case(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await sign_up_ann(session, account_settings)
    with pytest.raises(Invalid) as refusal:
        await registration.sign_up(
            session,
            account_settings,
            email=" ANN@example.com",
            display_name="Ann",
            password=PASSWORD,
        )
    assert "An account with this address exists" in refusal.value.field_errors["email"]
    assert (await count(session, User), await count(session, OutboxMessage)) == (1, 1)


@pytest.mark.parametrize(
    ("mode", "domains", "email", "message"),
    [
        ("closed", frozenset(), "x@example.com", "Sign-up is closed"),
        (
            "domains",
            frozenset({"example.com", "corp.example"}),
            "x@other.org",
            "corp.example, example.com",
        ),
    ],
)
async def test_the_site_setting_refuses_sign_ups_it_does_not_allow(
    session: AsyncSession,
    account_settings: AccountSettings,
    mode: str,
    domains: frozenset[str],
    email: str,
    message: str,
) -> None:
    settings = dataclasses.replace(account_settings, signup_mode=mode, signup_domains=domains)
    with pytest.raises(Invalid) as refusal:
        await registration.sign_up(
            session, settings, email=email, display_name="X", password=PASSWORD
        )
    assert message in refusal.value.field_errors["email"]
    assert await accounts_links_and_mail(session) == [0, 0, 0]


async def test_accounts_with_the_same_local_part_get_their_own_handles(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    for email in ("ann@example.com", "Ann@other.example", "ann@third.example"):
        await registration.sign_up(
            session, account_settings, email=email, display_name="Ann", password=PASSWORD
        )
    assert [user.handle for user in await rows_of(session, User)] == ["ann", "ann2", "ann3"]


# --- The validation link ----------------------------------------------------------------------


async def test_a_validation_link_validates_the_address_once(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    user_id = await sign_up_ann(session, account_settings)
    [link] = await signed_links(session, "verify_email", "ann@example.com")
    assert (await registration.verify_email(session, account_settings, link)).id == user_id
    [user] = await rows_of(session, User)
    assert user.email_verified_at is not None
    [token] = await rows_of(session, AccountToken)
    assert token.used_at is not None
    with pytest.raises(Invalid, match="invalid or has expired"):
        await registration.verify_email(session, account_settings, link)


@pytest.mark.parametrize("forgery", ["altered signature", "unknown token", "other purpose"])
async def test_a_forged_validation_link_validates_nothing(
    session: AsyncSession, account_settings: AccountSettings, forgery: str
) -> None:
    await sign_up_ann(session, account_settings)
    [link] = await signed_links(session, "verify_email", "ann@example.com")
    signer = account_settings.signer
    raw = signer.unsign(TokenPurpose.VERIFY_EMAIL.value, link, 60)["t"]
    forged = {
        "altered signature": link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"),
        "unknown token": signer.sign(TokenPurpose.VERIFY_EMAIL.value, {"t": raw + "x"}),
        # The right token, signed for another purpose: a reset link is no validation link.
        "other purpose": signer.sign(TokenPurpose.RESET_PASSWORD.value, {"t": raw}),
    }[forgery]
    with pytest.raises(Invalid):
        await registration.verify_email(session, account_settings, forged)
    [user] = await rows_of(session, User)
    assert user.email_verified_at is None
    [token] = await rows_of(session, AccountToken)
    assert token.used_at is None
    await registration.verify_email(session, account_settings, link)  # the real one still works


async def test_sending_the_link_again_voids_the_old_one(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    user_id = await sign_up_ann(session, account_settings)
    await registration.resend_verification(session, account_settings, user_id)
    old, new = await signed_links(session, "verify_email", "ann@example.com")
    tokens = await rows_of(session, AccountToken)
    assert [token.used_at is not None for token in tokens] == [True, False]
    with pytest.raises(Invalid):
        await registration.verify_email(session, account_settings, old)
    await registration.verify_email(session, account_settings, new)
    [user] = await rows_of(session, User)
    assert user.email_verified_at is not None


async def test_a_validated_account_is_sent_no_new_link(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    user = await make_user(session)
    await registration.resend_verification(session, account_settings, user.id)
    assert (await count(session, AccountToken), await count(session, OutboxMessage)) == (0, 0)


async def test_a_handle_taken_a_moment_ago_by_another_address_does_not_refuse_the_address(
    session: AsyncSession, account_settings: AccountSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ann@a and ann@b signing up at once both pick @ann; the second must not be told that
    its address is taken (the insert clashes on the handle, not on the email)."""
    other = await make_user(session, email="ann@elsewhere.example.com")
    picks = iter([other.handle])  # the race: the first pick is the handle just taken
    real_pick = registration.unique_handle

    async def racing_pick(session: AsyncSession, email: str) -> str:
        return next(picks, None) or await real_pick(session, email)

    monkeypatch.setattr(registration, "unique_handle", racing_pick)
    user_id = await sign_up_ann(session, account_settings)
    stored = [user for user in await rows_of(session, User) if user.id == user_id]
    assert [user.email for user in stored] == ["ann@example.com"]
    assert stored[0].handle != other.handle
