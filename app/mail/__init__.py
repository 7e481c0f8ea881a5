"""Mail: rendered from templates, queued in the outbox table, sent by a task in every worker."""

from __future__ import annotations

from quart import Quart

from app.mail.outbox import MailSender, enqueue_mail
from app.mail.transport import transport_from_config

__all__ = ["MailSender", "enqueue_mail", "init_app"]


def init_app(app: Quart) -> None:
    sender = MailSender(
        app.extensions["database"].sessionmaker,
        transport_from_config(app.config),
        sender_address=app.config["MAIL_SENDER"],
        max_attempts=app.config["MAIL_MAX_ATTEMPTS"],
        poll_seconds=app.config["MAIL_POLL_SECONDS"],
        lease_seconds=app.config["MAIL_TIMEOUT"] * 3 + 30,
    )
    app.extensions["mail_sender"] = sender

    if app.config["MAIL_SEND_IN_BACKGROUND"]:

        @app.before_serving
        async def start_sending() -> None:
            sender.start()

        @app.after_serving
        async def stop_sending() -> None:
            await sender.stop()
