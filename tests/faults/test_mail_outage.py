"""SMTP down during 100 sign-ups and resets, the app restarted while mail waits, SMTP back:
every message delivered exactly once."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

from quart import Quart
from sqlalchemy import func, select

from app import create_app
from app.models import MailStatus, OutboxMessage
from app.outbound.mail.outbox import retry_mail
from tests.conftest import app_settings
from tests.mailcatcher import MailCatcher
from tests.pages import sign_up, submit

PEOPLE = 100


def settings(database_url: str, mailbox: MailCatcher) -> dict[str, Any]:
    # The background sender as served apps run it, polling often; many sign-ups from one
    # client would meet the per-client limit.
    return app_settings(
        database_url,
        mailbox,
        RATE_LIMIT_ENABLED=False,
        MAIL_SEND_IN_BACKGROUND=True,
        MAIL_POLL_SECONDS=0.2,
    )


async def outbox(app: Quart) -> dict[str, int]:
    """Messages by status, and how many were tried at least once."""
    async with app.extensions["database"].sessionmaker() as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count(), func.min(OutboxMessage.attempts)).group_by(
                OutboxMessage.status
            )
        )
        counts = {status: count for status, count, _ in rows}
        untried = await session.scalar(select(func.count()).where(OutboxMessage.attempts == 0))
        # A batch being sent: claimed (its attempt counted) but its outcome not yet recorded.
        claimed = await session.scalar(
            select(func.count()).where(OutboxMessage.claimed_until.is_not(None))
        )
    return {**counts, "untried": untried or 0, "claimed": claimed or 0}


async def until(condition: Any, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_mail_queued_during_an_smtp_outage_and_a_restart_is_delivered_exactly_once(
    database_url: str, mailbox: MailCatcher
) -> None:
    mailbox.stop()
    first = create_app("testing", **settings(database_url, mailbox))
    async with first.test_app():
        for n in range(PEOPLE):
            email = f"person{n}@example.com"
            assert (await sign_up(first.test_client(), email)).status_code == 302
            forgot = await submit(first.test_client(), "/auth/forgot", {"email": email})
            assert forgot.status_code == 200
        # The sender met the outage: every message was tried and is waiting for its retry.
        tried = await until(lambda: _all_tried(first), wait=15)
        queued = await outbox(first)
    assert tried, f"the sender never tried some messages: {queued}"
    assert queued.get(MailStatus.PENDING.value) == 2 * PEOPLE and not mailbox.messages

    # The app restarted (a new instance on the same database), then SMTP came back.
    mailbox.start()
    second = create_app("testing", **settings(database_url, mailbox))
    async with second.test_app():
        sessionmaker = second.extensions["database"].sessionmaker
        async with sessionmaker() as session:
            waiting = list(await session.scalars(select(OutboxMessage.id)))
        async with sessionmaker() as session:
            # What `quart --app app mail retry <ids>` does: due now, not in 30 s. The new app's
            # own sender may have taken the first messages already, if their 30 s ran out during
            # a slow first half: it sends those itself.
            retried = await retry_mail(session, waiting)
            assert 0 < retried <= 2 * PEOPLE
        delivered = await until(lambda: _none_pending(second), wait=30)
        async with second.extensions["database"].sessionmaker() as session:
            templates = dict(
                list(await session.execute(select(OutboxMessage.id, OutboxMessage.template)))
            )
        final = await outbox(second)
    assert delivered, f"mail still waiting: {final}"

    by_message_id = Counter(str(mail.message["Message-ID"]) for mail in mailbox.messages)
    outbox_ids = [
        int(re.search(r"outbox\.(\d+)", message_id).group(1))  # type: ignore[union-attr]
        for message_id in by_message_id
    ]
    by_recipient_and_kind = Counter(
        (recipient, templates[outbox_id])
        for mail, outbox_id in zip(mailbox.messages, outbox_ids, strict=True)
        for recipient in mail.recipients
    )
    duplicates = sum(count - 1 for count in by_message_id.values())
    assert duplicates == 0, [key for key, count in by_message_id.items() if count > 1]
    kinds = sorted(set(templates.values()))
    assert len(kinds) == 2, kinds
    assert by_recipient_and_kind == Counter(
        (f"person{n}@example.com", kind) for n in range(PEOPLE) for kind in kinds
    )
    assert final == {MailStatus.SENT.value: 2 * PEOPLE, "untried": 0, "claimed": 0}
    print(
        f"\nSMTP outage + restart: mail queued: {2 * PEOPLE} ({', '.join(kinds)}), "
        f"delivered: {len(mailbox.messages)}, duplicates: {duplicates}, lost: 0"
    )


async def _all_tried(app: Quart) -> bool:
    """Every message tried and its outcome recorded: the sender is between rounds. (Stopping
    it in the middle of a batch leaves that batch leased for a minute, rightly not retried
    by hand meanwhile: the restart below would then wait out the lease.)"""
    counts = await outbox(app)
    return counts["untried"] == 0 and counts["claimed"] == 0


async def _none_pending(app: Quart) -> bool:
    return MailStatus.PENDING.value not in await outbox(app)
