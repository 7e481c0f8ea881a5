"""Mail: rendered from templates, queued in the outbox table, sent by a task in every worker."""

from __future__ import annotations

from datetime import timedelta

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbound.mail.outbox import BATCH_SIZE, MailSender, enqueue_mail
from app.outbound.mail.transport import transport_from_config

__all__ = ["MailSender", "enqueue_mail", "init_app"]


def init_app(app: Quart) -> None:
    sender = MailSender(
        app.extensions["database"].sessionmaker,
        transport_from_config(app.config),
        sender_address=app.config["MAIL_SENDER"],
        max_attempts=app.config["MAIL_MAX_ATTEMPTS"],
        poll_seconds=app.config["MAIL_POLL_SECONDS"],
        # Long enough for a whole batch against a slow server (each message may wait for
        # several SMTP replies), so that no other worker takes a batch that is still going.
        lease_seconds=app.config["MAIL_TIMEOUT"] * 4 * BATCH_SIZE,
    )
    app.extensions["mail_sender"] = sender

    # Imported here: the notifications service queues mail through this package.
    from app.services.notifications import mail_due_digests

    async def watchers_digests(session: AsyncSession) -> int:
        return await mail_due_digests(
            session,
            base_url=app.config["BASE_URL"],
            quiet=timedelta(seconds=app.config["NOTIFY_QUIET_SECONDS"]),
            longest_wait=timedelta(seconds=app.config["NOTIFY_LONGEST_WAIT_SECONDS"]),
        )

    sender.producers.append(watchers_digests)

    if app.config["MAIL_SEND_IN_BACKGROUND"]:

        @app.before_serving
        async def start_sending() -> None:
            sender.start()

        @app.after_serving
        async def stop_sending() -> None:
            await sender.stop()
