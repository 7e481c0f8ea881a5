"""The audit log's seam: a row commits with the change it records, and only with it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Invalid
from app.models import AuditEvent, AuthSession
from app.services import audit, login_sessions
from app.services.accounts import AccountSettings
from app.services.transaction import use_case
from tests.factories import make_user
from tests.services.rows import rows_of

ORIGIN = audit.Origin("203.0.113.9", "Firefox")


async def test_a_login_session_and_its_audit_row_commit_together(
    session: AsyncSession, account_settings: AccountSettings
) -> None:
    ann = await make_user(session, email="ann@example.com")
    await login_sessions.start_session(
        session, account_settings, ann, remember=False, method="passkey", origin=ORIGIN
    )
    [event] = await rows_of(session, AuditEvent)
    assert (event.action, event.actor_id, event.subject_id) == ("login.succeeded", ann.id, ann.id)
    assert (event.subject_email, event.client_address, event.user_agent) == (
        "ann@example.com",
        "203.0.113.9",
        "Firefox",
    )
    assert event.detail == {"method": "passkey"}
    [login] = await rows_of(session, AuthSession)
    assert login.client_address == "203.0.113.9"


async def test_a_refused_change_leaves_no_audit_row_and_a_refusal_is_recorded_apart(
    session: AsyncSession,
) -> None:
    ann = await make_user(session, email="ann@example.com")

    @use_case
    async def refused_change(session: AsyncSession) -> None:
        audit.record(session, audit.AuditAction.PASSWORD_CHANGED, actor=ann)
        raise Invalid("no")

    with pytest.raises(Invalid):
        await refused_change(session)
    assert await rows_of(session, AuditEvent) == []
    await audit.record_refusal(
        session, audit.AuditAction.LOGIN_FAILED, actor=None, subject_email="bob@example.com"
    )
    event = await session.scalar(select(AuditEvent))
    assert event is not None
    assert (event.action, event.actor_id, event.subject_email) == (
        "login.failed",
        None,
        "bob@example.com",
    )
