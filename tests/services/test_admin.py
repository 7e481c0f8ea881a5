"""The admin console's use cases: each change with its audit row in one commit, each refusal
leaving nothing written, and never a site without an admin, even under concurrent changes."""

from __future__ import annotations

import asyncio
import re

import pytest
from quart import Quart
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Forbidden, Invalid, NotFound
from app.models import (
    Activity,
    ApiToken,
    AuditEvent,
    AuthSession,
    Membership,
    OutboxMessage,
    User,
    Webhook,
    WebhookDelivery,
)
from app.models.outbox import MailStatus
from app.models.passkey import Passkey
from app.models.two_factor import RecoveryCode, TotpCredential
from app.models.webhook import DeliveryStatus
from app.outbound.mail.outbox import enqueue_mail
from app.services import (
    admin,
    admin_projects,
    admin_queues,
    api_tokens,
    audit,
    login_sessions,
    two_factor,
)
from app.services.accounts import AccountSettings
from tests.factories import add_member, make_issue, make_project, make_user
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD
from tests.services.rows import rows_of
from tests.totp import code_at, steady_step

ORIGIN = audit.Origin("203.0.113.7", "Firefox")


async def make_admin(session: AsyncSession, email: str) -> User:
    user = await make_user(session, email=email)
    user.is_admin = True
    session.add(user)
    await session.commit()
    session.expunge(user)
    return user


async def with_password(session: AsyncSession, settings: AccountSettings, user: User) -> None:
    user.password_hash = await settings.hasher.hash(PASSWORD)
    session.add(user)
    await session.commit()
    session.expunge(user)


async def fresh(session: AsyncSession, user: User) -> User:
    row = await session.get(User, user.id, populate_existing=True)
    assert row is not None
    return row


async def actions(session: AsyncSession) -> list[str]:
    return [event.action for event in await rows_of(session, AuditEvent)]


# --- Deactivation ------------------------------------------------------------------------------


async def test_deactivation_ends_sessions_and_tokens_and_refuses_every_door_at_once(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    await with_password(session, account_settings, bob)
    secret = await login_sessions.start_session(session, account_settings, bob, remember=False)
    token = await api_tokens.create_token(session, bob, name="ci", scope="read")
    before = len(await actions(session))

    await admin.deactivate(session, root, bob.id, ORIGIN)

    assert (await fresh(session, bob)).deactivated_at is not None
    assert await login_sessions.resume_session(session, account_settings, secret) is None
    assert await api_tokens.resolve_token(session, token.secret) is None
    assert all(row.revoked_at for row in await rows_of(session, AuthSession))
    assert all(row.revoked_at for row in await rows_of(session, ApiToken))
    [event] = (await rows_of(session, AuditEvent))[before:]
    assert (event.action, event.actor_id, event.subject_id) == (
        "admin.user_deactivated",
        root.id,
        bob.id,
    )
    assert event.detail == {"sessions_ended": 1, "tokens_revoked": 1}
    assert event.client_address == "203.0.113.7"
    # Every way of signing in: the password form says so, any other door is refused too.
    with pytest.raises(Invalid, match=re.escape(login_sessions.ACCOUNT_DEACTIVATED)):
        await login_sessions.log_in(
            session, account_settings, email="bob@example.com", password=PASSWORD
        )
    with pytest.raises(Forbidden, match="deactivated"):
        await login_sessions.start_session(
            session, account_settings, await fresh(session, bob), remember=False, method="sso"
        )
    # ...while a wrong password still reads as a wrong password.
    with pytest.raises(Invalid, match="Wrong email or password"):
        await login_sessions.log_in(
            session, account_settings, email="bob@example.com", password="not it at all"
        )


async def test_a_session_started_by_a_racing_login_is_refused_too(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    """A login session row that escaped the revocation (written as the admin committed)
    still does not work: the user's state is checked with the session."""
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    await admin.deactivate(session, root, bob.id)
    secret = "a-session-that-raced"
    from app.security import token_digest

    session.add(
        AuthSession(
            user_id=bob.id,
            token_digest=token_digest(secret),
            expires_at=utcnow() + account_settings.session_max,
        )
    )
    await session.commit()
    assert await login_sessions.resume_session(session, account_settings, secret) is None
    [row] = await rows_of(session, AuthSession)
    assert await login_sessions.live_sessions(session, account_settings, [row.id]) == {}


async def test_reactivation_lets_them_log_in_again_and_old_sessions_stay_ended(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    await with_password(session, account_settings, bob)
    old = await login_sessions.start_session(session, account_settings, bob, remember=False)
    await admin.deactivate(session, root, bob.id)
    await admin.reactivate(session, root, bob.id, ORIGIN)

    assert (await fresh(session, bob)).deactivated_at is None
    assert await login_sessions.resume_session(session, account_settings, old) is None
    user = await login_sessions.log_in(
        session, account_settings, email="bob@example.com", password=PASSWORD
    )
    new = await login_sessions.start_session(session, account_settings, user, remember=False)
    assert await login_sessions.resume_session(session, account_settings, new) is not None
    assert "admin.user_reactivated" in await actions(session)


@pytest.mark.parametrize("case", ["yourself", "unknown", "twice"])
async def test_a_refused_deactivation_writes_nothing(session: AsyncSession, case: str) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    if case == "twice":
        await admin.deactivate(session, root, bob.id)
    before = await rows_of(session, AuditEvent)
    target = {"yourself": root.id, "unknown": 999_999, "twice": bob.id}[case]
    expected = {"yourself": Invalid, "unknown": NotFound, "twice": Invalid}[case]
    with pytest.raises(expected) as refused:
        await admin.deactivate(session, root, target)
    if case == "yourself":
        assert refused.value.message == admin.NOT_YOURSELF
    assert len(await rows_of(session, AuditEvent)) == len(before)
    assert (await fresh(session, root)).deactivated_at is None


async def test_someone_who_is_no_longer_an_admin_cannot_act(session: AsyncSession) -> None:
    root = await make_admin(session, "root@example.com")
    other = await make_admin(session, "other@example.com")
    bob = await make_user(session, email="bob@example.com")
    await admin.set_admin(session, other, root.id, False)
    with pytest.raises(Forbidden):
        await admin.deactivate(session, root, bob.id)  # `root` as the request loaded them
    assert (await fresh(session, bob)).deactivated_at is None


# --- Site admins -------------------------------------------------------------------------------


async def test_make_and_unmake_an_admin_with_audit_rows(session: AsyncSession) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    await admin.set_admin(session, root, bob.id, True, ORIGIN)
    assert (await fresh(session, bob)).is_admin
    await admin.set_admin(session, root, bob.id, False, ORIGIN)
    assert not (await fresh(session, bob)).is_admin
    assert (await actions(session))[-2:] == ["admin.admin_granted", "admin.admin_revoked"]


async def test_the_last_admin_cannot_be_unmade_and_nothing_is_written(
    session: AsyncSession,
) -> None:
    root = await make_admin(session, "root@example.com")
    # A deactivated admin does not count: they cannot act.
    gone = await make_admin(session, "gone@example.com")
    await admin.deactivate(session, root, gone.id)
    before = await actions(session)
    with pytest.raises(Invalid, match="needs an admin"):
        await admin.set_admin(session, root, root.id, False)
    assert (await fresh(session, root)).is_admin
    assert await actions(session) == before


async def test_a_deactivated_person_cannot_be_made_admin(session: AsyncSession) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    await admin.deactivate(session, root, bob.id)
    with pytest.raises(Invalid, match="reactivate"):
        await admin.set_admin(session, root, bob.id, True)
    assert not (await fresh(session, bob)).is_admin


@pytest.mark.parametrize("change", ["unmake", "deactivate"])
async def test_two_admins_removing_each_other_at_once_leave_one(
    app: Quart, session: AsyncSession, change: str
) -> None:
    """Each transaction alone is allowed (there are two admins); together they would leave
    none. The admins' rows are locked for the check, so the second sees the first's change."""
    maker = app.extensions["database"].sessionmaker
    for attempt in range(4):  # an unlucky schedule could hide a missing lock once, not four times
        ann = await make_admin(session, f"ann{attempt}@example.com")
        bob = await make_admin(session, f"bob{attempt}@example.com")

        async def remove(actor: User, target: User) -> str:
            async with maker() as own:
                try:
                    if change == "unmake":
                        await admin.set_admin(own, actor, target.id, False)
                    else:
                        await admin.deactivate(own, actor, target.id)
                except (Invalid, Forbidden) as refusal:
                    return refusal.message
                return "done"

        outcomes = await asyncio.gather(remove(ann, bob), remove(bob, ann))
        assert outcomes.count("done") == 1, outcomes
        active_admins = await session.scalars(
            select(User.id)
            .where(User.is_admin.is_(True), User.deactivated_at.is_(None))
            .execution_options(populate_existing=True)
        )
        assert len(set(active_admins) & {ann.id, bob.id}) == 1
        # Back to one admin outside this pair, for the next round.
        for user in (ann, bob):
            row = await fresh(session, user)
            row.is_admin = False
        await session.commit()


async def test_resetting_two_factor_removes_every_second_factor_with_its_audit_row(
    app: Quart, session: AsyncSession
) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    settings = app.extensions["two_factor"]
    enrolment = await two_factor.begin_enrolment(session, settings, bob)
    steady_step()
    await two_factor.confirm_enrolment(session, settings, bob, code_at(enrolment.secret))
    session.add(
        Passkey(user_id=bob.id, credential_id=b"bob", public_key=b"k", user_handle=b"h", name="Key")
    )
    await session.commit()
    assert await two_factor.second_factors(session, bob) == ["totp", "passkey"]

    await admin.reset_two_factor(session, root, bob.id, ORIGIN)
    assert await two_factor.second_factors(session, bob) == []
    for model in (TotpCredential, RecoveryCode, Passkey):
        assert await rows_of(session, model) == []
    [event] = [e for e in await rows_of(session, AuditEvent) if e.action.startswith("admin.")]
    assert (event.action, event.actor_id, event.subject_id) == (
        "admin.two_factor_reset",
        root.id,
        bob.id,
    )
    with pytest.raises(NotFound):
        await admin.reset_two_factor(session, root, 999_999)


# --- Lists -------------------------------------------------------------------------------------


async def test_people_search_by_address_name_or_handle_and_pages(session: AsyncSession) -> None:
    await make_user(session, email="zed@example.com", display_name="Zed Zebra")
    for number in range(admin.PAGE_SIZE + 3):
        await make_user(session, email=f"p{number}@example.org", display_name=f"Person {number}")
    assert [u.email for u in (await admin.people_page(session, "ZEBRA")).rows] == [
        "zed@example.com"
    ]
    assert [u.email for u in (await admin.people_page(session, "zed@")).rows] == ["zed@example.com"]
    first = await admin.people_page(session, "example.org")
    second = await admin.people_page(session, "example.org", 2)
    assert (len(first.rows), first.has_next, len(second.rows), second.has_next) == (
        admin.PAGE_SIZE,
        True,
        3,
        False,
    )
    # LIKE's wildcards are plain characters here.
    assert (await admin.people_page(session, "%")).rows == []


async def test_projects_list_shows_private_ones_with_owners_and_sizes(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com", display_name="Ann")
    bob = await make_user(session, email="bob@example.com")
    project = await make_project(session, ann, key="SECRET")
    await add_member(session, project, bob)
    await make_issue(session, ann, project)
    await make_issue(session, ann, project)
    await make_project(session, bob, key="OTHER", is_public=True)
    page = await admin_projects.projects_page(session)
    rows = {row.project.key: row for row in page.rows}
    assert set(rows) == {"SECRET", "OTHER"}
    secret = rows["SECRET"]
    assert ([o.display_name for o in secret.owners], secret.members, secret.issues) == (
        ["Ann"],
        2,
        2,
    )
    assert secret.attachment_bytes == 0
    assert [
        row.project.key for row in (await admin_projects.projects_page(session, "sec")).rows
    ] == ["SECRET"]
    counts = await admin.console_counts(session)
    assert (counts.people, counts.projects, counts.issues) == (2, 2, 2)


# --- Transfer ----------------------------------------------------------------------------------


async def test_transfer_makes_the_new_owner_owner_and_keeps_the_old_as_admin(
    session: AsyncSession,
) -> None:
    root = await make_admin(session, "root@example.com")
    ann = await make_user(session, email="ann@example.com")
    carl = await make_user(session, email="carl@example.com")
    project = await make_project(session, ann, key="WEB")
    await admin_projects.transfer_project(session, root, project.id, "Carl@Example.com", ORIGIN)

    roles = {m.user_id: m.role for m in await rows_of(session, Membership)}
    assert roles == {ann.id: "admin", carl.id: "owner"}
    kinds = [a.kind for a in await rows_of(session, Activity, Activity.project_id == project.id)]
    assert kinds[-2:] == ["member.role_changed", "member.added"]
    [event] = [e for e in await rows_of(session, AuditEvent) if e.action.startswith("admin.")]
    assert (event.action, event.subject_id, event.detail) == (
        "admin.project_transferred",
        carl.id,
        {"project": "WEB", "former_owners": [ann.id]},
    )


async def test_transfer_to_a_member_by_handle_changes_their_role(session: AsyncSession) -> None:
    root = await make_admin(session, "root@example.com")
    ann = await make_user(session, email="ann@example.com")
    bob = await make_user(session, email="bob@example.com")
    project = await make_project(session, ann, key="WEB")
    await add_member(session, project, bob)
    await admin_projects.transfer_project(session, root, project.id, "@" + bob.handle)
    roles = {m.user_id: m.role for m in await rows_of(session, Membership)}
    assert roles == {ann.id: "admin", bob.id: "owner"}


@pytest.mark.parametrize("who", ["nobody@example.com", "", "deactivated", "owner"])
async def test_a_refused_transfer_writes_nothing(session: AsyncSession, who: str) -> None:
    root = await make_admin(session, "root@example.com")
    ann = await make_user(session, email="ann@example.com")
    dee = await make_user(session, email="dee@example.com")
    await admin.deactivate(session, root, dee.id)
    project = await make_project(session, ann, key="WEB")
    before = (await rows_of(session, Activity), await actions(session))
    target = {"deactivated": "dee@example.com", "owner": "ann@example.com"}.get(who, who)
    with pytest.raises(Invalid) as refused:
        await admin_projects.transfer_project(session, root, project.id, target)
    assert refused.value.field == "owner"
    assert (len(await rows_of(session, Activity)), await actions(session)) == (
        len(before[0]),
        before[1],
    )
    assert {m.user_id: m.role for m in await rows_of(session, Membership)} == {ann.id: "owner"}
    with pytest.raises(NotFound):
        await admin_projects.transfer_project(session, root, 999_999, "ann@example.com")


# --- Retries -----------------------------------------------------------------------------------


async def test_retrying_failed_mail_sends_it_now_with_its_audit_row(
    app: Quart, session: AsyncSession, mailbox: MailCatcher
) -> None:
    root = await make_admin(session, "root@example.com")
    bob = await make_user(session, email="bob@example.com")
    message = enqueue_mail(
        session,
        to_address="bob@example.com",
        template="verify_email",
        name=bob.display_name,
        link="http://issues.test/x",
        base_url="http://issues.test",
    )
    await session.commit()
    message.status, message.attempts, message.last_error = MailStatus.FAILED.value, 8, "550 no"
    await session.commit()

    await admin_queues.retry_mail(session, root, message.id, ORIGIN)
    [row] = await rows_of(session, OutboxMessage)
    assert (row.status, row.attempts, row.next_attempt_at <= utcnow()) == ("pending", 0, True)
    assert (await actions(session))[-1] == "admin.mail_retried"
    # The sender (the real one, to the real SMTP catcher) takes it at its next round.
    await app.extensions["mail_sender"].deliver_pending()
    assert len(mailbox.to("bob@example.com")) == 1
    # Sent now: a retry has nothing to do, and says so without writing anything.
    before = await actions(session)
    with pytest.raises(Invalid, match="nothing to retry"):
        await admin_queues.retry_mail(session, root, message.id)
    with pytest.raises(NotFound):
        await admin_queues.retry_mail(session, root, 999_999)
    assert await actions(session) == before


async def test_retrying_a_failed_webhook_delivery_makes_it_due_now(session: AsyncSession) -> None:
    root = await make_admin(session, "root@example.com")
    project = await make_project(session, root, key="WEB")
    hook = Webhook(project_id=project.id, url="https://hooks.example.com/x", secret="s" * 32)
    session.add(hook)
    await session.flush()
    delivery = WebhookDelivery(
        webhook_id=hook.id,
        guid="11111111-1111-1111-1111-111111111111",
        event_id="e1",
        event="issue.created",
        body="{}",
        status=DeliveryStatus.FAILED.value,
        attempts=8,
        last_error="connection refused",
    )
    session.add(delivery)
    await session.commit()
    page = await admin_queues.deliveries_page(session, "failed")
    assert [(row.delivery.id, row.project_key) for row in page.rows] == [(delivery.id, "WEB")]
    assert (await admin_queues.deliveries_page(session, "pending")).rows == []

    await admin_queues.retry_delivery(session, root, delivery.id, ORIGIN)
    [row] = await rows_of(session, WebhookDelivery)
    assert (row.status, row.attempts, row.guid) == ("pending", 0, delivery.guid)
    events = [e for e in await rows_of(session, AuditEvent) if e.action.startswith("admin.")]
    assert events[-1].detail == {
        "delivery_id": delivery.id,
        "webhook_id": hook.id,
        "event": "issue.created",
    }
    row.status = DeliveryStatus.DELIVERED.value
    await session.commit()
    with pytest.raises(Invalid):
        await admin_queues.retry_delivery(session, root, delivery.id)
