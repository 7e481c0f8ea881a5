"""Webhooks: deliveries queued with the change they announce, signed, sent by every worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.outbound.webhooks.sender import WebhookSender
from app.outbound.webhooks.targets import RefusedTarget, TargetPolicy

__all__ = ["RefusedTarget", "TargetPolicy", "WebhookSender", "webhook_sender_from_config"]


def webhook_sender_from_config(
    config: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> WebhookSender:
    """The delivery queue's sender as the WEBHOOK_* settings describe it; create_app starts it."""
    return WebhookSender(
        sessionmaker,
        policy=TargetPolicy.from_config(config),
        timeout=config["WEBHOOK_TIMEOUT"],
        max_attempts=config["WEBHOOK_MAX_ATTEMPTS"],
        poll_seconds=config["WEBHOOK_POLL_SECONDS"],
        first_retry_seconds=config["WEBHOOK_FIRST_RETRY_SECONDS"],
        last_retry_seconds=config["WEBHOOK_LAST_RETRY_SECONDS"],
    )
