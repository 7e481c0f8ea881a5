"""`quart --app app reset-two-factor EMAIL`: the way back in for an admin who lost the phone
and the recovery codes."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import select

from app.models import AuditEvent
from app.services import two_factor
from tests.commands.test_cli import run_quart
from tests.factories import make_user
from tests.totp import code_at, steady_step


async def test_reset_two_factor_turns_it_off_and_is_audited(app: Quart, database_url: str) -> None:
    settings = app.extensions["two_factor"]
    async with app.extensions["database"].sessionmaker() as session:
        root = await make_user(session, email="root@example.com")
        enrolment = await two_factor.begin_enrolment(session, settings, root)
        steady_step()
        await two_factor.confirm_enrolment(session, settings, root, code_at(enrolment.secret))

    code, output = await run_quart(database_url, "reset-two-factor", "Root@example.com")
    assert code == 0, output
    assert "Two-factor sign-in is off for root@example.com" in output
    async with app.extensions["database"].sessionmaker() as session:
        assert await two_factor.second_factors(session, root) == []
        event = await session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()))
        assert (event.action, event.actor_id, event.subject_id, event.detail) == (
            "admin.two_factor_reset",
            None,
            root.id,
            {"via": "command"},
        )

    code, output = await run_quart(database_url, "reset-two-factor", "nobody@example.com")
    assert code != 0 and "No account has this address" in output
