"""Mail: rendered from templates, queued in the outbox table, sent by a task in every worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.outbound.mail.outbox import BATCH_SIZE, MailSender, enqueue_mail
from app.outbound.mail.transport import transport_from_config

__all__ = ["MailSender", "enqueue_mail", "mail_sender_from_config"]


def mail_sender_from_config(
    config: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> MailSender:
    """The outbox's sender as the MAIL_* settings describe it; create_app starts it."""
    return MailSender(
        sessionmaker,
        transport_from_config(config),
        sender_address=config["MAIL_SENDER"],
        max_attempts=config["MAIL_MAX_ATTEMPTS"],
        poll_seconds=config["MAIL_POLL_SECONDS"],
        # Long enough for a whole batch against a slow server (each message may wait for
        # several SMTP replies), so that no other worker takes a batch that is still going.
        lease_seconds=config["MAIL_TIMEOUT"] * 4 * BATCH_SIZE,
    )
