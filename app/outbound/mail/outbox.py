"""The outbox: mail is queued in the change's own transaction and sent after it commits.

Any worker may send any queued message. A sender claims a batch in a short transaction (on
PostgreSQL with FOR UPDATE SKIP LOCKED, so two workers never claim one row), sends it outside
any transaction, then records each outcome. A claim is a lease: a worker that dies mid-send
leaves the message to be retried once the lease ends (decision 0004).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import after_commit, begin_writing, utcnow
from app.models import MailStatus, OutboxMessage
from app.outbound.mail.compose import header_safe, render_mail
from app.outbound.mail.transport import Outcome, Transport
from app.outbound.sender import BackgroundSender, DeliveryReport, retry_delay

log = logging.getLogger("issues.mail")

BATCH_SIZE = 20
# 30 s, 1 min, 2 min, ... up to an hour between attempts.
FIRST_RETRY_SECONDS = 30
LAST_RETRY_SECONDS = 3600


def enqueue_mail(
    session: AsyncSession, *, to_address: str, to_name: str = "", template: str, **context: Any
) -> OutboxMessage:
    """Queue a message in the caller's transaction: it is sent only if that transaction commits."""
    rendered = render_mail(template, **context)
    message = OutboxMessage(
        to_address=to_address,
        to_name=header_safe(to_name)[:100],
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        template=template,
    )
    session.add(message)
    after_commit.note_mail(session)  # the factory wires the sender's wake to this
    return message


def as_email(message: OutboxMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = Address(display_name=message.to_name, addr_spec=message.to_address)
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    # The same id on every attempt, so a receiver can drop a duplicate after a lost answer.
    email["Message-ID"] = make_msgid(idstring=f"outbox.{message.id}", domain="issues.local")
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    return email


class MailSender(BackgroundSender[DeliveryReport]):
    """Sends what the outbox holds: on demand (`deliver_pending`) and, in a served app, from a
    background task that wakes when a commit queues mail and polls for other workers' mail."""

    name = "mail sender"
    log = log

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        transport: Transport,
        *,
        sender_address: str = "Issues <no-reply@localhost>",
        max_attempts: int = 8,
        poll_seconds: float = 5.0,
        lease_seconds: float = 60.0,
    ) -> None:
        super().__init__(sessionmaker, poll_seconds=poll_seconds)
        self.transport = transport
        self.sender_address = sender_address
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_seconds)
        # Jobs that queue mail (the watchers' digests), run before each background round.
        self.producers: list[Callable[[AsyncSession], Awaitable[object]]] = []

    async def deliver_pending(self) -> DeliveryReport:
        """Send every message that is due, batch by batch, and report what happened."""
        report = DeliveryReport()
        while batch := await self._claim_batch():
            # A message that cannot even be built (an address no header can hold) fails alone;
            # it must not hold back the others in its batch.
            buildable, unbuildable = [], []
            for message in batch:
                try:
                    buildable.append((message, as_email(message, self.sender_address)))
                except (ValueError, TypeError) as error:
                    unbuildable.append((message, Outcome("failed", f"cannot build: {error}")))
            outcomes = (
                await self.transport.send_all([email for _, email in buildable])
                if buildable
                else []
            )
            if len(outcomes) == 1 and len(buildable) > 1:
                outcomes = outcomes * len(buildable)  # the transport could not connect at all
            pairs = [
                (message, outcome)
                for (message, _), outcome in zip(buildable, outcomes, strict=True)
            ]
            await self._record(pairs + unbuildable, report)
        return report

    async def _claim_batch(self) -> list[OutboxMessage]:
        now = utcnow()
        async with self.sessionmaker() as session:
            await begin_writing(session)
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.status == MailStatus.PENDING.value,
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .order_by(OutboxMessage.id)
                .limit(BATCH_SIZE)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            batch = list(await session.scalars(query))
            for message in batch:
                message.claimed_until = now + self.lease
                message.attempts += 1
            await session.commit()
            return batch

    async def _record(
        self, outcomes: list[tuple[OutboxMessage, Outcome]], report: DeliveryReport
    ) -> None:
        now = utcnow()
        async with self.sessionmaker() as session:
            await begin_writing(session)
            for claimed, outcome in outcomes:
                message = await session.get(OutboxMessage, claimed.id)
                if message is None or message.claimed_until != claimed.claimed_until:
                    continue  # our lease ran out and another sender holds it now
                message.claimed_until = None
                message.last_error = outcome.error[:2000]
                if outcome.result == "sent":
                    message.status, message.sent_at = MailStatus.SENT.value, now
                    report.delivered += 1
                elif outcome.result == "failed" or message.attempts >= self.max_attempts:
                    message.status = MailStatus.FAILED.value
                    report.failed += 1
                    log.error(
                        "mail %s to %s failed: %s", message.id, message.to_address, outcome.error
                    )
                else:
                    message.next_attempt_at = now + retry_delay(
                        message.attempts, FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS
                    )
                    report.retried += 1
                    log.warning("mail %s will be retried: %s", message.id, outcome.error)
                if outcome.error:
                    report.errors.append(outcome.error)
            await session.commit()

    async def _round(self) -> DeliveryReport:
        for produce in self.producers:
            async with self.sessionmaker() as session:
                await produce(session)
        return await self.deliver_pending()


# --- What an admin sees and retries (quart --app app mail ...) --------------------------------


async def undelivered_mail(session: AsyncSession, *, limit: int = 200) -> list[OutboxMessage]:
    """Messages still waiting (pending) or given up on (failed), oldest first."""
    return list(
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_([MailStatus.PENDING.value, MailStatus.FAILED.value]))
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )


async def retry_mail(session: AsyncSession, ids: list[int] | None = None) -> int:
    """Make failed messages (all of them, or those of `ids`) pending again with fresh attempts,
    due now; pending ones named in `ids` become due now. Commits; returns how many."""
    await begin_writing(session)
    messages = await make_mail_due(session, ids)
    # Any worker's sender picks them up at its next poll.
    await session.commit()
    return len(messages)


async def make_mail_due(session: AsyncSession, ids: list[int] | None = None) -> list[OutboxMessage]:
    """What retry_mail changes, in the caller's transaction (the admin console's use case adds
    its audit row to it): the messages made due now."""
    query = select(OutboxMessage).where(
        OutboxMessage.status.in_([MailStatus.PENDING.value, MailStatus.FAILED.value])
    )
    query = (
        query.where(OutboxMessage.id.in_(ids))
        if ids is not None
        else query.where(OutboxMessage.status == MailStatus.FAILED.value)
    )
    now = utcnow()
    # One a sender holds right now is being sent: touching it could send it twice.
    query = query.where(
        or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now)
    )
    messages = list(await session.scalars(query))
    for message in messages:
        if message.status == MailStatus.FAILED.value:
            message.status, message.attempts = MailStatus.PENDING.value, 0
        message.next_attempt_at, message.claimed_until = now, None
    return messages
