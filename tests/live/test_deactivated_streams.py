"""A deactivation ends the person's open streams in every worker at once: on PostgreSQL the
commit's NOTIFY reaches the other workers' listeners (two apps here, each with its own broker
and listener, as two workers have)."""

from __future__ import annotations

import pytest

from app import create_app
from app.services import admin
from tests.conftest import app_settings
from tests.factories import make_project, make_user
from tests.live.test_stream import stream
from tests.mailcatcher import MailCatcher
from tests.pages import PASSWORD, log_in

pytestmark = pytest.mark.postgresql_only


async def test_a_stream_on_another_worker_ends_at_the_deactivation(
    database_url: str, mailbox: MailCatcher
) -> None:
    # No periodic check and no heartbeat within the test: only the NOTIFY can end the stream,
    # and a stream left open fails the read's time-out.
    settings = app_settings(
        database_url, mailbox, SSE_RECHECK_SECONDS=3600, SSE_HEARTBEAT_SECONDS=60
    )
    worker_a, worker_b = create_app("testing", **settings), create_app("testing", **settings)
    async with worker_a.test_app(), worker_b.test_app():
        hasher = worker_a.extensions["account_settings"].hasher
        async with worker_a.extensions["database"].sessionmaker() as session:
            root = await make_user(session, email="root@example.com")
            bob = await make_user(session, email="bob@example.com")
            root.is_admin = True
            bob.password_hash = await hasher.hash(PASSWORD)
            session.add_all([root, bob])
            await session.commit()
            session.expunge_all()
            await make_project(session, bob, key="LIVE")
        bob_on_b = worker_b.test_client()
        assert (await log_in(bob_on_b, "bob@example.com")).status_code == 302
        async with stream(bob_on_b, "/p/LIVE/events") as opened:
            async with worker_a.extensions["database"].sessionmaker() as session:
                await admin.deactivate(session, root, bob.id)
            assert await opened.ends()
        assert worker_b.extensions["broker"].subscriber_count == 0
