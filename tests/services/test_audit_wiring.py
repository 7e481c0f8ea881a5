"""Every existing security event writes its audit row in the commit of its change: who, whose
account, from where, what; and a refused change writes none."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Invalid, NotFound, TooManyRequests
from app.models import AuditEvent, AuthSession, Role, User
from app.services import (
    accounts,
    api_tokens,
    audit,
    login_sessions,
    passwords,
    projects,
    registration,
)
from app.services.accounts import AccountSettings
from tests.factories import add_member, make_project, make_user
from tests.pages import PASSWORD
from tests.services.rows import rows_of, signed_links

ORIGIN = audit.Origin("203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0")


async def events(session: AsyncSession, action: str | None = None) -> list[AuditEvent]:
    await session.rollback()  # a fresh read: what the database holds now
    criteria = [AuditEvent.action == action] if action else []
    return await rows_of(session, AuditEvent, *criteria)


def who(event: AuditEvent) -> tuple[Any, ...]:
    return (event.action, event.actor_id, event.subject_id, event.client_address)


async def person(
    session: AsyncSession, settings: AccountSettings, email: str = "ann@example.com"
) -> User:
    return await make_user(session, email=email, password_hash=await settings.hasher.hash(PASSWORD))


# --- Logins -----------------------------------------------------------------------------------


async def test_a_wrong_password_is_recorded_against_the_account_without_the_password(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    with pytest.raises(Invalid):
        await login_sessions.log_in(
            session,
            account_settings,
            email=" ANN@example.com",
            password="s3cret guess",
            origin=ORIGIN,
        )
    [event] = await events(session)
    assert who(event) == ("login.failed", None, ann.id, "203.0.113.9")
    assert event.subject_email == "ann@example.com"
    assert "Firefox" in event.user_agent
    assert "s3cret guess" not in repr(event.detail)


async def test_an_unknown_address_is_recorded_as_typed_and_normalised(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    with pytest.raises(Invalid):
        await login_sessions.log_in(
            session, account_settings, email="  Nobody@Example.com ", password="x", origin=ORIGIN
        )
    [event] = await events(session)
    assert who(event) == ("login.failed", None, None, "203.0.113.9")
    assert event.subject_email == "nobody@example.com"
    assert event.detail == {}


async def test_a_throttled_login_is_recorded_as_throttled(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    for _ in range(login_sessions.FREE_LOGIN_FAILURES + 1):
        with pytest.raises(Invalid):
            await login_sessions.log_in(
                session, account_settings, email="ann@example.com", password="wrong", origin=ORIGIN
            )
    with pytest.raises(TooManyRequests):
        await login_sessions.log_in(
            session, account_settings, email="ann@example.com", password=PASSWORD, origin=ORIGIN
        )
    [event] = await events(session, "login.throttled")
    assert who(event) == ("login.throttled", None, ann.id, "203.0.113.9")
    assert len(await events(session, "login.failed")) == login_sessions.FREE_LOGIN_FAILURES + 1


async def test_a_good_login_writes_no_failure(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    await person(session, account_settings)
    await login_sessions.log_in(
        session, account_settings, email="ann@example.com", password=PASSWORD, origin=ORIGIN
    )
    assert await events(session) == []


async def test_logout_and_ending_other_sessions_are_recorded(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    for _ in range(3):
        await login_sessions.start_session(session, account_settings, ann, remember=False)
    first, _second, third = await rows_of(session, AuthSession)
    ended = await login_sessions.end_other_sessions(session, ann.id, third.id, origin=ORIGIN)
    assert ended == 2
    await login_sessions.end_session(session, third.id, actor=ann, origin=ORIGIN)
    # Ending a session that is already over changes nothing, and records nothing.
    await login_sessions.end_session(session, first.id, actor=ann, origin=ORIGIN)
    ended_others, logout = [e for e in await events(session) if e.action != "login.succeeded"]
    assert who(ended_others) == ("sessions.ended", ann.id, ann.id, "203.0.113.9")
    assert ended_others.detail == {"count": 2}
    assert who(logout) == ("logout", ann.id, ann.id, "203.0.113.9")


# --- Sign-up, addresses, passwords ------------------------------------------------------------


async def test_sign_up_and_the_address_verified_are_recorded(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await registration.sign_up(
        session,
        account_settings,
        email="ann@example.com",
        display_name="Ann",
        password=PASSWORD,
        origin=ORIGIN,
    )
    [signed] = await signed_links(session, "verify_email", "ann@example.com")
    await registration.verify_email(session, account_settings, signed, origin=ORIGIN)
    signed_up, verified = await events(session)
    assert who(signed_up) == ("account.signed_up", ann.id, ann.id, "203.0.113.9")
    assert who(verified) == ("email.verified", ann.id, ann.id, "203.0.113.9")


async def test_a_refused_sign_up_or_link_writes_no_row(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    with pytest.raises(Invalid):
        await registration.sign_up(
            session, account_settings, email="ann@", display_name="Ann", password=PASSWORD
        )
    with pytest.raises(Invalid):
        await registration.verify_email(session, account_settings, "forged", origin=ORIGIN)
    assert await events(session) == []


async def test_an_address_change_is_recorded_when_asked_and_when_confirmed(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    await accounts.request_email_change(
        session,
        account_settings,
        ann.id,
        new_email="Ann.New@example.com",
        current_password=PASSWORD,
        origin=ORIGIN,
    )
    [signed] = await signed_links(session, "change_email", "ann.new@example.com")
    await accounts.confirm_email_change(session, account_settings, signed, origin=ORIGIN)
    asked, changed = await events(session)
    assert who(asked) == ("email.change_requested", ann.id, ann.id, "203.0.113.9")
    assert asked.detail == {"new_email": "ann.new@example.com"}
    assert who(changed) == ("email.changed", ann.id, ann.id, "203.0.113.9")
    assert changed.detail == {"old_email": "ann@example.com", "new_email": "ann.new@example.com"}
    assert changed.subject_email == "ann.new@example.com"


async def test_a_refused_address_change_writes_no_row(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    with pytest.raises(Invalid):
        await accounts.request_email_change(
            session,
            account_settings,
            ann.id,
            new_email="new@example.com",
            current_password="not it",
            origin=ORIGIN,
        )
    assert await events(session) == []


async def test_a_password_change_is_recorded_and_a_wrong_current_password_is_not(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    with pytest.raises(Invalid):
        await passwords.change_password(
            session,
            account_settings,
            ann.id,
            current_password="not it",
            new_password="another good password",
            keep_session=0,
            origin=ORIGIN,
        )
    assert await events(session) == []
    await passwords.change_password(
        session,
        account_settings,
        ann.id,
        current_password=PASSWORD,
        new_password="another good password",
        keep_session=0,
        origin=ORIGIN,
    )
    [event] = await events(session)
    assert who(event) == ("password.changed", ann.id, ann.id, "203.0.113.9")
    assert event.detail == {"sessions_ended": 0}
    assert "another good password" not in repr(event.detail)


async def test_a_reset_is_recorded_when_asked_for_a_known_account_and_when_done(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await person(session, account_settings)
    await passwords.request_password_reset(
        session, account_settings, "nobody@example.com", origin=ORIGIN
    )
    assert await events(session) == []  # an unknown address leaves no trace
    await passwords.request_password_reset(
        session, account_settings, " ANN@example.com", origin=ORIGIN
    )
    [signed] = await signed_links(session, "reset_password", "ann@example.com")
    with pytest.raises(Invalid):
        await passwords.reset_password(session, account_settings, signed, "short", origin=ORIGIN)
    assert len(await events(session)) == 1  # the refused password wrote nothing
    await passwords.reset_password(
        session, account_settings, signed, "a brand new password", origin=ORIGIN
    )
    asked, done = await events(session)
    assert who(asked) == ("password.reset_requested", None, ann.id, "203.0.113.9")
    assert who(done) == ("password.reset", ann.id, ann.id, "203.0.113.9")
    assert done.detail == {"sessions_ended": 0, "tokens_revoked": 0}


# --- API tokens -------------------------------------------------------------------------------


async def test_token_creation_and_revocation_are_recorded_without_the_secret(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")
    made = await api_tokens.create_token(
        session, ann, name="deploy bot", scope="read", expires_in_days=30, origin=ORIGIN
    )
    await api_tokens.revoke_token(session, ann, made.token.id, origin=ORIGIN)
    created, revoked = await events(session)
    assert who(created) == ("token.created", ann.id, ann.id, "203.0.113.9")
    assert created.detail == {"token_name": "deploy bot", "scope": "read", "expires_in_days": 30}
    assert who(revoked) == ("token.revoked", ann.id, ann.id, "203.0.113.9")
    assert revoked.detail == {"token_name": "deploy bot", "scope": "read"}
    for event in (created, revoked):
        assert made.secret not in repr(event.detail)
        assert made.token.prefix not in repr(event.detail)


async def test_refused_token_changes_write_no_row(session: AsyncSession) -> None:
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    with pytest.raises(Invalid):
        await api_tokens.create_token(session, ann, name="", scope="read", origin=ORIGIN)
    made = await api_tokens.create_token(session, ann, name="mine", scope="read")
    with pytest.raises(NotFound):
        await api_tokens.revoke_token(session, bob, made.token.id, origin=ORIGIN)
    assert [e.action for e in await events(session)] == ["token.created"]


# --- Project membership -----------------------------------------------------------------------


async def test_membership_changes_name_who_did_it_and_the_member(session: AsyncSession) -> None:
    owner = await make_user(session, email="owner@example.com")
    bob = await make_user(session, email="bob@example.com")
    project_id = (await make_project(session, owner, key="WEB")).id
    await projects.add_member(
        session, owner, project_id, email="bob@example.com", role="member", origin=ORIGIN
    )
    await projects.change_role(session, owner, project_id, bob.id, "admin", origin=ORIGIN)
    await projects.remove_member(session, owner, project_id, bob.id, origin=ORIGIN)
    added, changed, removed = await events(session)
    assert who(added) == ("member.added", owner.id, bob.id, "203.0.113.9")
    assert added.detail == {"project": "WEB", "role": "member"}
    assert who(changed) == ("role.changed", owner.id, bob.id, "203.0.113.9")
    assert changed.detail == {"project": "WEB", "role": "admin", "previous_role": "member"}
    assert who(removed) == ("member.removed", owner.id, bob.id, "203.0.113.9")
    assert removed.detail == {"project": "WEB", "role": "admin"}
    assert (removed.actor_email, removed.subject_email) == ("owner@example.com", "bob@example.com")


async def test_refused_membership_changes_write_no_row(session: AsyncSession) -> None:
    owner = await make_user(session, email="owner@example.com")
    bob = await make_user(session, email="bob@example.com")
    project = await make_project(session, owner, key="WEB")
    project_id = project.id
    await add_member(session, project, bob, Role.ADMIN)
    with pytest.raises(Forbidden):  # an admin cannot make an owner
        await projects.add_member(
            session, bob, project_id, email="owner@example.com", role="owner", origin=ORIGIN
        )
    with pytest.raises(Invalid):  # the last owner stays
        await projects.change_role(session, owner, project_id, owner.id, "member", origin=ORIGIN)
    with pytest.raises(Invalid):
        await projects.remove_member(session, owner, project_id, owner.id, origin=ORIGIN)
    assert await events(session) == []
