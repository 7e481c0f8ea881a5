"""Webhooks: deliveries queued with the change they announce, signed, sent by every worker."""

from __future__ import annotations

from quart import Quart

from app.outbound.webhooks.queue import enqueue_deliveries
from app.outbound.webhooks.sender import WebhookSender
from app.outbound.webhooks.targets import RefusedTarget, TargetPolicy

__all__ = ["RefusedTarget", "TargetPolicy", "WebhookSender", "enqueue_deliveries", "init_app"]


def init_app(app: Quart) -> None:
    config = app.config
    sender = WebhookSender(
        app.extensions["database"].sessionmaker,
        policy=TargetPolicy.from_config(config),
        timeout=config["WEBHOOK_TIMEOUT"],
        max_attempts=config["WEBHOOK_MAX_ATTEMPTS"],
        poll_seconds=config["WEBHOOK_POLL_SECONDS"],
        first_retry_seconds=config["WEBHOOK_FIRST_RETRY_SECONDS"],
        last_retry_seconds=config["WEBHOOK_LAST_RETRY_SECONDS"],
    )
    app.extensions["webhook_sender"] = sender

    if config["WEBHOOK_SEND_IN_BACKGROUND"]:

        @app.before_serving
        async def start_sending() -> None:
            sender.start()

        @app.after_serving
        async def stop_sending() -> None:
            await sender.stop()
